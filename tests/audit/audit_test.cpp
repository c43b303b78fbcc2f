#include "../records/records_fixture.hpp"

#include <doctest/doctest.h>

using namespace outpost;
using namespace outpost::test;

namespace {

/// A store with `n` create events (auditSignEvery = 4 in the fixture).
void fill(RecordsFixture& f, int n) {
  for (int i = 0; i < n; ++i) {
    (void)f.store->create("test.case", f.caseFields("c" + std::to_string(i)));
  }
}

void tamper(RecordsFixture& f, const std::string& sqlText) {
  f.vault->write([&](sql::Database& db) { db.exec(sqlText); });
}

/// A create (event 1), then `views` views of it that reach the chain together, as
/// one row (events 2 ..): views of "test.case" take 8 + 1 + 16 + 4 + 9 + 4 + 2 = 44
/// bytes each in the row's `earlier` column, all but the row's own (last) one.
Uuid createAndView(RecordsFixture& f, int views) {
  auto o = RecordsFixture::defaultOptions();
  o.viewFlushEvery = 1000;
  f.restart(o);
  const Uuid id = f.store->create("test.case", f.caseFields());
  for (int i = 0; i < views; ++i) {
    f.clock.advance(std::chrono::milliseconds(1));
    (void)f.store->view(id);
  }
  f.store->flushViews();
  return id;
}

/// A store whose views wait for `every` of them or for `after`, with one record
/// to view (event 1).
Uuid storeWithViewsWaiting(RecordsFixture& f, unsigned every,
                           std::chrono::milliseconds after = std::chrono::milliseconds(2000),
                           const std::string& title = "t") {
  auto o = RecordsFixture::defaultOptions();
  o.viewFlushEvery = every;
  o.viewFlushAfter = after;
  f.restart(o);
  return f.store->create("test.case", f.caseFields(title));
}

} // namespace

TEST_SUITE("audit") {
  TEST_CASE("an untouched chain verifies, with its checkpoint signatures") {
    RecordsFixture f;
    fill(f, 10);
    const auto v = f.store->audit().verify();
    CHECK(v.intact);
    CHECK(v.eventsChecked == 10);
    CHECK(v.signaturesChecked == 2); // events 4 and 8
    const auto events = f.store->audit().events(0, 100);
    CHECK(events[3].signedCheckpoint);
    CHECK_FALSE(events[4].signedCheckpoint);
    CHECK(events[0].actor == "worker-7");
    CHECK(events[0].device == f.store->deviceId());
    CHECK(events[0].action == model::AuditAction::create);
  }

  TEST_CASE("an edited event is found at its position") {
    RecordsFixture f;
    fill(f, 6);
    SUBCASE("detail") { tamper(f, "UPDATE audit SET detail = '{}' WHERE seq = 3"); }
    SUBCASE("actor") { tamper(f, "UPDATE audit SET actor = 'someone' WHERE seq = 3"); }
    SUBCASE("time") { tamper(f, "UPDATE audit SET at = at + 1 WHERE seq = 3"); }
    SUBCASE("action") { tamper(f, "UPDATE audit SET action = 0 WHERE seq = 3"); }
    const auto v = f.store->audit().verify();
    CHECK_FALSE(v.intact);
    CHECK(v.firstBadSeq == 3);
  }

  TEST_CASE("a removed event is found") {
    RecordsFixture f;
    fill(f, 6);
    tamper(f, "DELETE FROM audit WHERE seq = 2");
    const auto v = f.store->audit().verify();
    CHECK_FALSE(v.intact);
    CHECK(v.firstBadSeq == 2);
    CHECK(v.problem.find("missing") != std::string::npos);
  }

  TEST_CASE("a removed event with the chain renumbered is found by the hash") {
    RecordsFixture f;
    fill(f, 6);
    tamper(f, "DELETE FROM audit WHERE seq = 2; UPDATE audit SET seq = seq - 1 WHERE seq > 2");
    const auto v = f.store->audit().verify();
    CHECK_FALSE(v.intact);
    CHECK(v.firstBadSeq == 2);
  }

  TEST_CASE("reordered events are found") {
    RecordsFixture f;
    fill(f, 6);
    // swap the contents of events 4 and 5 (positions stay)
    tamper(f, "UPDATE audit SET seq = -4 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 5; "
              "UPDATE audit SET seq = 5 WHERE seq = -4");
    const auto v = f.store->audit().verify();
    CHECK_FALSE(v.intact);
    CHECK(v.firstBadSeq == 4);
  }

  TEST_CASE("an inserted event is found") {
    RecordsFixture f;
    fill(f, 6);
    tamper(f, "UPDATE audit SET seq = seq + 1000 WHERE seq >= 3; "
              "UPDATE audit SET seq = seq - 999 WHERE seq > 1000; "
              "INSERT INTO audit(seq, at, actor, device, action, record, type, detail, hash, sig) "
              "SELECT 3, at, actor, device, action, record, type, detail, hash, NULL FROM audit "
              "WHERE seq = 2");
    const auto v = f.store->audit().verify();
    CHECK_FALSE(v.intact);
    CHECK(v.firstBadSeq == 3);
  }

  TEST_CASE("a forged or missing checkpoint signature is found") {
    RecordsFixture f;
    fill(f, 9);
    SUBCASE("removed") { tamper(f, "UPDATE audit SET sig = NULL WHERE seq = 8"); }
    SUBCASE("altered") {
      tamper(f, "UPDATE audit SET sig = (SELECT sig FROM audit WHERE seq = 4) WHERE seq = 8");
    }
    SUBCASE("added where none is due") {
      tamper(f, "UPDATE audit SET sig = (SELECT sig FROM audit WHERE seq = 4) WHERE seq = 7");
    }
    const auto v = f.store->audit().verify();
    CHECK_FALSE(v.intact);
    CHECK((v.firstBadSeq == 8 || v.firstBadSeq == 7));
  }

  TEST_CASE("a chain rewritten without the device key fails at the first checkpoint") {
    RecordsFixture f;
    fill(f, 5);
    // An attacker edits event 1 and recomputes every hash, but cannot sign: the
    // signature over the chain head at 4 no longer matches.
    tamper(f, "UPDATE audit SET sig = NULL WHERE seq = 4");
    CHECK(f.store->audit().verify().firstBadSeq == 4);
  }

  TEST_CASE("edits record old and new values, views and exports are logged") {
    RecordsFixture f;
    const Uuid id = f.store->create("test.case", f.caseFields("before"));
    f.store->update(id, {{"title", std::string("after")}});
    (void)f.store->view(id);
    const std::string exported = f.store->exportJson(std::span(&id, 1));
    CHECK(exported.find("\"after\"") != std::string::npos);
    const auto events = f.store->audit().events(0, 100);
    REQUIRE(events.size() == 4);
    CHECK(events[1].action == model::AuditAction::edit);
    CHECK(events[1].detail == R"({"title":{"new":"after","old":"before"}})");
    CHECK(events[2].action == model::AuditAction::view);
    CHECK(events[3].action == model::AuditAction::exportData);
    CHECK(f.store->audit().verify().intact);
    // get() is for the app's own logic and is not a view
    (void)f.store->get(id);
    CHECK(f.store->audit().size() == 4);
  }

  TEST_CASE("buffered views reach the chain at the next write or at close") {
    RecordsFixture f;
    const Uuid id = storeWithViewsWaiting(f, 100);
    (void)f.store->view(id);
    (void)f.store->view(id);
    CHECK(f.store->audit().size() == 1);
    (void)f.store->create("test.case", f.caseFields());
    CHECK(f.store->audit().size() == 4);
    (void)f.store->view(id);
    f.restart(); // destruction appends it
    CHECK(f.store->audit().size() == 5);
    CHECK(f.store->audit().verify().intact);
  }

  TEST_CASE("buffered views reach the chain when there are enough of them") {
    RecordsFixture f;
    const Uuid id = storeWithViewsWaiting(f, 3, std::chrono::hours(1));
    (void)f.store->view(id);
    (void)f.store->view(id);
    CHECK(f.store->audit().size() == 1);
    (void)f.store->view(id); // the third
    CHECK(f.store->audit().size() == 4);
    CHECK(f.store->audit().verify().intact);
  }

  TEST_CASE("buffered views reach the chain at the first view once the oldest is old enough") {
    RecordsFixture f;
    const Uuid id = storeWithViewsWaiting(f, 100, std::chrono::milliseconds(2000));
    (void)f.store->view(id);
    f.clock.advance(std::chrono::milliseconds(1999));
    (void)f.store->view(id);
    CHECK(f.store->audit().size() == 1);
    f.clock.advance(std::chrono::milliseconds(1));
    (void)f.store->view(id); // the first waiting one is 2 s old
    CHECK(f.store->audit().size() == 4);
    (void)f.store->view(id); // a new batch starts
    CHECK(f.store->audit().size() == 4);
    CHECK(f.store->audit().verify().intact);
  }

  TEST_CASE("a view whose events cannot be appended still shows the record, and they wait") {
    RecordsFixture f;
    const Uuid id = storeWithViewsWaiting(f, 2, std::chrono::milliseconds(2000), "shown");
    tamper(f, "CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN "
              "SELECT RAISE(ABORT, 'audit refused'); END");
    (void)f.store->view(id);
    const auto r = f.store->view(id); // this one's flush fails
    REQUIRE(r.has_value());
    CHECK(r->text("title") == "shown");
    CHECK(f.store->audit().size() == 1);
    tamper(f, "DROP TRIGGER no_audit");
    (void)f.store->view(id); // three waiting: appended once each
    CHECK(f.store->audit().size() == 4);
    const auto events = f.store->audit().events(1, 10);
    REQUIRE(events.size() == 3);
    for (const auto& e : events) {
      CHECK(e.action == model::AuditAction::view);
      CHECK(e.record == id);
    }
    CHECK(f.store->audit().verify().intact);
  }

  TEST_CASE("the signing key is made once and kept in the vault") {
    RecordsFixture f;
    const auto key = f.store->audit().publicKey();
    fill(f, 3);
    f.restart();
    CHECK(f.store->audit().publicKey() == key);
    fill(f, 3);
    CHECK(f.store->audit().verify().signaturesChecked == 1);
    CHECK(f.store->audit().verify().intact);
  }

  TEST_CASE("views appended together share a row, and each is still an event of the chain") {
    RecordsFixture f;
    const Uuid id = createAndView(f, 10);
    CHECK(f.count("SELECT count(*) FROM audit") == 2);
    CHECK(f.count("SELECT length(earlier) FROM audit WHERE seq = 11") == 9 * 44);
    CHECK(f.store->audit().size() == 11);
    const auto v = f.store->audit().verify();
    CHECK(v.intact);
    CHECK(v.eventsChecked == 11);
    CHECK(v.signaturesChecked == 1); // one row holds checkpoints 4 and 8: it signs its head
    const auto all = f.store->audit().events(0, 100);
    REQUIRE(all.size() == 11);
    for (std::size_t k = 1; k < all.size(); ++k) {
      CHECK(all[k].seq == static_cast<std::int64_t>(k + 1));
      CHECK(all[k].action == model::AuditAction::view);
      CHECK(all[k].record == id);
      CHECK(all[k].recordType == "test.case");
      CHECK(all[k].actor == "worker-7");
      CHECK(all[k].atMs == all[1].atMs + static_cast<std::int64_t>(k - 1)); // in view order
      CHECK(all[k].hash != all[k - 1].hash);
      CHECK(all[k].signedCheckpoint == (k + 1 == 11));
    }
    // Paging from inside the row gives the same events, hashes included.
    const auto some = f.store->audit().events(5, 3);
    REQUIRE(some.size() == 3);
    for (std::size_t k = 0; k < 3; ++k) {
      CHECK(some[k].seq == all[5 + k].seq);
      CHECK(some[k].hash == all[5 + k].hash);
      CHECK(some[k].atMs == all[5 + k].atMs);
    }
    // A later write continues the chain after the row's last view.
    (void)f.store->create("test.case", f.caseFields());
    CHECK(f.store->audit().size() == 12);
    CHECK(f.store->audit().verify().intact);
  }

  TEST_CASE("an event changed, removed or moved inside a shared row is found") {
    RecordsFixture f;
    (void)createAndView(f, 10);
    REQUIRE(f.store->audit().verify().intact);
    const auto check = [&](std::int64_t badSeq, std::string_view problem) {
      const auto v = f.store->audit().verify();
      CHECK_FALSE(v.intact);
      CHECK(v.firstBadSeq == badSeq);
      CHECK(v.problem.find(problem) != std::string::npos);
    };
    SUBCASE("a view's record") {
      tamper(f, "UPDATE audit SET earlier = substr(earlier, 1, 53) || zeroblob(16) || "
                "substr(earlier, 70) WHERE seq = 11"); // the second view's record id
      check(2, "hash does not chain");
    }
    SUBCASE("a view's time") {
      tamper(f, "UPDATE audit SET earlier = x'7f' || substr(earlier, 2) WHERE seq = 11");
      check(2, "hash does not chain");
    }
    SUBCASE("two views swapped") {
      tamper(f, "UPDATE audit SET earlier = substr(earlier, 45, 44) || substr(earlier, 1, 44) "
                "|| substr(earlier, 89) WHERE seq = 11");
      check(2, "hash does not chain");
    }
    SUBCASE("the first view removed") {
      tamper(f, "UPDATE audit SET earlier = substr(earlier, 45) WHERE seq = 11");
      check(2, "skips a position");
    }
    SUBCASE("the first view removed and the row renumbered") {
      tamper(f, "UPDATE audit SET earlier = substr(earlier, 45), seq = 10 WHERE seq = 11");
      check(2, "hash does not chain");
    }
    SUBCASE("a view cut short") {
      tamper(f, "UPDATE audit SET earlier = substr(earlier, 1, 30) WHERE seq = 11");
      check(2, "malformed");
    }
    SUBCASE("a view's action") {
      tamper(f, "UPDATE audit SET earlier = substr(earlier, 1, 52) || x'02' || "
                "substr(earlier, 54) WHERE seq = 11"); // the second view made an edit
      check(2, "hash does not chain");
    }
    SUBCASE("events given to a row that had none") {
      tamper(f, "UPDATE audit SET earlier = (SELECT earlier FROM audit WHERE seq = 11) "
                "WHERE seq = 1");
      check(1, "out of order or inserted");
    }
  }

  TEST_CASE("the events of one transaction share a row") {
    RecordsFixture f;
    std::vector<model::RecordWrite> batch(5);
    for (auto& w : batch) {
      w.type = "test.case";
      w.fields = f.caseFields();
    }
    const auto ids = f.store->writeBatch(batch);
    CHECK(f.count("SELECT count(*) FROM audit") == 1);
    CHECK(f.store->audit().size() == 5);
    const auto events = f.store->audit().events(0, 10);
    REQUIRE(events.size() == 5);
    for (std::size_t k = 0; k < 5; ++k) {
      CHECK(events[k].action == model::AuditAction::create);
      CHECK(events[k].record == ids[k]);
      CHECK(events[k].detail == events[4].detail);
    }
    const auto v = f.store->audit().verify();
    CHECK(v.intact);
    CHECK(v.eventsChecked == 5);
    CHECK(v.signaturesChecked == 1);
  }

  TEST_CASE("a trail begun before rows held several events gains the column and goes on") {
    RecordsFixture f;
    f.store.reset();
    tamper(f, "DROP TABLE audit; CREATE TABLE audit(seq INTEGER PRIMARY KEY, at INTEGER NOT "
              "NULL, actor TEXT NOT NULL, device BLOB NOT NULL, action INTEGER NOT NULL, record "
              "BLOB NOT NULL, type TEXT NOT NULL, detail TEXT NOT NULL, hash BLOB NOT NULL, sig "
              "BLOB)");
    (void)createAndView(f, 3);
    CHECK(f.count("SELECT count(*) FROM pragma_table_info('audit') WHERE name = 'earlier'") == 1);
    CHECK(f.store->audit().size() == 4);
    CHECK(f.store->audit().verify().intact);
  }

  TEST_CASE("a share outside a write is audited") {
    RecordsFixture f;
    const Uuid id = f.store->create("test.case", f.caseFields());
    f.store->audit().recordShare(id, "test.case", R"({"to":"police"})");
    CHECK(f.store->audit().events(0, 10).back().action == model::AuditAction::share);
  }
}
