#include "../records/records_fixture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>

using namespace outpost;
using namespace outpost::test;
using namespace std::chrono_literals;

namespace {

/// The records a query for one sync state lists.
std::vector<outpost::model::Record> inState(outpost::model::RecordStore& store,
                                            outpost::model::SyncState state) {
  outpost::model::RecordQuery q;
  q.syncState = state;
  return store.query(q).records;
}

/// The seqs of the pending writes, oldest first, each once; only record `of`'s when given.
std::vector<std::int64_t> writeSeqs(outpost::model::RecordStore& store,
                                    const outpost::sync::Uuid* of = nullptr) {
  std::vector<std::int64_t> out;
  for (const auto& e : store.journal().pending(1000)) {
    if ((of == nullptr || e.change.recordId == *of) && (out.empty() || out.back() != e.seq)) {
      out.push_back(e.seq);
    }
  }
  return out;
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

  TEST_CASE("pending and synced follow the journal for any record number, across restarts") {
    RecordsFixture f;
    // Record numbers below 2^22 are counted in a vector, others in a map: records
    // on both sides of the line and far beyond it. A record gets the number after
    // the highest; a placeholder row, removed after, sets the highest.
    const auto createAt = [&](std::int64_t rid) {
      const std::string before = std::to_string(rid - 1);
      if (f.count("SELECT coalesce(max(rid), 0) FROM records") < rid - 1) {
        f.vault->write([&](sql::Database& db) {
          db.exec("INSERT INTO records(rid, id, type, created_at, updated_at, created_hlc, "
                  "device, fields) VALUES (" +
                  before + ", randomblob(16), 'placeholder', 0, 0, 0, x'00', x'00')");
        });
      }
      const Uuid id = f.store->create("test.case", f.caseFields("r" + std::to_string(rid)));
      f.vault->write(
          [&](sql::Database& db) { db.exec("DELETE FROM records WHERE type = 'placeholder'"); });
      CHECK(f.count("SELECT max(rid) FROM records") == rid);
      return id;
    };
    const Uuid a = createAt(1);
    const Uuid b = createAt((std::int64_t{1} << 22) - 1);
    const Uuid c = createAt(std::int64_t{1} << 22);
    const Uuid d = createAt(5000000000);
    f.store->update(b, {{"count", std::int64_t{1}}});
    f.store->update(c, {{"count", std::int64_t{1}}});
    std::map<Uuid, std::vector<std::int64_t>> seqs;
    for (const auto& e : f.store->journal().pending(100)) {
      auto& list = seqs[e.change.recordId];
      if (list.empty() || list.back() != e.seq) {
        list.push_back(e.seq);
      }
    }
    REQUIRE(seqs[a].size() == 1);
    REQUIRE(seqs[b].size() == 2);
    REQUIRE(seqs[c].size() == 2);
    REQUIRE(seqs[d].size() == 1);
    const auto state = [&](const Uuid& id) { return f.store->get(id)->syncState; };
    f.restart();
    for (const Uuid& id : {a, b, c, d}) {
      CHECK(state(id) == model::SyncState::pending);
    }
    const auto ack = [&](std::vector<std::int64_t> list) {
      CHECK(f.store->journal().acknowledge(list) == list.size());
    };
    ack(seqs[a]);
    ack({seqs[b].front()});
    ack(seqs[c]);
    ack(seqs[d]);
    const auto expect = [&](model::SyncState sa, model::SyncState sb, model::SyncState sc,
                            model::SyncState sd) {
      CHECK(state(a) == sa);
      CHECK(state(b) == sb);
      CHECK(state(c) == sc);
      CHECK(state(d) == sd);
    };
    using model::SyncState;
    expect(SyncState::synced, SyncState::pending, SyncState::synced, SyncState::synced);
    f.restart();
    expect(SyncState::synced, SyncState::pending, SyncState::synced, SyncState::synced);
    ack({seqs[b].back()});
    f.store->update(d, {{"count", std::int64_t{2}}});
    f.store->update(c, {{"count", std::int64_t{3}}});
    expect(SyncState::synced, SyncState::synced, SyncState::pending, SyncState::pending);
    f.restart();
    expect(SyncState::synced, SyncState::synced, SyncState::pending, SyncState::pending);
  }

  TEST_CASE("a rejection is stored with the reason and outlives acknowledgements and edits") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields());
    f.store->journal().markRejected(a, "out of scope");
    auto s = f.store->journal().status(a);
    CHECK(s->state == model::SyncState::rejected);
    CHECK(s->reason == "out of scope");
    CHECK_FALSE(f.store->journal().status(Uuid::random()).has_value());
    CHECK(errorCode([&] { f.store->journal().markRejected(Uuid::random(), "x"); }) ==
          Errc::not_found);
    f.restart();
    CHECK(f.store->journal().status(a)->reason == "out of scope");
    // An acknowledgement that does not lift it (Journal::acknowledge) and a new
    // edit leave it rejected.
    CHECK(f.store->journal().acknowledge(writeSeqs(*f.store)) == 1);
    f.store->update(a, {{"count", std::int64_t{3}}});
    s = f.store->journal().status(a);
    CHECK(s->state == model::SyncState::rejected);
    CHECK(s->reason == "out of scope");
    CHECK(inState(*f.store, model::SyncState::rejected).size() == 1);
    CHECK(inState(*f.store, model::SyncState::pending).empty());
  }

  TEST_CASE("an acknowledgement in any order, with gaps and repeats, removes exactly its writes") {
    RecordsFixture f;
    std::vector<Uuid> ids;
    for (int i = 0; i < 8; ++i) {
      ids.push_back(f.store->create("test.case", f.caseFields("c" + std::to_string(i))));
    }
    const std::vector<std::int64_t> seqs = writeSeqs(*f.store);
    REQUIRE(seqs.size() == 8);
    // Runs 0-2 and 4-5 out of order, 2 twice, 3 and 6 left out, 7 alone.
    const std::vector<std::int64_t> acked = {seqs[5], seqs[2], seqs[0], seqs[4],
                                             seqs[1], seqs[2], seqs[7]};
    CHECK(f.store->journal().acknowledge(acked) == 6);
    CHECK(writeSeqs(*f.store) == std::vector<std::int64_t>{seqs[3], seqs[6]});
    for (std::size_t i = 0; i < ids.size(); ++i) {
      CAPTURE(i);
      CHECK(f.store->journal().status(ids[i])->state ==
            (i == 3 || i == 6 ? model::SyncState::pending : model::SyncState::synced));
    }
    CHECK(inState(*f.store, model::SyncState::pending).size() == 2);
    // Again, with the rest: only the two left count.
    std::vector<std::int64_t> all = seqs;
    std::reverse(all.begin(), all.end());
    CHECK(f.store->journal().acknowledge(all) == 2);
    CHECK(f.store->journal().pendingCount() == 0);
    CHECK(inState(*f.store, model::SyncState::synced).size() == 8);
  }

  TEST_CASE("an acknowledgement deletes outbox rows and rewrites no record") {
    RecordsFixture f;
    std::vector<Uuid> ids;
    for (int i = 0; i < 5; ++i) {
      ids.push_back(f.store->create("test.case", f.caseFields("c" + std::to_string(i))));
    }
    f.store->update(ids[0], {{"count", std::int64_t{7}}});
    CHECK(inState(*f.store, model::SyncState::pending).size() == 5);
    // Counts the rows of `records` that statements on this connection change.
    f.vault->write([](sql::Database& db) {
      db.exec("CREATE TEMP TABLE touched(n INTEGER NOT NULL); INSERT INTO touched VALUES (0);"
              "CREATE TEMP TRIGGER records_updated AFTER UPDATE ON main.records BEGIN "
              "UPDATE touched SET n = n + 1; END;");
    });
    const std::vector<std::int64_t> seqs = writeSeqs(*f.store);
    REQUIRE(seqs.size() == 6);
    CHECK(f.store->journal().acknowledge(std::span(seqs.data(), 5)) == 5);
    std::int64_t touched = -1;
    f.vault->read([&](sql::Database& db) { touched = db.queryInt("SELECT n FROM touched"); });
    CHECK(touched == 0);
    // The record whose edit is still out is pending; the others are synced.
    CHECK(f.store->journal().status(ids[0])->state == model::SyncState::pending);
    for (std::size_t i = 1; i < ids.size(); ++i) {
      CHECK(f.store->journal().status(ids[i])->state == model::SyncState::synced);
      CHECK(f.store->get(ids[i])->syncState == model::SyncState::synced);
    }
    CHECK(inState(*f.store, model::SyncState::synced).size() == 4);
    CHECK(f.store->journal().acknowledge(std::span(seqs.data() + 5, 1)) == 1);
    CHECK(inState(*f.store, model::SyncState::synced).size() == 5);
  }

  TEST_CASE("a write that fails leaves every record's sync state as it was") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields("a"));
    CHECK(f.store->journal().acknowledge(writeSeqs(*f.store)) == 1);
    REQUIRE(f.store->journal().status(a)->state == model::SyncState::synced);
    // The batch changes a, then fails on a record that does not exist: all of it
    // rolls back, a's new outbox row included.
    std::vector<model::RecordWrite> batch(2);
    batch[0].id = a;
    batch[0].fields = {{"count", std::int64_t{5}}};
    batch[1].id = Uuid::random();
    batch[1].fields = {{"count", std::int64_t{6}}};
    CHECK(errorCode([&] { (void)f.store->writeBatch(batch); }) == Errc::not_found);
    CHECK(f.store->journal().status(a)->state == model::SyncState::synced);
    // The next transaction that commits carries nothing of the failed one.
    const Uuid b = f.store->create("test.case", f.caseFields("b"));
    CHECK(f.store->journal().status(a)->state == model::SyncState::synced);
    CHECK(f.store->journal().status(b)->state == model::SyncState::pending);
    CHECK(inState(*f.store, model::SyncState::pending).size() == 1);
  }

  TEST_CASE("sync states are read again from the journal after the vault locks and unlocks") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields("a"));
    const Uuid b = f.store->create("test.case", f.caseFields("b"));
    CHECK(f.store->journal().acknowledge(writeSeqs(*f.store, &b)) == 1);
    f.store->lock();
    REQUIRE(f.vault->unlock("2468").status == UnlockStatus::unlocked);
    CHECK(f.store->journal().status(a)->state == model::SyncState::pending);
    CHECK(f.store->journal().status(b)->state == model::SyncState::synced);
    CHECK(f.store->get(a)->syncState == model::SyncState::pending);
    CHECK(inState(*f.store, model::SyncState::synced).size() == 1);
  }

  TEST_CASE("a vault whose records still carry stored sync states (before they were derived) "
            "reads them from the journal") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields("a"));
    const Uuid b = f.store->create("test.case", f.caseFields("b"));
    CHECK(f.store->journal().acknowledge(writeSeqs(*f.store, &b)) == 1);
    // Such a vault kept a per-record count of pending writes and wrote every state
    // (0 pending, 1 synced, 2 conflict): stale values only the count knew about.
    f.vault->write([](sql::Database& db) {
      db.exec("ALTER TABLE records ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;"
              "UPDATE records SET sync_state = 1, pending = 0;");
    });
    f.restart();
    CHECK(f.store->journal().status(a)->state == model::SyncState::pending);
    CHECK(f.store->journal().status(b)->state == model::SyncState::synced);
    f.store->update(b, {{"count", std::int64_t{4}}}); // writes without the old column
    CHECK(f.store->journal().status(b)->state == model::SyncState::pending);
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
