#include "../records/records_fixture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>

using namespace outpost;
using namespace outpost::test;
using namespace std::chrono_literals;

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
