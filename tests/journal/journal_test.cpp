#include "../records/records_fixture.hpp"
#include "model/record_store_impl.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <set>

using namespace outpost;
using namespace outpost::test;
using namespace std::chrono_literals;

namespace {

/// The seqs of the writes in the outbox (of `record` only, when given), oldest first.
std::vector<std::int64_t> outboxSeqs(model::Journal& journal,
                                     const std::optional<Uuid>& record = std::nullopt) {
  std::vector<std::int64_t> seqs;
  for (const auto& e : journal.pending(100000)) {
    if ((!record || e.change.recordId == *record) && (seqs.empty() || seqs.back() != e.seq)) {
      seqs.push_back(e.seq);
    }
  }
  return seqs;
}

/// Every column of every row of `records`, as text.
std::string recordRows(RecordsFixture& f) {
  std::string rows;
  f.vault->read([&](sql::Database& db) {
    rows = db.queryText(
        "SELECT group_concat(quote(rid) || quote(id) || quote(type) || quote(status) || "
        "quote(risk) || quote(due_at) || quote(created_at) || quote(updated_at) || "
        "quote(created_hlc) || quote(device) || quote(sync_state) || quote(sync_reason) || "
        "quote(pending) || quote(conflicts) || quote(fields) || quote(clocks), ';') "
        "FROM (SELECT * FROM records ORDER BY rid)");
  });
  return rows;
}

/// What the vault's connection has written so far: rows changed (inserted, updated or
/// deleted) and pages written out of its page cache.
struct Written {
  std::int64_t rows = 0;
  int pages = 0;
};

Written writtenSoFar(RecordsFixture& f) {
  Written w;
  f.vault->read([&](sql::Database& db) {
    w.rows = db.queryInt("SELECT total_changes()");
    int highwater = 0;
    REQUIRE(sqlite3_db_status(db.handle(), SQLITE_DBSTATUS_CACHE_WRITE, &w.pages, &highwater, 0) ==
            SQLITE_OK);
  });
  return w;
}

/// What `work` wrote, less what an acknowledgement of nothing writes (the transaction's
/// own bookkeeping).
template <class F>
Written writtenBy(RecordsFixture& f, F&& work) {
  const Written start = writtenSoFar(f);
  const std::int64_t unknown = std::numeric_limits<std::int64_t>::max();
  (void)f.store->journal().acknowledge(std::span(&unknown, 1));
  const Written idle = writtenSoFar(f);
  work();
  const Written end = writtenSoFar(f);
  return {(end.rows - idle.rows) - (idle.rows - start.rows),
          (end.pages - idle.pages) - (idle.pages - start.pages)};
}

std::set<Uuid> idsInState(RecordsFixture& f, model::SyncState state) {
  model::RecordQuery q;
  q.syncState = state;
  q.limit = 1000;
  const auto page = f.store->queryIds(q);
  return {page.ids.begin(), page.ids.end()};
}

/// The record's state as the journal, a read and a query say it (they must agree).
model::SyncState stateOf(RecordsFixture& f, const Uuid& id) {
  const model::SyncState state = f.store->journal().status(id)->state;
  CHECK(f.store->get(id)->syncState == state);
  CHECK(idsInState(f, state).contains(id));
  return state;
}

} // namespace

TEST_SUITE("journal") {
  TEST_CASE("pending entries come oldest first in bounded batches of whole writes") {
    RecordsFixture f;
    std::vector<Uuid> ids;
    for (int i = 0; i < 5; ++i) {
      ids.push_back(f.store->create("test.case", f.caseFields("c" + std::to_string(i))));
    }
    f.store->update(ids[0], {{"count", std::int64_t{1}}});
    CHECK(f.store->journal().pendingCount() == 6);
    // each create lists the fields it set (5; the first record's count came
    // later, in its own write); a batch of 12 holds two whole writes
    auto batch = f.store->journal().pending(12);
    REQUIRE(batch.size() == 10);
    CHECK(batch.front().change.recordId == ids[0]);
    CHECK(batch.back().change.recordId == ids[1]);
    // a write larger than the batch is still returned whole
    CHECK(f.store->journal().pending(1).size() == 5);
    // paging after the last seq read
    auto next = f.store->journal().pending(100, batch.back().seq);
    REQUIRE(next.size() == 3 * 5 + 1);
    CHECK(next.front().change.recordId == ids[2]);
    CHECK(next.back().change.field == "count");
    std::set<Uuid> changeIds;
    for (const auto& e : f.store->journal().pending(1000)) {
      CHECK(changeIds.insert(e.change.changeId).second);
      CHECK(e.change.hlc > sync::Hlc{});
    }
  }

  TEST_CASE("change ids are stable between listings (the server deduplicates on them)") {
    RecordsFixture f;
    (void)f.store->create("test.case", f.caseFields());
    const auto a = f.store->journal().pending(100);
    const auto b = f.store->journal().pending(100);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].change == b[i].change);
    }
  }

  TEST_CASE("acknowledging writes removes them and marks fully pushed records synced") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields("a"));
    const Uuid b = f.store->create("test.case", f.caseFields("b"));
    f.store->update(a, {{"count", std::int64_t{1}}});
    const auto entries = f.store->journal().pending(100);
    std::vector<std::int64_t> seqs;
    for (const auto& e : entries) {
      if (e.change.recordId == a && (seqs.empty() || seqs.back() != e.seq)) {
        seqs.push_back(e.seq);
      }
    }
    REQUIRE(seqs.size() == 2);
    const auto commits = f.vault->commitCount();
    CHECK(f.store->journal().acknowledge(std::span(seqs.data(), 1)) == 1);
    CHECK(f.store->journal().status(a)->state == model::SyncState::pending);
    CHECK(f.store->journal().acknowledge(seqs) == 1); // the first again: idempotent
    CHECK(f.vault->commitCount() == commits + 2);     // one transaction each
    CHECK(f.store->journal().status(a)->state == model::SyncState::synced);
    CHECK(f.store->journal().status(b)->state == model::SyncState::pending);
    CHECK(f.store->journal().pendingCount() == 1);
    // a new edit makes it pending again
    f.store->update(a, {{"count", std::int64_t{2}}});
    CHECK(f.store->journal().status(a)->state == model::SyncState::pending);
  }

  TEST_CASE("an acknowledgement takes the writes out of the outbox and leaves the record rows "
            "unwritten") {
    RecordsFixture f;
    constexpr int kRecords = 40;
    std::vector<Uuid> ids;
    for (int i = 0; i < kRecords; ++i) {
      // rows of ~1.5 KB, as in the field: a few to a vault page
      FieldValues fields = f.caseFields("case " + std::to_string(i));
      fields["body"] = std::string(1500, static_cast<char>('a' + i % 26));
      ids.push_back(f.store->create("test.case", fields));
    }
    const auto seqs = outboxSeqs(f.store->journal());
    REQUIRE(seqs.size() == kRecords);
    for (const Uuid& id : ids) {
      CHECK(stateOf(f, id) == model::SyncState::pending);
    }
    const std::string rows = recordRows(f);
    const Written acked =
        writtenBy(f, [&] { CHECK(f.store->journal().acknowledge(seqs) == kRecords); });
    // only the outbox rows went: no record row changed, none was rewritten
    CHECK(recordRows(f) == rows);
    CHECK(acked.rows == kRecords);
    // the outbox's pages (its table and index), not the ~20 pages of the record rows
    CHECK(acked.pages <= 4);
    CHECK(f.store->journal().pendingCount() == 0);
    for (const Uuid& id : ids) {
      CHECK(stateOf(f, id) == model::SyncState::synced);
    }
    // again: nothing is acknowledged and nothing written
    const Written again = writtenBy(f, [&] { CHECK(f.store->journal().acknowledge(seqs) == 0); });
    CHECK(again.rows == 0);
  }

  TEST_CASE("a record is pending while any of its writes is in the outbox") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields("a"));
    f.store->update(a, {{"count", std::int64_t{1}}});
    const auto seqs = outboxSeqs(f.store->journal(), a);
    REQUIRE(seqs.size() == 2);
    CHECK(f.store->journal().acknowledge(std::span(seqs.data(), 1)) == 1);
    CHECK(stateOf(f, a) == model::SyncState::pending);
    f.restart();
    CHECK(stateOf(f, a) == model::SyncState::pending);
    CHECK(f.store->journal().acknowledge(std::span(seqs.data() + 1, 1)) == 1);
    CHECK(stateOf(f, a) == model::SyncState::synced);
    f.store->update(a, {{"count", std::int64_t{2}}});
    CHECK(stateOf(f, a) == model::SyncState::pending);
  }

  TEST_CASE("a rejection stays through acknowledgements that do not clear it and ends with one "
            "that does, which writes only the rejected record's row") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields("a"));
    const Uuid b = f.store->create("test.case", f.caseFields("b"));
    f.store->update(a, {{"count", std::int64_t{1}}});
    f.store->journal().markRejected(a, "out_of_scope");
    const auto seqsA = outboxSeqs(f.store->journal(), a);
    const auto seqsB = outboxSeqs(f.store->journal(), b);
    REQUIRE(seqsA.size() == 2);
    REQUIRE(seqsB.size() == 1);
    CHECK(stateOf(f, a) == model::SyncState::rejected);

    // Journal::acknowledge never clears a rejection
    const Written kept = writtenBy(
        f, [&] { CHECK(f.store->journal().acknowledge(std::span(seqsA.data(), 1)) == 1); });
    CHECK(kept.rows == 1); // the outbox row only
    CHECK(stateOf(f, a) == model::SyncState::rejected);
    CHECK(f.store->journal().status(a)->reason == "out_of_scope");
    f.store->update(a, {{"count", std::int64_t{2}}}); // a write keeps it too
    CHECK(stateOf(f, a) == model::SyncState::rejected);
    // nor does the sync client's, when the server did not take the record's push
    std::vector<model::AckedWrite> notTaken{{seqsA[1], false}};
    CHECK(model::acknowledgeWrites(f.store->internals(), notTaken) == 1);
    CHECK(stateOf(f, a) == model::SyncState::rejected);

    // taken: a's last write and b's; b's row is not rewritten
    const auto last = outboxSeqs(f.store->journal(), a);
    REQUIRE(last.size() == 1);
    std::vector<model::AckedWrite> taken{{last[0], true}, {seqsB[0], true}};
    const Written cleared =
        writtenBy(f, [&] { CHECK(model::acknowledgeWrites(f.store->internals(), taken) == 2); });
    CHECK(cleared.rows == 3); // two outbox rows and a's row
    CHECK(stateOf(f, a) == model::SyncState::synced);
    CHECK(f.store->journal().status(a)->reason.empty());
    CHECK(stateOf(f, b) == model::SyncState::synced);
  }

  TEST_CASE("a conflict marked by the journal lasts until the record's next acknowledgement or "
            "write") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields("a"));
    const Uuid b = f.store->create("test.case", f.caseFields("b"));
    f.store->journal().markConflict(a);
    CHECK(stateOf(f, a) == model::SyncState::conflict);
    const auto seqsB = outboxSeqs(f.store->journal(), b);
    CHECK(f.store->journal().acknowledge(seqsB) == 1); // another record's
    CHECK(stateOf(f, a) == model::SyncState::conflict);
    f.restart();
    CHECK(stateOf(f, a) == model::SyncState::conflict);
    CHECK(f.store->journal().acknowledge(outboxSeqs(f.store->journal(), a)) == 1);
    CHECK(stateOf(f, a) == model::SyncState::synced);
    f.store->journal().markConflict(b);
    f.store->update(b, {{"count", std::int64_t{1}}});
    CHECK(stateOf(f, b) == model::SyncState::pending);
  }

  TEST_CASE("a vault whose record rows hold stale pending counts and states reads each record's "
            "state from its outbox and verdict") {
    RecordsFixture f;
    const Uuid unpushed = f.store->create("test.case", f.caseFields("unpushed"));
    const Uuid pushed = f.store->create("test.case", f.caseFields("pushed"));
    const Uuid rejected = f.store->create("test.case", f.caseFields("rejected"));
    const Uuid marked = f.store->create("test.case", f.caseFields("marked"));
    const Uuid conflicted = f.store->create("test.case", f.caseFields("conflicted"));
    for (const Uuid& id : {pushed, rejected, marked, conflicted}) {
      CHECK(f.store->journal().acknowledge(outboxSeqs(f.store->journal(), id)) == 1);
    }
    f.store->journal().markRejected(rejected, "validation");
    f.store->journal().markConflict(marked);
    // Columns as an older SDK may have left them, or worse.
    const auto stale = [&](const Uuid& id, std::string_view set) {
      f.vault->write([&](sql::Database& db) {
        sql::Statement s(db, "UPDATE records SET " + std::string(set) + " WHERE id = ?1");
        s.bindBlob(1, model::uuidBytes(id)).run();
        CHECK(db.changes() == 1);
      });
    };
    stale(unpushed, "sync_state = 1, pending = 0");
    stale(pushed, "sync_state = 0, pending = 4");
    stale(rejected, "pending = 2");
    stale(marked, "pending = 1");
    stale(conflicted, "sync_state = 2, conflicts = 1, pending = -3");
    f.restart();
    CHECK(stateOf(f, unpushed) == model::SyncState::pending);
    CHECK(stateOf(f, pushed) == model::SyncState::synced);
    CHECK(stateOf(f, rejected) == model::SyncState::rejected);
    CHECK(f.store->journal().status(rejected)->reason == "validation");
    CHECK(stateOf(f, marked) == model::SyncState::conflict);
    CHECK(stateOf(f, conflicted) == model::SyncState::conflict);
    CHECK(idsInState(f, model::SyncState::pending) == std::set<Uuid>{unpushed});
    CHECK(idsInState(f, model::SyncState::synced) == std::set<Uuid>{pushed});
    CHECK(idsInState(f, model::SyncState::rejected) == std::set<Uuid>{rejected});
    CHECK(idsInState(f, model::SyncState::conflict) == std::set<Uuid>{marked, conflicted});
    // and the next writes and acknowledgements go on from there
    f.store->update(pushed, {{"count", std::int64_t{1}}});
    CHECK(stateOf(f, pushed) == model::SyncState::pending);
    CHECK(f.store->journal().acknowledge(outboxSeqs(f.store->journal())) == 2);
    CHECK(stateOf(f, pushed) == model::SyncState::synced);
    CHECK(stateOf(f, unpushed) == model::SyncState::synced);
    CHECK(stateOf(f, conflicted) == model::SyncState::conflict);
  }

  TEST_CASE("conflict and rejection are stored with the reason") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields());
    f.store->journal().markConflict(a);
    CHECK(f.store->journal().status(a)->state == model::SyncState::conflict);
    f.store->journal().markRejected(a, "out of scope");
    const auto s = f.store->journal().status(a);
    CHECK(s->state == model::SyncState::rejected);
    CHECK(s->reason == "out of scope");
    CHECK_FALSE(f.store->journal().status(Uuid::random()).has_value());
    CHECK(errorCode([&] { f.store->journal().markConflict(Uuid::random()); }) == Errc::not_found);
    f.restart();
    CHECK(f.store->journal().status(a)->reason == "out of scope");
  }

  TEST_CASE("a vault made before the journal's record index opens with it and lists the same "
            "outbox") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields("a"));
    (void)f.store->create("test.case", f.caseFields("b"));
    f.store->update(a, {{"count", std::int64_t{1}}}); // a field added after the create
    const auto before = f.store->journal().pending(100);
    f.vault->write([](sql::Database& db) { db.exec("DROP INDEX journal_rid_idx"); });
    CHECK(f.count("SELECT count(*) FROM sqlite_master WHERE name = 'journal_rid_idx'") == 0);
    f.restart();
    CHECK(f.count("SELECT count(*) FROM sqlite_master WHERE name = 'journal_rid_idx'") == 1);
    const auto after = f.store->journal().pending(100);
    REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {
      CHECK(after[i].seq == before[i].seq);
      CHECK(after[i].change == before[i].change);
    }
    // the create lists the fields it set, not the one the later write added
    CHECK(std::count_if(after.begin(), after.end(), [&](const model::JournalEntry& e) {
            return e.change.recordId == a && e.change.field == "count";
          }) == 1);
  }

  TEST_CASE("the outbox and the HLC survive a restart, HLCs keep increasing") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields());
    const auto before = f.store->journal().pending(100);
    f.clock.advance(-24h);
    f.restart();
    const auto after = f.store->journal().pending(100);
    REQUIRE(after.size() == before.size());
    CHECK(after.front().change == before.front().change);
    f.store->update(a, {{"title", std::string("renamed")}});
    const auto last = f.store->journal().pending(100).back();
    CHECK(last.change.hlc > before.back().change.hlc);
    CHECK(last.change.field == "title");
    CHECK(last.change.baseHlc == before.front().change.hlc);
  }
}
