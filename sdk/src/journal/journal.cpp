// The change journal (outbox) and per-record sync state.

#include "../model/record_store_impl.hpp"

#include <outpost/error.hpp>

#include <algorithm>
#include <map>
#include <set>

namespace outpost::model {

void createJournalTables(sql::Database& db) {
  // One row per write, in write order; rows leave when acknowledged. The record is
  // referenced by its local rowid. `bases` is null for a create (every field of
  // the new record, base zero), else field -> HLC of the value replaced.
  db.exec("CREATE TABLE IF NOT EXISTS journal(seq INTEGER PRIMARY KEY, rid INTEGER NOT NULL, "
          "hlc INTEGER NOT NULL, bases BLOB)");
  // A record's writes, for listing a create (which fields later writes added) and
  // for purges. Vaults made before it get it when they next open.
  db.exec("CREATE INDEX IF NOT EXISTS journal_rid_idx ON journal(rid)");
}

namespace {

void putVersion(sync::Bytes& out, const sync::VersionId& v) {
  for (int k = 0; k < 8; ++k) {
    out.push_back(static_cast<std::uint8_t>(v.hlc.value >> (56 - 8 * k)));
  }
  out.insert(out.end(), v.deviceId.bytes.begin(), v.deviceId.bytes.end());
}

sync::VersionId versionAt(const sync::Bytes& b, std::size_t at) {
  sync::VersionId v;
  for (std::size_t k = 0; k < 8; ++k) {
    v.hlc.value = (v.hlc.value << 8) | b[at + k];
  }
  std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(at + 8), 16, v.deviceId.bytes.begin());
  return v;
}

/// field -> 24 bytes of base version (zero: none), then 24 bytes per resolved version.
std::string encodeBases(const std::map<std::string, JournalBase, std::less<>>& bases) {
  FieldValues packed;
  for (const auto& [name, b] : bases) {
    sync::Bytes bytes;
    bytes.reserve(24 * (1 + b.resolves.size()));
    putVersion(bytes, b.base.value_or(sync::VersionId{}));
    for (const sync::VersionId& v : b.resolves) {
      putVersion(bytes, v);
    }
    packed.emplace_hint(packed.end(), name, std::move(bytes));
  }
  return sync::encodeFields(packed);
}

std::map<std::string, JournalBase, std::less<>> decodeBases(std::string_view raw) {
  std::map<std::string, JournalBase, std::less<>> out;
  for (const auto& [name, value] : sync::decodeFields(raw)) {
    const auto* b = std::get_if<sync::Bytes>(&value);
    if (!b || b->empty() || b->size() % 24 != 0) {
      throw Error(Errc::corrupt, "a journal entry is malformed");
    }
    JournalBase jb;
    const sync::VersionId base = versionAt(*b, 0);
    if (!base.hlc.isZero()) {
      jb.base = base;
    }
    for (std::size_t at = 24; at < b->size(); at += 24) {
      jb.resolves.push_back(versionAt(*b, at));
    }
    out.emplace(name, std::move(jb));
  }
  return out;
}

} // namespace

std::string restampBases(std::string_view raw, const Uuid& from, const Uuid& to) {
  auto bases = decodeBases(raw);
  for (auto& [name, b] : bases) {
    if (b.base && b.base->deviceId == from) {
      b.base->deviceId = to;
    }
    for (sync::VersionId& v : b.resolves) {
      if (v.deviceId == from) {
        v.deviceId = to;
      }
    }
  }
  return encodeBases(bases);
}

void appendJournal(RecordStore::Impl& store, sql::Database& db, std::int64_t rid, Hlc hlc,
                   const std::map<std::string, JournalBase, std::less<>>* bases) {
  StatementUse s(store.stmt(db, "INSERT INTO journal(rid, hlc, bases) VALUES (?1, ?2, ?3)"));
  s->bind(1, rid).bind(2, static_cast<std::int64_t>(hlc.value));
  if (bases) {
    const std::string encoded = encodeBases(*bases);
    s->bindBlob(3,
                std::span(reinterpret_cast<const unsigned char*>(encoded.data()), encoded.size()));
  } else {
    s->bindNull(3);
  }
  s->run();
  store.pending.add(rid, 1);
}

Uuid changeIdOf(const Uuid& device, const Uuid& record, std::string_view field, Hlc hlc) {
  return sync::derivedChangeId(device, record, field, hlc);
}

namespace {

using FieldStates = std::map<std::string, sync::FieldState, std::less<>>;

/// The value this device wrote for a field: the exact version when the field's
/// merge state holds it, else the record's value while the device's version is current, else its
/// version among the competing values (a concurrent edit from elsewhere won meanwhile), else the
/// record's value (the server already has the change and will answer duplicate).
Value ownValue(RecordStore::Impl& store, const FieldStates& states, const Record& record,
               const std::string& field, Hlc hlc) {
  const auto found = states.find(field);
  const sync::FieldState* state = found == states.end() ? nullptr : &found->second;
  if (state) {
    // The exact version, while the field's state still holds it (append-only
    // entries always do).
    const Uuid id = changeIdOf(store.device, record.id, field, hlc);
    const auto same = [&](const sync::FieldVersion& v) { return v.changeId == id; };
    if (state->current && same(*state->current)) {
      return state->current->value;
    }
    for (const auto* list : {&state->conflicts, &state->entries}) {
      if (const auto it = std::find_if(list->begin(), list->end(), same); it != list->end()) {
        return it->value;
      }
    }
  }
  if (record.clockOf(field).device == store.device) {
    return record.get(field);
  }
  if (state) {
    for (const sync::FieldVersion& v : state->conflicts) {
      if (v.deviceId == store.device) {
        return v.value; // greatest first: the device's latest
      }
    }
  }
  return record.get(field);
}

/// Whether this device wrote the field (fields other devices added to a record it
/// created are not part of its create).
bool ownField(RecordStore::Impl& store, const FieldStates& states, const Record& record,
              const std::string& field) {
  if (record.clockOf(field).device == store.device) {
    return true;
  }
  const auto found = states.find(field);
  const sync::FieldState* state = found == states.end() ? nullptr : &found->second;
  if (!state) {
    return false;
  }
  const auto own = [&](const sync::FieldVersion& v) { return v.deviceId == store.device; };
  return std::any_of(state->conflicts.begin(), state->conflicts.end(), own) ||
         std::any_of(state->entries.begin(), state->entries.end(), own);
}

} // namespace

std::vector<JournalEntry> pendingWrites(RecordStore::Impl& store, std::size_t maxEntries,
                                        std::int64_t afterSeq, bool withIds) {
  std::vector<JournalEntry> out;
  // A batch ends on the write that goes past maxEntries (and is then dropped): room
  // for that write too, so the list is not moved while it is read.
  out.reserve(std::min<std::size_t>(maxEntries, 16384) + 256);
  store.read([&](sql::Database& db) {
    // The record comes with its write: its columns from 3 (recordFromRow).
    StatementUse s(store.stmt(
        db, "SELECT j.seq, j.hlc, j.bases, r.rid, r.id, r.type, r.fields, r.clocks, "
            "r.created_hlc, r.device, r.created_at, r.updated_at, " OUTPOST_SYNC_STATE_OF_R
            " FROM journal j "
            "JOIN records r ON r.rid = j.rid WHERE j.seq > ?1 ORDER BY j.seq"));
    s->bind(1, afterSeq);
    // A store whose fields only this device wrote has no merge state at all (one
    // read here, instead of one per record below).
    const bool anyStates = db.queryInt("SELECT EXISTS (SELECT 1 FROM field_sync)") != 0;
    while (s->step()) {
      const std::int64_t seq = s->columnInt(0);
      const Hlc hlc{static_cast<std::uint64_t>(s->columnInt(1))};
      const bool isCreate = s->columnIsNull(2);
      const std::int64_t rid = s->columnInt(3);
      const FieldStates states = anyStates ? loadFieldStates(store, db, rid) : FieldStates{};
      // A create of a record with no merge state lists the stored fields as it
      // reads them; otherwise the record is decoded whole.
      const bool streamFields = isCreate && states.empty();
      Record record = recordFromRow(*s, 3, store.fieldNames.codec(), !streamFields);
      const std::size_t first = out.size();
      const auto emit = [&](std::string_view field, Value value, const JournalBase* base) {
        JournalEntry& e = out.emplace_back();
        e.seq = seq;
        if (withIds) {
          e.change.changeId = changeIdOf(store.device, record.id, field, hlc);
        }
        e.change.recordId = record.id;
        e.change.recordType = record.type;
        e.change.field = field;
        e.change.value = std::move(value);
        e.change.hlc = hlc;
        e.change.deviceId = store.device;
        if (base) {
          if (base->base) {
            e.change.baseHlc = base->base->hlc;
            e.change.baseDeviceId = base->base->deviceId;
          }
          e.change.resolves = base->resolves;
        }
      };
      // The value sent is the field's current value: if a later write changed the
      // field again, the later value is sent (the intermediate one was the same
      // worker's and is in the audit trail); the later write's entry then
      // fast-forwards on it. A field with no merge state shows this device's
      // value (ownValue), moved out of the record: each field is listed once.
      const auto valueOf = [&](const std::string& field, Value& stored) {
        return states.contains(field) ? ownValue(store, states, record, field, hlc)
                                      : std::move(stored);
      };
      if (isCreate) {
        // The fields the create set: the record's fields, less those a later write
        // added (its entry has no base for them) and those other devices added.
        std::set<std::string, std::less<>> addedLater;
        std::set<std::string, std::less<>> seenLater;
        StatementUse later(store.stmt(
            db, "SELECT bases FROM journal WHERE rid = ?1 AND seq > ?2 AND bases IS NOT NULL "
                "ORDER BY seq"));
        later->bind(1, rid).bind(2, seq);
        // Only the create in the journal (the usual case): no later write to read.
        while (store.pending.count(rid) > 1 && later->step()) {
          const auto raw = later->columnBlob(0);
          for (const auto& [field, b] :
               decodeBases({reinterpret_cast<const char*>(raw.data()), raw.size()})) {
            if (seenLater.insert(field).second && !b.base) {
              addedLater.insert(field);
            }
          }
        }
        if (streamFields) {
          // ownField without merge state: the field's clock is this device's.
          const auto raw = s->columnBlob(6);
          sync::FieldReader fields({reinterpret_cast<const char*>(raw.data()), raw.size()},
                                   &store.fieldNames.codec());
          std::string_view field;
          Value value;
          while (fields.next(field, value)) {
            if (!addedLater.contains(field) && record.clockOf(field).device == store.device) {
              emit(field, std::move(value), nullptr);
            }
          }
        } else {
          for (auto& [field, value] : record.fields) {
            if (!addedLater.contains(field) && ownField(store, states, record, field)) {
              emit(field, valueOf(field, value), nullptr);
            }
          }
        }
      } else {
        const auto raw = s->columnBlob(2);
        for (const auto& [field, base] :
             decodeBases({reinterpret_cast<const char*>(raw.data()), raw.size()})) {
          Value absent;
          const auto it = record.fields.find(field);
          emit(field, valueOf(field, it == record.fields.end() ? absent : it->second), &base);
        }
      }
      // Whole writes only: a batch never splits one write.
      if (first > 0 && out.size() > maxEntries) {
        out.resize(first);
        break;
      }
      if (out.size() >= maxEntries) {
        break;
      }
    }
  });
  return out;
}

std::vector<JournalEntry> Journal::pending(std::size_t maxEntries, std::int64_t afterSeq) {
  return pendingWrites(store_, maxEntries, afterSeq, true);
}

std::int64_t Journal::pendingCount() {
  std::int64_t n = 0;
  store_.read([&](sql::Database& db) { n = db.queryInt("SELECT count(*) FROM journal"); });
  return n;
}

std::size_t acknowledgeWrites(RecordStore::Impl& store, std::span<const AckedWrite> writes) {
  // In seq order, each seq once (lifting a rejection if any of its acks does), so
  // that a run of consecutive seqs (a push batch's usually are one) goes in one
  // statement.
  std::vector<AckedWrite> acks(writes.begin(), writes.end());
  std::sort(acks.begin(), acks.end(),
            [](const AckedWrite& a, const AckedWrite& b) { return a.seq < b.seq; });
  std::size_t kept = 0;
  for (std::size_t i = 0; i < acks.size(); ++i) {
    if (kept > 0 && acks[kept - 1].seq == acks[i].seq) {
      acks[kept - 1].clearsRejection = acks[kept - 1].clearsRejection || acks[i].clearsRejection;
    } else {
      acks[kept++] = acks[i];
    }
  }
  acks.resize(kept);
  std::size_t acked = 0;
  store.write([&](sql::Database& db, WriteState&) {
    // Pending and synced follow the journal (OUTPOST_SYNC_STATE_OF_R): the rows
    // go, and no record is rewritten, unless one was rejected.
    std::set<std::int64_t> clearing; // rids whose rejection the server lifted
    for (std::size_t first = 0; first < acks.size();) {
      std::size_t end = first + 1;
      while (end < acks.size() && acks[end].seq == acks[end - 1].seq + 1) {
        ++end;
      }
      const std::int64_t low = acks[first].seq;
      StatementUse s(
          store.stmt(db, "DELETE FROM journal WHERE seq BETWEEN ?1 AND ?2 RETURNING seq, rid"));
      s->bind(1, low).bind(2, acks[end - 1].seq);
      // Seqs already gone were acknowledged before: acks are idempotent.
      while (s->step()) {
        const std::int64_t rid = s->columnInt(1);
        store.pending.add(rid, -1);
        if (acks[first + static_cast<std::size_t>(s->columnInt(0) - low)].clearsRejection) {
          clearing.insert(rid);
        }
        ++acked;
      }
      first = end;
    }
    if (!clearing.empty() &&
        db.queryInt("SELECT EXISTS (SELECT 1 FROM records WHERE sync_state = 3)") != 0) {
      for (const std::int64_t rid : clearing) {
        StatementUse u(store.stmt(db, "UPDATE records SET sync_state = 0, sync_reason = NULL "
                                      "WHERE rid = ?1 AND sync_state = 3"));
        u->bind(1, rid).run();
      }
    }
  });
  return acked;
}

std::size_t Journal::acknowledge(std::span<const std::int64_t> seqs) {
  std::vector<AckedWrite> writes;
  writes.reserve(seqs.size());
  for (const std::int64_t seq : seqs) {
    writes.push_back({seq, false});
  }
  return acknowledgeWrites(store_, writes);
}

void Journal::markRejected(const Uuid& record, std::string_view reason) {
  store_.write([&](sql::Database& db, WriteState&) {
    StatementUse u(
        store_.stmt(db, "UPDATE records SET sync_state = 3, sync_reason = ?2 WHERE id = ?1"));
    u->bindBlob(1, uuidBytes(record));
    if (reason.empty()) {
      u->bindNull(2);
    } else {
      u->bind(2, reason);
    }
    u->run();
    if (db.changes() == 0) {
      throw Error(Errc::not_found, "no record with this id");
    }
  });
}

std::optional<RecordSyncStatus> Journal::status(const Uuid& record) {
  std::optional<RecordSyncStatus> out;
  store_.read([&](sql::Database& db) {
    StatementUse s(store_.stmt(db, "SELECT " OUTPOST_SYNC_STATE_OF_R
                                   ", r.sync_reason FROM records r WHERE r.id = ?1"));
    s->bindBlob(1, uuidBytes(record));
    if (s->step()) {
      const auto state = static_cast<SyncState>(s->columnInt(0));
      out = RecordSyncStatus{state, state != SyncState::rejected || s->columnIsNull(1)
                                        ? std::string()
                                        : std::string(s->columnText(1))};
    }
  });
  return out;
}

Hlc Journal::lastHlc() { return store_.hlc.last(); }

} // namespace outpost::model
