#include "records_fixture.hpp"

#include <doctest/doctest.h>

using namespace outpost;
using namespace outpost::test;

namespace {

/// 30 cases for two children: levels alternate, statuses cycle, every third has a due time.
struct QueryData : RecordsFixture {
  Uuid childA = addChild("A");
  Uuid childB = addChild("B");
  std::vector<Uuid> cases;

  QueryData() {
    std::vector<model::RecordWrite> writes;
    for (int i = 0; i < 30; ++i) {
      model::RecordWrite w;
      w.type = "test.case";
      w.fields = caseFields("case " + std::to_string(i));
      w.fields["child"] = (i % 2 == 0 ? childA : childB).toString();
      w.fields["level"] = std::string(i % 3 == 0 ? "high" : "low");
      w.fields["status"] = std::string(i % 5 == 0 ? "closed" : "open");
      if (i % 3 == 0) {
        w.fields["due"] = std::int64_t{1000 - i}; // later cases due sooner
      }
      w.fields["body"] = std::string(i == 7 ? "met near the taxi rank" : "routine visit");
      writes.push_back(std::move(w));
    }
    cases = store->writeBatch(writes);
  }

  std::vector<Uuid> all(model::RecordQuery q, std::size_t pageSize) {
    std::vector<Uuid> out;
    q.limit = pageSize;
    for (;;) {
      const auto page = store->queryIds(q);
      out.insert(out.end(), page.ids.begin(), page.ids.end());
      if (!page.next) {
        return out;
      }
      q.after = page.next;
    }
  }
};

} // namespace

TEST_SUITE("records.query") {
  TEST_CASE("by type, in storage order, paged without gaps or repeats") {
    QueryData d;
    model::RecordQuery q;
    q.type = "test.case";
    CHECK(d.all(q, 7) == d.cases);
    CHECK(d.all(q, 30) == d.cases);
    CHECK(d.all(q, 1000) == d.cases);
    q.limit = 30;
    CHECK_FALSE(d.store->queryIds(q).next.has_value());
    q.type = "test.child";
    CHECK(d.all(q, 1) == std::vector<Uuid>{d.childA, d.childB});
  }

  TEST_CASE("by child, status and risk level, combined") {
    QueryData d;
    model::RecordQuery q;
    q.linkedTo = d.childA;
    const auto byChild = d.all(q, 4);
    CHECK(byChild.size() == 15);
    q.riskLevel = "high";
    std::vector<Uuid> expected;
    for (int i = 0; i < 30; i += 6) {
      expected.push_back(d.cases[static_cast<std::size_t>(i)]);
    }
    CHECK(d.all(q, 2) == expected);
    model::RecordQuery s;
    s.type = "test.case";
    s.status = "closed";
    CHECK(d.all(s, 2).size() == 6);
    model::RecordQuery r;
    r.riskLevel = "high";
    CHECK(d.all(r, 3).size() == 10);
  }

  TEST_CASE("due dates: overdue first by due time, then paged") {
    QueryData d;
    model::RecordQuery q;
    q.dueBeforeMs = 1000 - 20; // due at 971..979 from cases 21..29 (every third)
    const auto due = d.all(q, 1);
    CHECK(due == std::vector<Uuid>{d.cases[27], d.cases[24], d.cases[21]});
    // closing the due item (clearing its due time) removes it
    d.store->update(d.cases[27], {{"due", sync::Null{}}});
    CHECK(d.all(q, 10) == std::vector<Uuid>{d.cases[24], d.cases[21]});
  }

  TEST_CASE("full-text search with other filters") {
    QueryData d;
    model::RecordQuery q;
    q.text = "taxi";
    CHECK(d.all(q, 5) == std::vector<Uuid>{d.cases[7]});
    q.linkedTo = d.childA;
    CHECK(d.all(q, 5).empty());
    q.linkedTo = d.childB;
    CHECK(d.all(q, 5) == std::vector<Uuid>{d.cases[7]});
    model::RecordQuery routine;
    routine.text = "routine";
    CHECK(d.all(routine, 4).size() == 29);
  }

  TEST_CASE("full records come back with their values") {
    QueryData d;
    model::RecordQuery q;
    q.linkedTo = d.childB;
    q.limit = 2;
    const auto page = d.store->query(q);
    REQUIRE(page.records.size() == 2);
    CHECK(page.records[0].text("title") == "case 1");
    CHECK(page.records[1].text("title") == "case 3");
    REQUIRE(page.next);
  }

  TEST_CASE("a malformed search is invalid_argument and does not echo the text") {
    QueryData d;
    model::RecordQuery q;
    q.text = "secret AND (";
    CHECK(errorCode([&] { (void)d.store->queryIds(q); }) == Errc::invalid_argument);
    CHECK(errorMessage([&] { (void)d.store->queryIds(q); }).find("secret") == std::string::npos);
  }

  TEST_CASE("a foreign cursor or a zero limit is refused") {
    QueryData d;
    model::RecordQuery q;
    q.after = "not-a-cursor";
    CHECK(errorCode([&] { (void)d.store->queryIds(q); }) == Errc::invalid_argument);
    q.after.reset();
    q.limit = 0;
    CHECK(errorCode([&] { (void)d.store->queryIds(q); }) == Errc::invalid_argument);
  }

  TEST_CASE("changing a reference moves the record between children") {
    QueryData d;
    d.store->update(d.cases[0], {{"child", d.childB.toString()}});
    model::RecordQuery q;
    q.linkedTo = d.childA;
    CHECK(d.all(q, 100).size() == 14);
    q.linkedTo = d.childB;
    CHECK(d.all(q, 100).size() == 16);
  }
}
