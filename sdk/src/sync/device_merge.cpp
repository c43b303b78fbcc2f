// The device side of merging: the merge state of fields touched by other devices,
// pulled changes merged into records, purges, and the sync bookkeeping.
//
// A field whose history is local only (this device's writes, each based on the
// one before) needs no stored state: it is derived from the record when a remote
// change first touches the field. From then on the field has a row in
// `field_sync`, and local writes merge into it too. Append-only fields always
// have a row, so that their entries are exactly the journalled writes.

#include "device_merge.hpp"

#include "../model/record_validation.hpp"

#include <outpost/error.hpp>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <functional>
#include <map>
#include <unordered_map>

namespace outpost::model {

namespace {

std::span<const unsigned char> blobOf(const std::string& s) {
  return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

/// The merge policies of one record's fields, asked for in name order (a record's
/// changes sorted by field): the type's fields are walked once, not looked up.
class PolicyWalk {
public:
  PolicyWalk(const Schema& schema, const EntityType* type) : specOf_(schema, type) {}

  sync::MergePolicy operator()(std::string_view field) {
    const FieldSpec* spec = specOf_(field);
    return spec ? spec->policy : sync::MergePolicy::lww;
  }

private:
  FieldSpecWalk specOf_;
};

void saveFieldState(RecordStore::Impl& s, sql::Database& db, std::int64_t rid,
                    std::string_view field, const sync::FieldState& state) {
  const std::string encoded = sync::encodeFieldState(state);
  StatementUse st(s.stmt(db, "INSERT INTO field_sync(rid, field, state, in_conflict) VALUES "
                             "(?1, ?2, ?3, ?4) ON CONFLICT(rid, field) DO UPDATE SET state = "
                             "excluded.state, in_conflict = excluded.in_conflict"));
  st->bind(1, rid)
      .bind(2, field)
      .bindBlob(3, blobOf(encoded))
      .bind(4, std::int64_t{state.hasConflict() ? 1 : 0})
      .run();
}

std::int64_t conflictCount(RecordStore::Impl& s, sql::Database& db, std::int64_t rid) {
  StatementUse st(s.stmt(db, "SELECT count(*) FROM field_sync WHERE rid = ?1 AND in_conflict = 1"));
  st->bind(1, rid);
  return st->step() ? st->columnInt(0) : 0;
}

/// The state of a field whose history is local only, derived from the record.
sync::FieldState localState(const Record& record, const std::string& field,
                            sync::MergePolicy policy) {
  sync::FieldState state;
  if (!record.fields.contains(field) && !record.changedClocks.contains(field)) {
    return state;
  }
  const FieldClock c = record.clockOf(field);
  sync::FieldVersion v{record.get(field), c.hlc, c.device,
                       changeIdOf(c.device, record.id, field, c.hlc)};
  if (policy == sync::MergePolicy::appendOnly) {
    state.entries.push_back(std::move(v));
  } else {
    state.current = std::move(v);
  }
  return state;
}

/// Sets the clock of a field that has a value. The version the record's create
/// wrote needs none: `clockOf` gives the creation clock (a device never hands out
/// an HLC twice, so no other version has it), as for a record created here.
void setClock(Record& record, const std::string& field, const FieldClock& clock) {
  if (clock.hlc == record.createdHlc && clock.device == record.device) {
    record.changedClocks.erase(field);
  } else {
    record.changedClocks.insert_or_assign(field, clock);
  }
}

/// Sets the record's value and clock of a field from its merge state. With `take`,
/// the current version's value is moved out of `state` (which is then not needed).
/// Fields materialised in name order into a new record go in at the end (the hint).
/// `field` must not be a key of `record.fields`: erasing from the flat map moves
/// the keys after it.
void materialise(Record& record, const std::string& field, sync::FieldState& state,
                 sync::MergePolicy policy, bool take = false) {
  if (field == sync::kRecordField) {
    return;
  }
  if (policy == sync::MergePolicy::appendOnly) {
    // Every entry is a whole list as its author saw it: the value is their union, in
    // entry order, each item as many times as the entry that holds it most (an item
    // a worker added twice is kept twice, as on the author's device).
    sync::StringList items;
    std::map<std::string_view, std::size_t> listed; // times each item is in `items`
    for (const sync::FieldVersion& e : state.entries) {
      if (const auto* list = std::get_if<sync::StringList>(&e.value)) {
        std::map<std::string_view, std::size_t> inEntry;
        for (const std::string& item : *list) {
          std::size_t& had = listed[item];
          if (++inEntry[item] > had) {
            items.push_back(item);
            ++had;
          }
        }
      }
    }
    if (state.entries.empty()) {
      record.fields.erase(field);
      record.changedClocks.erase(field);
      return;
    }
    const sync::FieldVersion& last = state.entries.back();
    record.fields.insert_or_assign(field, std::move(items));
    setClock(record, field, FieldClock{last.hlc, last.deviceId});
    return;
  }
  if (!state.current) {
    record.fields.erase(field);
    record.changedClocks.erase(field);
    return;
  }
  sync::Value& v = state.current->value;
  const FieldClock clock{state.current->hlc, state.current->deviceId};
  if (std::holds_alternative<sync::Null>(v) || std::holds_alternative<sync::Tombstone>(v)) {
    // A field without a value keeps its clock: it says the field was cleared.
    record.fields.erase(field);
    record.changedClocks.insert_or_assign(field, clock);
  } else {
    if (take) {
      record.fields.insert_or_assign(record.fields.end(), field, std::move(v));
    } else {
      record.fields.insert_or_assign(record.fields.end(), field, v);
    }
    setClock(record, field, clock);
  }
}

std::string metaKey(std::string_view key) { return "sync." + std::string(key); }

/// Whether a field's state holds nothing beyond its current version: no competing
/// values, no append-only entries, and no replaced versions. Replaced versions must
/// stay known: a replaced change can still arrive, and must then merge as history.
bool onlyCurrent(const sync::FieldState& state, sync::MergePolicy policy) {
  return policy != sync::MergePolicy::appendOnly && !state.hasConflict() && state.entries.empty() &&
         state.superseded.empty();
}

/// Whether the record alone says all that matters of a field's state: one current
/// version with the id its author's SDK derives, no competing values, no entries,
/// and no replaced versions. Replaced versions are kept: a change can reach this
/// device after the change that replaced it (the convergence test found such an
/// order), and only the list tells the merge it is history, not a competing value.
/// `derived`: changes of this field whose ids are known to be derived (no need to
/// hash again when the current version is one of them).
bool derivable(const Record& record, const std::string& field, const sync::FieldState& state,
               sync::MergePolicy policy, std::span<sync::Change* const> derived) {
  if (field == sync::kRecordField || !onlyCurrent(state, policy)) {
    return false;
  }
  if (!state.current) {
    return !record.changedClocks.contains(field);
  }
  const sync::FieldVersion& v = *state.current;
  if (std::holds_alternative<sync::Tombstone>(v.value)) {
    return false;
  }
  for (const sync::Change* c : derived) {
    // The same author, time, record and field: the same derived id.
    if (v.changeId == c->changeId && v.hlc == c->hlc && v.deviceId == c->deviceId) {
      return true;
    }
  }
  return v.changeId == changeIdOf(v.deviceId, record.id, field, v.hlc);
}

/// The derived ids of a record's changes that came without them (all-zero), one
/// hash prefix per write.
class IdFiller {
public:
  void operator()(sync::Change& c) {
    if (!c.changeId.isNil()) {
      return;
    }
    if (!derive_ || hlc_ != c.hlc || device_ != c.deviceId || record_ != c.recordId) {
      derive_.emplace(c.deviceId, c.recordId, c.hlc);
      hlc_ = c.hlc;
      device_ = c.deviceId;
      record_ = c.recordId;
    }
    c.changeId = (*derive_)(c.field);
  }

private:
  std::optional<sync::ChangeIdDeriver> derive_;
  sync::Hlc hlc_;
  Uuid device_;
  Uuid record_;
};

/// Gives the versions `c` put into `state` without an id (all-zero) the id `c` now has.
void giveIds(sync::FieldState& state, const sync::Change& c) {
  const auto fill = [&](sync::FieldVersion& v) {
    if (v.changeId.isNil() && v.hlc == c.hlc && v.deviceId == c.deviceId) {
      v.changeId = c.changeId;
    }
  };
  if (state.current) {
    fill(*state.current);
  }
  std::for_each(state.conflicts.begin(), state.conflicts.end(), fill);
  std::for_each(state.entries.begin(), state.entries.end(), fill);
}

void deleteFieldState(RecordStore::Impl& s, sql::Database& db, std::int64_t rid,
                      std::string_view field) {
  StatementUse st(s.stmt(db, "DELETE FROM field_sync WHERE rid = ?1 AND field = ?2"));
  st->bind(1, rid).bind(2, field).run();
}

} // namespace

void createSyncTables(sql::Database& db) {
  db.exec("CREATE TABLE IF NOT EXISTS field_sync(rid INTEGER NOT NULL, field TEXT NOT NULL, "
          "state BLOB NOT NULL, in_conflict INTEGER NOT NULL, PRIMARY KEY(rid, field)) "
          "WITHOUT ROWID");
}

std::optional<sync::FieldState> loadFieldState(RecordStore::Impl& s, sql::Database& db,
                                               std::int64_t rid, std::string_view field) {
  StatementUse st(s.stmt(db, "SELECT state FROM field_sync WHERE rid = ?1 AND field = ?2"));
  st->bind(1, rid).bind(2, field);
  if (!st->step()) {
    return std::nullopt;
  }
  const auto raw = st->columnBlob(0);
  return sync::decodeFieldState({reinterpret_cast<const char*>(raw.data()), raw.size()});
}

std::map<std::string, sync::FieldState, std::less<>>
loadFieldStates(RecordStore::Impl& s, sql::Database& db, std::int64_t rid) {
  std::map<std::string, sync::FieldState, std::less<>> out;
  StatementUse st(s.stmt(db, "SELECT field, state FROM field_sync WHERE rid = ?1"));
  st->bind(1, rid);
  while (st->step()) {
    const auto raw = st->columnBlob(1);
    out.emplace(std::string(st->columnText(0)),
                sync::decodeFieldState({reinterpret_cast<const char*>(raw.data()), raw.size()}));
  }
  return out;
}

std::vector<std::pair<std::string, sync::FieldState>>
loadConflictedFields(RecordStore::Impl& s, sql::Database& db, std::int64_t rid) {
  std::vector<std::pair<std::string, sync::FieldState>> out;
  StatementUse st(s.stmt(db, "SELECT field, state FROM field_sync WHERE rid = ?1 AND "
                             "in_conflict = 1 ORDER BY field"));
  st->bind(1, rid);
  while (st->step()) {
    const auto raw = st->columnBlob(1);
    out.emplace_back(
        std::string(st->columnText(0)),
        sync::decodeFieldState({reinterpret_cast<const char*>(raw.data()), raw.size()}));
  }
  return out;
}

void mergeLocalWrite(RecordStore::Impl& s, sql::Database& db, std::int64_t rid, const Uuid& record,
                     const EntityType& type, const FieldValues& changed, Hlc hlc,
                     const std::map<std::string, JournalBase, std::less<>>* bases) {
  bool touched = false;
  // A record this write creates has no stored state (its rid is new, and a purge
  // deletes a record's states with it): nothing to look up, field by field.
  const bool created = bases == nullptr;
  const auto specs = s.schema.fieldsByName(type);
  if (created && std::none_of(specs.begin(), specs.end(), [](const FieldSpec* f) {
        return f->policy == sync::MergePolicy::appendOnly;
      })) {
    return; // and a type with no append-only field has nothing to keep for it
  }
  PolicyWalk policies(s.schema, &type); // `changed` is in name order
  for (const auto& [name, value] : changed) {
    const sync::MergePolicy policy = policies(name);
    if (created && policy != sync::MergePolicy::appendOnly) {
      continue; // local history only: derived when needed
    }
    auto state = created ? std::nullopt : loadFieldState(s, db, rid, name);
    if (!state) {
      if (policy != sync::MergePolicy::appendOnly) {
        continue; // local history only: derived when needed
      }
      state.emplace();
    }
    sync::Change c;
    c.changeId = changeIdOf(s.device, record, name, hlc);
    c.recordId = record;
    c.recordType = type.name;
    c.field = name;
    c.value = value;
    c.hlc = hlc;
    c.deviceId = s.device;
    if (bases) {
      if (const auto b = bases->find(name); b != bases->end()) {
        if (b->second.base) {
          c.baseHlc = b->second.base->hlc;
          c.baseDeviceId = b->second.base->deviceId;
        }
        c.resolves = b->second.resolves;
      }
    }
    (void)sync::merge(*state, c, policy, false);
    touched = true;
    // Only a state the record says all of may go (this write is its current version).
    if (onlyCurrent(*state, policy) && state->current && state->current->changeId == c.changeId) {
      deleteFieldState(s, db, rid, name);
    } else {
      saveFieldState(s, db, rid, name, *state);
    }
  }
  if (touched) {
    const std::int64_t conflicts = conflictCount(s, db, rid);
    StatementUse u(s.stmt(db, "UPDATE records SET conflicts = ?2 WHERE rid = ?1"));
    u->bind(1, rid).bind(2, conflicts).run();
  }
}

namespace {

/// What a pulled batch does to one field of a record.
struct FieldMerge {
  std::string_view field;
  sync::MergePolicy policy = sync::MergePolicy::lww;
  sync::FieldState state;
  bool stored = false;           ///< the field had a state row
  bool conflictedBefore = false; ///< it held competing values before
  /// Its changes with ids known to be derived: [derivedFrom, derivedTo) of the
  /// record's list of them.
  std::size_t derivedFrom = 0;
  std::size_t derivedTo = 0;
};

/// The audit detail of a receive: {"fields":[...]}, as nlohmann::json writes it.
std::string receivedFieldsDetail(const std::vector<FieldMerge>& merges) {
  std::string out = R"({"fields":[)";
  for (std::size_t i = 0; i < merges.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    const std::string_view name = merges[i].field;
    // Field names are identifiers: quoted as they are, unless JSON would escape them.
    if (std::all_of(name.begin(), name.end(), [](char ch) {
          const auto u = static_cast<unsigned char>(ch);
          return u >= 0x20 && u < 0x80 && ch != '"' && ch != '\\';
        })) {
      out += '"';
      out += name;
      out += '"';
    } else {
      out += nlohmann::json(name).dump();
    }
  }
  out += "]}";
  return out;
}

} // namespace

RemoteMergeResult applyRemote(RecordStore::Impl& s, std::span<const RemoteBatch> batches,
                              std::uint64_t cursor) {
  bool anyDerived = false;
  for (const RemoteBatch& b : batches) {
    if (!b.derivedIds.empty() && b.derivedIds.size() != b.changes.size()) {
      throw Error(Errc::invalid_argument, "one derived-id flag per pulled change");
    }
    anyDerived = anyDerived || !b.derivedIds.empty();
  }
  // Whether the wire left out `c`'s id (the batches are few: found by address;
  // std::less orders pointers into different arrays too).
  const auto isDerived = [&](const sync::Change* c) {
    const std::less<const sync::Change*> precedes;
    for (const RemoteBatch& b : batches) {
      if (!precedes(c, b.changes.data()) && precedes(c, b.changes.data() + b.changes.size())) {
        return !b.derivedIds.empty() &&
               b.derivedIds[static_cast<std::size_t>(c - b.changes.data())];
      }
    }
    return false;
  };
  RemoteMergeResult out;
  s.write([&](sql::Database& db, WriteState& ws) {
    // Per record, in the order records first appear.
    std::vector<Uuid> order;
    std::unordered_map<Uuid, std::vector<sync::Change*>> groups;
    // A write's changes arrive together: the group of the change before is looked
    // up once, not per change (the map's elements stay put as it grows).
    std::vector<sync::Change*>* last = nullptr;
    const Uuid* lastId = nullptr;
    for (const RemoteBatch& b : batches) {
      for (sync::Change& c : b.changes) {
        if (c.deviceId == s.device) {
          continue; // our own change, echoed back: we have it
        }
        if (last == nullptr || *lastId != c.recordId) {
          last = &groups[c.recordId];
          lastId = &c.recordId;
          if (last->empty()) {
            order.push_back(c.recordId);
          }
        }
        last->push_back(&c);
      }
    }
    const std::int64_t nowMs = s.clock.unixMillis();
    std::vector<FieldMerge> merges;
    std::vector<sync::Change*> derived; // of the record, by field
    for (const Uuid& id : order) {
      auto& group = groups[id];
      std::int64_t rid = 0;
      std::optional<Record> loaded = s.load(db, id, &rid);
      const bool before = loaded.has_value();
      Record rec;
      if (before) {
        rec = std::move(*loaded);
      } else {
        // A record another device created: its row is written once merged.
        const sync::Change* first = group.front();
        for (const sync::Change* c : group) {
          if (c->hlc < first->hlc) {
            first = c;
          }
        }
        rec.id = id;
        rec.type = first->recordType;
        rec.createdHlc = first->hlc;
        rec.device = first->deviceId;
        rec.createdAtMs = static_cast<std::int64_t>(first->hlc.physicalMs());
      }
      const EntityType* type = s.schema.find(rec.type);

      // The record's changes by field, in name order; a field's changes keep
      // their order. Each field's state is read once (a new record has none),
      // merged with all of its changes, then materialised.
      const auto byField = [](const sync::Change* x, const sync::Change* y) {
        return x->field < y->field;
      };
      if (!std::is_sorted(group.begin(), group.end(), byField)) { // a write's usually are
        std::stable_sort(group.begin(), group.end(), byField);
      }
      // Ids the wire left out are derived now where the merge compares them: with the
      // versions this store holds, or between changes of one field. Otherwise they
      // are derived only for a field whose state is stored (below).
      IdFiller fillId;
      const bool idsNow =
          !anyDerived || before ||
          std::adjacent_find(group.begin(), group.end(), [](const auto* x, const auto* y) {
            return x->field == y->field;
          }) != group.end();
      if (idsNow) {
        for (sync::Change* c : group) {
          fillId(*c);
        }
      }
      auto stored = before ? loadFieldStates(s, db, rid)
                           : std::map<std::string, sync::FieldState, std::less<>>{};
      const bool hadRows = !stored.empty();
      merges.clear();
      derived.clear();
      PolicyWalk policyOfField(s.schema, type);
      FieldValues changedValues; // of a record that existed (a new one: all its fields)
      std::vector<const FieldMerge*> toSave;
      bool deletedRows = false;
      // A record new here made by one write that sets each field once (no two
      // changes of a field: !idsNow), on no base, with ids the wire left out: the
      // merge gives each value at the write's clock, which is the record's, and keeps
      // a state row for append-only fields only. That is done directly, each value
      // moved rather than copied through a merge state: pull_all's common case.
      const bool oneCreate = !before && !idsNow && type != nullptr &&
                             std::all_of(group.begin(), group.end(), [&](const sync::Change* c) {
                               return c->hlc == rec.createdHlc && c->deviceId == rec.device &&
                                      c->baseHlc.isZero() && c->resolves.empty() &&
                                      c->field != sync::kRecordField && isDerived(c) &&
                                      !std::holds_alternative<sync::Null>(c->value) &&
                                      !std::holds_alternative<sync::Tombstone>(c->value);
                             });
      const auto none = std::span<sync::Change* const>();
      for (sync::Change* c : oneCreate ? std::span<sync::Change* const>(group) : none) {
        ++out.merged;
        const sync::MergePolicy policy = policyOfField(c->field);
        if (policy != sync::MergePolicy::appendOnly) {
          rec.fields.insert_or_assign(rec.fields.end(), c->field, std::move(c->value));
          continue;
        }
        FieldMerge& m = merges.emplace_back();
        m.field = c->field;
        m.policy = policy;
        (void)sync::merge(m.state, *c, policy, false);
        fillId(*c);
        giveIds(m.state, *c);
        materialise(rec, c->field, m.state, policy);
      }
      if (oneCreate) {
        for (const FieldMerge& m : merges) {
          toSave.push_back(&m); // append-only fields: their one entry
        }
      }
      for (sync::Change* c : oneCreate ? none : std::span<sync::Change* const>(group)) {
        if (merges.empty() || merges.back().field != c->field) {
          FieldMerge& m = merges.emplace_back();
          m.field = c->field;
          m.policy = policyOfField(c->field);
          if (const auto row = stored.find(c->field); row != stored.end()) {
            m.state = std::move(row->second);
            m.stored = true;
          } else if (before) {
            m.state = localState(rec, c->field, m.policy);
          }
          m.conflictedBefore = m.state.hasConflict();
          m.derivedFrom = m.derivedTo = derived.size();
        }
        if (anyDerived && isDerived(c)) {
          derived.push_back(c);
          merges.back().derivedTo = derived.size();
        }
        // As on the server: whether a field is frozen is decided where it is written.
        (void)sync::merge(merges.back().state, *c, merges.back().policy, false);
        ++out.merged;
      }

      for (FieldMerge& m : oneCreate ? std::span<FieldMerge>() : std::span(merges)) {
        const std::string field(m.field);
        const auto knownDerived =
            std::span(derived).subspan(m.derivedFrom, m.derivedTo - m.derivedFrom);
        bool keepState = false;
        if (before) {
          const sync::Value was = rec.get(field);
          materialise(rec, field, m.state, m.policy);
          if (!(rec.get(field) == was)) {
            changedValues.insert_or_assign(field, rec.get(field));
          }
          keepState = !derivable(rec, field, m.state, m.policy, knownDerived);
        } else {
          // A new record's field is materialised once, so whether its state must be
          // kept is known before (and the value can be moved when it need not be).
          keepState = !derivable(rec, field, m.state, m.policy, knownDerived);
          materialise(rec, field, m.state, m.policy, !keepState);
        }
        if (keepState) {
          if (!idsNow) {
            for (sync::Change* c : knownDerived) {
              fillId(*c);
              giveIds(m.state, *c);
            }
          }
          toSave.push_back(&m);
        } else if (m.stored) {
          deleteFieldState(s, db, rid, field);
          deletedRows = true;
        }
        if (m.state.hasConflict() && !m.conflictedBefore) {
          ++out.newConflicts;
        }
      }

      // A new record: as many fields as the changes name (each once for oneCreate).
      const std::size_t fieldCount = oneCreate ? group.size() : merges.size();
      const std::string fields = sync::encodeFields(rec.fields, s.fieldNames.codec());
      const std::string clocks = encodeClocks(rec.changedClocks);
      const auto textOrNull = [&](sql::Statement& st, int index, std::string_view name) {
        const auto* t = name.empty() ? nullptr : std::get_if<std::string>(&rec.get(name));
        if (t) {
          st.bind(index, std::string_view(*t));
        } else {
          st.bindNull(index);
        }
      };
      const auto bindDue = [&](sql::Statement& st, int index) {
        st.bindNull(index);
        if (type && type->dueAt) {
          if (const auto due = type->dueAt(rec.fields)) {
            st.bind(index, *due);
          }
        }
      };
      const std::string_view riskField =
          type ? std::string_view(type->riskField) : std::string_view();
      if (before) {
        for (const FieldMerge* m : toSave) {
          saveFieldState(s, db, rid, m->field, m->state);
        }
        // Rows of fields this batch did not touch count too.
        const std::int64_t conflicts =
            hadRows || !toSave.empty() || deletedRows ? conflictCount(s, db, rid) : 0;
        StatementUse up(s.stmt(
            db, "UPDATE records SET status = ?2, risk = ?3, due_at = ?4, updated_at = ?5, fields = "
                "?6, clocks = ?7, conflicts = ?8 WHERE rid = ?1"));
        up->bind(1, rid);
        textOrNull(*up, 2, "status");
        textOrNull(*up, 3, riskField);
        bindDue(*up, 4);
        up->bind(5, nowMs)
            .bindBlob(6, blobOf(fields))
            .bindBlob(7, blobOf(clocks))
            .bind(8, conflicts);
        up->run();
      } else {
        std::int64_t conflicts = 0;
        for (const FieldMerge* m : toSave) {
          conflicts += m->state.hasConflict() ? 1 : 0;
        }
        StatementUse ins(s.stmt(
            db, "INSERT INTO records(id, type, status, risk, due_at, created_at, updated_at, "
                "created_hlc, device, conflicts, fields, clocks) VALUES "
                "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"));
        ins->bindBlob(1, uuidBytes(id)).bind(2, std::string_view(rec.type));
        textOrNull(*ins, 3, "status");
        textOrNull(*ins, 4, riskField);
        bindDue(*ins, 5);
        ins->bind(6, rec.createdAtMs)
            .bind(7, nowMs)
            .bind(8, static_cast<std::int64_t>(rec.createdHlc.value))
            .bindBlob(9, uuidBytes(rec.device))
            .bind(10, conflicts)
            .bindBlob(11, blobOf(fields))
            .bindBlob(12, blobOf(clocks))
            .run();
        rid = db.lastInsertRowid();
        s.knownTypes.erase(id);
        for (const FieldMerge* m : toSave) {
          saveFieldState(s, db, rid, m->field, m->state);
        }
      }
      if (type) {
        indexRecord(s, db, *type, rid, before, rec.fields, before ? changedValues : rec.fields);
      }
      // A record new here is audited like a create: how many fields it came with.
      appendAudit(ws, nowMs, AuditAction::receive, id, rec.type,
                  before ? receivedFieldsDetail(merges)
                         : "{\"fields\":" + std::to_string(fieldCount) + "}");
      ++out.records;
    }
    StatementUse c(s.stmt(db, "INSERT OR REPLACE INTO store_meta(key, value) VALUES "
                              "('sync.cursor', ?1)"));
    c->bind(1, static_cast<std::int64_t>(cursor)).run();
  });
  return out;
}

void checkpointWal(RecordStore::Impl& s) {
  s.read([](sql::Database& db) {
    const int rc = sqlite3_wal_checkpoint_v2(db.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                             nullptr, nullptr);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
      throw Error(Errc::io,
                  std::string("cannot copy the vault's log into its file: ") + sqlite3_errstr(rc));
    }
  });
}

std::uint64_t pullCursor(RecordStore::Impl& s) {
  std::uint64_t cursor = 0;
  s.read([&](sql::Database& db) {
    StatementUse st(s.stmt(db, "SELECT value FROM store_meta WHERE key = 'sync.cursor'"));
    if (st->step()) {
      cursor = static_cast<std::uint64_t>(st->columnInt(0));
    }
  });
  return cursor;
}

PurgeResult purgeRecords(RecordStore::Impl& s, std::span<const Uuid> records) {
  PurgeResult out;
  s.write([&](sql::Database& db, WriteState& ws) {
    const std::int64_t nowMs = s.clock.unixMillis();
    for (const Uuid& id : records) {
      std::int64_t rid = 0;
      const auto record = s.load(db, id, &rid);
      if (!record) {
        continue;
      }
      std::int64_t discarded = 0;
      {
        StatementUse j(s.stmt(db, "DELETE FROM journal WHERE rid = ?1"));
        j->bind(1, rid).run();
        discarded = db.changes();
        s.pending.removeAll(rid);
      }
      for (const char* sqlText :
           {"DELETE FROM field_sync WHERE rid = ?1", "DELETE FROM record_links WHERE rid = ?1",
            "DELETE FROM record_text WHERE rowid = ?1", "DELETE FROM records WHERE rid = ?1"}) {
        StatementUse d(s.stmt(db, sqlText));
        d->bind(1, rid).run();
      }
      s.knownTypes.erase(id);
      appendAudit(ws, nowMs, AuditAction::purge, id, record->type,
                  nlohmann::json{{"discardedWrites", discarded}}.dump());
      out.removed.push_back(id);
      out.discardedWrites += static_cast<std::size_t>(discarded);
    }
  });
  return out;
}

void adoptDeviceId(RecordStore::Impl& s, const Uuid& device) {
  if (s.device == device) {
    return;
  }
  const Uuid old = s.device;
  s.write([&](sql::Database& db, WriteState&) {
    sql::Statement(db, "UPDATE records SET device = ?2 WHERE device = ?1")
        .bindBlob(1, uuidBytes(old))
        .bindBlob(2, uuidBytes(device))
        .run();
    std::vector<std::pair<std::int64_t, std::string>> rewritten;
    {
      sql::Statement st(db, "SELECT rid, clocks FROM records WHERE clocks IS NOT NULL");
      while (st.step()) {
        const auto raw = st.columnBlob(1);
        auto clocks = decodeClocks({reinterpret_cast<const char*>(raw.data()), raw.size()});
        bool changed = false;
        for (auto& [name, c] : clocks) {
          if (c.device == old) {
            c.device = device;
            changed = true;
          }
        }
        if (changed) {
          rewritten.emplace_back(st.columnInt(0), encodeClocks(clocks));
        }
      }
    }
    for (const auto& [rid, clocks] : rewritten) {
      sql::Statement(db, "UPDATE records SET clocks = ?2 WHERE rid = ?1")
          .bind(1, rid)
          .bindBlob(2, blobOf(clocks))
          .run();
    }
    // Pending edits name the versions they replaced by device too.
    std::vector<std::pair<std::int64_t, std::string>> journal;
    {
      sql::Statement st(db, "SELECT seq, bases FROM journal WHERE bases IS NOT NULL");
      while (st.step()) {
        const auto raw = st.columnBlob(1);
        journal.emplace_back(
            st.columnInt(0),
            restampBases({reinterpret_cast<const char*>(raw.data()), raw.size()}, old, device));
      }
    }
    for (const auto& [seq, bases] : journal) {
      sql::Statement(db, "UPDATE journal SET bases = ?2 WHERE seq = ?1")
          .bind(1, seq)
          .bindBlob(2, blobOf(bases))
          .run();
    }
    sql::Statement(db, "INSERT OR REPLACE INTO store_meta(key, value) VALUES ('device', ?1)")
        .bindBlob(1, uuidBytes(device))
        .run();
  });
  s.device = device;
}

void resetPullCursor(RecordStore::Impl& s) {
  s.write([&](sql::Database& db, WriteState&) {
    sql::Statement st(db, "INSERT OR REPLACE INTO store_meta(key, value) VALUES (?1, 0)");
    st.bind(1, metaKey("cursor")).run();
  });
}

std::optional<std::string> syncMeta(RecordStore::Impl& s, std::string_view key) {
  std::optional<std::string> out;
  s.read([&](sql::Database& db) {
    sql::Statement st(db, "SELECT value FROM store_meta WHERE key = ?1");
    st.bind(1, metaKey(key));
    if (st.step()) {
      out = std::string(st.columnText(0));
    }
  });
  return out;
}

void setSyncMeta(RecordStore::Impl& s, std::string_view key, std::string_view value) {
  s.write([&](sql::Database& db, WriteState&) {
    sql::Statement st(db, "INSERT OR REPLACE INTO store_meta(key, value) VALUES (?1, ?2)");
    st.bind(1, metaKey(key)).bind(2, value).run();
  });
}

} // namespace outpost::model
