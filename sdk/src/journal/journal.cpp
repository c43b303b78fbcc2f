// The change journal (outbox) and per-record sync state.

#include "../model/record_store_impl.hpp"

#include <outpost/error.hpp>

#include <sodium.h>

#include <algorithm>
#include <map>

namespace outpost::model {

void createJournalTables(sql::Database& db) {
  // One row per write, in write order; rows leave when acknowledged. The record is
  // referenced by its local rowid. `bases` is null for a create (every field of
  // the new record, base zero), else field -> HLC of the value replaced.
  db.exec("CREATE TABLE IF NOT EXISTS journal(seq INTEGER PRIMARY KEY, rid INTEGER NOT NULL, "
          "hlc INTEGER NOT NULL, bases BLOB)");
}

void appendJournal(RecordStore::Impl& store, sql::Database& db, std::int64_t rid, Hlc hlc,
                   const FieldValues* bases) {
  StatementUse s(store.stmt(db, "INSERT INTO journal(rid, hlc, bases) VALUES (?1, ?2, ?3)"));
  s->bind(1, rid).bind(2, static_cast<std::int64_t>(hlc.value));
  if (bases) {
    const std::string encoded = sync::encodeFields(*bases);
    s->bindBlob(3,
                std::span(reinterpret_cast<const unsigned char*>(encoded.data()), encoded.size()));
  } else {
    s->bindNull(3);
  }
  s->run();
}

namespace {

/// The change id of (device, record, field, hlc): unique because a device never
/// hands out an HLC twice and a write sets a field once. Derived, so it is the same
/// every time the entry is listed (the server deduplicates on it). UUID version 8.
Uuid changeIdOf(const Uuid& device, const Uuid& record, std::string_view field, Hlc hlc) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 16);
  crypto_generichash_update(&st, device.bytes.data(), device.bytes.size());
  crypto_generichash_update(&st, record.bytes.data(), record.bytes.size());
  std::array<unsigned char, 8> h{};
  for (std::size_t k = 0; k < 8; ++k) {
    h[k] = static_cast<unsigned char>(hlc.value >> (56 - 8 * k));
  }
  crypto_generichash_update(&st, h.data(), h.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(field.data()),
                            field.size());
  Uuid id;
  crypto_generichash_final(&st, id.bytes.data(), id.bytes.size());
  id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | 0x80);
  id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3F) | 0x80);
  return id;
}

} // namespace

std::vector<JournalEntry> Journal::pending(std::size_t maxEntries, std::int64_t afterSeq) {
  std::vector<JournalEntry> out;
  store_.read([&](sql::Database& db) {
    StatementUse s(store_.stmt(db, "SELECT j.seq, j.hlc, j.bases, r.id FROM journal j "
                                   "JOIN records r ON r.rid = j.rid WHERE j.seq > ?1 "
                                   "ORDER BY j.seq"));
    s->bind(1, afterSeq);
    while (s->step()) {
      const std::int64_t seq = s->columnInt(0);
      const Hlc hlc{static_cast<std::uint64_t>(s->columnInt(1))};
      const Uuid recordId = uuidColumn(*s, 3);
      FieldValues bases;
      if (!s->columnIsNull(2)) {
        const auto raw = s->columnBlob(2);
        bases = sync::decodeFields({reinterpret_cast<const char*>(raw.data()), raw.size()});
      }
      const bool isCreate = s->columnIsNull(2);
      const auto record = store_.load(db, recordId, nullptr);
      if (!record) {
        throw Error(Errc::corrupt, "a journal entry refers to a missing record");
      }
      // Whole writes only: a batch never splits one write.
      const std::size_t count = isCreate ? record->fields.size() : bases.size();
      if (!out.empty() && out.size() + count > maxEntries) {
        break;
      }
      const auto emit = [&](const std::string& field, Hlc base) {
        JournalEntry e;
        e.seq = seq;
        e.change.changeId = changeIdOf(store_.device, recordId, field, hlc);
        e.change.recordId = recordId;
        e.change.recordType = record->type;
        e.change.field = field;
        // The current value: if a later write changed the field again, the later
        // value is sent (the intermediate one was the same worker's and is in the
        // audit trail); the later write's entry then fast-forwards on it.
        e.change.value = record->get(field);
        e.change.hlc = hlc;
        e.change.deviceId = store_.device;
        e.change.baseHlc = base;
        out.push_back(std::move(e));
      };
      if (isCreate) {
        for (const auto& [field, value] : record->fields) {
          emit(field, Hlc{});
        }
      } else {
        for (const auto& [field, base] : bases) {
          emit(field, Hlc{static_cast<std::uint64_t>(std::get<std::int64_t>(base))});
        }
      }
      if (out.size() >= maxEntries) {
        break;
      }
    }
  });
  return out;
}

std::int64_t Journal::pendingCount() {
  std::int64_t n = 0;
  store_.read([&](sql::Database& db) { n = db.queryInt("SELECT count(*) FROM journal"); });
  return n;
}

std::size_t Journal::acknowledge(std::span<const std::int64_t> seqs) {
  std::size_t acked = 0;
  store_.write([&](sql::Database& db, WriteState&) {
    std::map<std::int64_t, std::int64_t> perRecord; // rid -> writes acknowledged
    for (const std::int64_t seq : seqs) {
      std::int64_t rid = 0;
      {
        StatementUse s(store_.stmt(db, "DELETE FROM journal WHERE seq = ?1 RETURNING rid"));
        s->bind(1, seq);
        if (!s->step()) {
          continue; // already acknowledged: acks are idempotent
        }
        rid = s->columnInt(0);
      }
      ++perRecord[rid];
      ++acked;
    }
    for (const auto& [rid, count] : perRecord) {
      StatementUse u(store_.stmt(
          db, "UPDATE records SET pending = max(0, pending - ?2), sync_state = CASE WHEN pending "
              "- ?2 <= 0 AND sync_state = 0 THEN 1 ELSE sync_state END WHERE rid = ?1"));
      u->bind(1, rid).bind(2, count).run();
    }
  });
  return acked;
}

namespace {

void setState(RecordStore::Impl& store, const Uuid& record, SyncState state,
              std::string_view reason) {
  store.write([&](sql::Database& db, WriteState&) {
    StatementUse u(
        store.stmt(db, "UPDATE records SET sync_state = ?2, sync_reason = ?3 WHERE id = ?1"));
    u->bindBlob(1, uuidBytes(record)).bind(2, static_cast<std::int64_t>(state));
    if (reason.empty()) {
      u->bindNull(3);
    } else {
      u->bind(3, reason);
    }
    u->run();
    if (db.changes() == 0) {
      throw Error(Errc::not_found, "no record with this id");
    }
  });
}

} // namespace

void Journal::markConflict(const Uuid& record) {
  setState(store_, record, SyncState::conflict, {});
}

void Journal::markRejected(const Uuid& record, std::string_view reason) {
  setState(store_, record, SyncState::rejected, reason);
}

std::optional<RecordSyncStatus> Journal::status(const Uuid& record) {
  std::optional<RecordSyncStatus> out;
  store_.read([&](sql::Database& db) {
    StatementUse s(store_.stmt(db, "SELECT sync_state, sync_reason FROM records WHERE id = ?1"));
    s->bindBlob(1, uuidBytes(record));
    if (s->step()) {
      out = RecordSyncStatus{static_cast<SyncState>(s->columnInt(0)),
                             s->columnIsNull(1) ? std::string() : std::string(s->columnText(1))};
    }
  });
  return out;
}

Hlc Journal::lastHlc() { return store_.hlc.last(); }

} // namespace outpost::model
