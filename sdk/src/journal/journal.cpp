// The change journal (outbox) and per-record sync state.

#include "../model/record_store_impl.hpp"

#include <outpost/error.hpp>

#include <algorithm>
#include <map>

namespace outpost::model {

void createJournalTables(sql::Database& db) {
  // seq orders the outbox; entries leave it when acknowledged. The record is
  // referenced by its local rowid (small) and the device is the store's own.
  db.exec("CREATE TABLE IF NOT EXISTS journal(seq INTEGER PRIMARY KEY, change_id BLOB NOT NULL, "
          "rid INTEGER NOT NULL, field TEXT NOT NULL, value BLOB NOT NULL, hlc INTEGER NOT NULL, "
          "base_hlc INTEGER NOT NULL)");
}

void appendJournal(RecordStore::Impl& store, sql::Database& db, std::int64_t rid,
                   std::string_view field, const Value& value, Hlc hlc, Hlc base) {
  std::string encoded;
  sync::encodeValue(value, encoded);
  const Uuid changeId = Uuid::random();
  StatementUse s(store.stmt(db, "INSERT INTO journal(change_id, rid, field, value, hlc, base_hlc) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  s->bindBlob(1, uuidBytes(changeId))
      .bind(2, rid)
      .bindStatic(3, field)
      .bindBlob(4,
                std::span(reinterpret_cast<const unsigned char*>(encoded.data()), encoded.size()))
      .bind(5, static_cast<std::int64_t>(hlc.value))
      .bind(6, static_cast<std::int64_t>(base.value))
      .run();
}

std::vector<JournalEntry> Journal::pending(std::size_t maxEntries, std::int64_t afterSeq) {
  std::vector<JournalEntry> out;
  store_.read([&](sql::Database& db) {
    StatementUse s(store_.stmt(
        db, "SELECT j.seq, j.change_id, r.id, r.type, j.field, j.value, j.hlc, j.base_hlc "
            "FROM journal j JOIN records r ON r.rid = j.rid WHERE j.seq > ?1 ORDER BY j.seq "
            "LIMIT ?2"));
    s->bind(1, afterSeq).bind(2, static_cast<std::int64_t>(maxEntries));
    while (s->step()) {
      JournalEntry e;
      e.seq = s->columnInt(0);
      e.change.changeId = uuidColumn(*s, 1);
      e.change.recordId = uuidColumn(*s, 2);
      e.change.recordType = std::string(s->columnText(3));
      e.change.field = std::string(s->columnText(4));
      const auto raw = s->columnBlob(5);
      std::string_view in(reinterpret_cast<const char*>(raw.data()), raw.size());
      e.change.value = sync::decodeValue(in);
      e.change.hlc = Hlc{static_cast<std::uint64_t>(s->columnInt(6))};
      e.change.baseHlc = Hlc{static_cast<std::uint64_t>(s->columnInt(7))};
      e.change.deviceId = store_.device;
      out.push_back(std::move(e));
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
    std::map<std::int64_t, std::int64_t> perRecord; // rid -> entries acknowledged
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
