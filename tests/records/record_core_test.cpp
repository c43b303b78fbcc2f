#include "records_fixture.hpp"

#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

using namespace outpost;
using namespace outpost::test;
using namespace std::chrono_literals;

TEST_SUITE("records.core") {
  TEST_CASE("a created record reads back with every value and the common fields") {
    RecordsFixture f;
    const Uuid child = f.addChild();
    FieldValues v = f.caseFields("first");
    v["child"] = child.toString();
    v["level"] = std::string("high");
    v["count"] = std::int64_t{3};
    v["when"] = std::string("2026-02-03");
    v["flag"] = true;
    v["notes"] = StringList{"one"};
    v["contact"] = std::string(R"({"name":"Sam","phone":"0700"})");
    const Uuid id = f.store->create("test.case", v);
    CHECK(id.version() == 4);
    const auto r = f.store->get(id);
    REQUIRE(r);
    CHECK(r->type == "test.case");
    CHECK(r->text("title") == "first");
    CHECK(r->integer("count") == 3);
    CHECK(r->get("flag") == Value{true});
    CHECK(r->text("status") == "draft");
    CHECK(r->text("retention_class") == "standard");
    CHECK(r->text("created_by") == "worker-7");
    CHECK(r->device == f.store->deviceId());
    CHECK(r->createdAtMs == f.clock.unixMillis());
    CHECK(r->syncState == model::SyncState::pending);
    CHECK_FALSE(f.store->get(Uuid::random()).has_value());
  }

  TEST_CASE("a new record's defaults merge with the fields given, in name order") {
    RecordsFixture f;
    // Given: created_by (replaced), retention_class (kept), status null (defaulted),
    // and fields before, between and after the defaults' names.
    FieldValues v = f.caseFields();
    v["contact"] = std::string(R"({"name":"Sam","phone":"0700"})");
    v["created_by"] = std::string("someone-else");
    v["retention_class"] = std::string("extended");
    v["status"] = sync::Null{};
    v["when"] = std::string("2026-02-03");
    const auto r = f.store->get(f.store->create("test.case", v));
    REQUIRE(r);
    CHECK(r->text("created_by") == "worker-7");
    CHECK(r->text("retention_class") == "extended");
    CHECK(r->text("status") == "draft");
    CHECK(r->text("contact") == R"({"name":"Sam","phone":"0700"})");
    CHECK(r->text("when") == "2026-02-03");
    CHECK(std::is_sorted(r->fields.begin(), r->fields.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; }));
    // None given: each default once.
    const auto plain = f.store->get(f.store->create("test.case", f.caseFields()));
    REQUIRE(plain);
    CHECK(plain->text("retention_class") == "standard");
    CHECK(plain->fields.size() == f.caseFields().size() + 3);
  }

  TEST_CASE("a write stores one journal entry per changed field and one audit event") {
    RecordsFixture f;
    const Uuid id = f.store->create("test.case", f.caseFields());
    // title, owner_team, status, retention_class, created_by
    CHECK(f.store->journal().pendingCount() == 1);
    CHECK(f.store->journal().pending(100).size() == 5);
    const auto auditBefore = f.store->audit().size();
    f.clock.advance(5ms);
    f.store->update(id, {{"title", std::string("t")}, {"count", std::int64_t{2}}});
    CHECK(f.store->journal().pendingCount() == 2);
    const auto entries = f.store->journal().pending(100);
    // the create still lists its five fields (not `count`, which a later write
    // added: the server must see that write's value as new, not as the create's);
    // the edit only `count`
    REQUIRE(entries.size() == 6);
    CHECK(entries[4].seq == entries[0].seq);
    CHECK(entries[5].seq > entries[4].seq);
    for (std::size_t i = 0; i < 5; ++i) {
      CHECK(entries[i].change.field != "count");
    }
    const auto& last = entries.back().change;
    CHECK(last.field == "count");
    CHECK(last.value == Value{std::int64_t{2}});
    CHECK(last.recordId == id);
    CHECK(last.recordType == "test.case");
    CHECK(last.deviceId == f.store->deviceId());
    CHECK(last.baseHlc.isZero());
    CHECK(f.store->audit().size() == auditBefore + 1);
    const auto events = f.store->audit().events(auditBefore, 10);
    REQUIRE(events.size() == 1);
    CHECK(events[0].action == model::AuditAction::edit);
    CHECK(events[0].detail == R"({"count":{"new":2,"old":null}})");
  }

  TEST_CASE("an edit's base HLC is the HLC of the value it replaced") {
    RecordsFixture f;
    const Uuid id = f.store->create("test.case", f.caseFields());
    const auto created = f.store->get(id)->clockOf("title").hlc;
    f.clock.advance(1s);
    f.store->update(id, {{"title", std::string("second")}});
    const auto afterFirst = f.store->get(id)->clockOf("title").hlc;
    CHECK(afterFirst > created);
    f.store->update(id, {{"title", std::string("third")}});
    const auto entries = f.store->journal().pending(100);
    REQUIRE(entries.size() == 7);
    CHECK(entries[5].change.baseHlc == created);
    CHECK(entries[6].change.baseHlc == afterFirst);
    CHECK(entries[5].change.hlc == afterFirst);
    // a value overwritten before sync is sent as the current one
    CHECK(entries[5].change.value == Value{std::string("third")});
    CHECK(entries[6].change.value == Value{std::string("third")});
    CHECK(entries[5].change.changeId != entries[6].change.changeId);
  }

  TEST_CASE("a write that changes nothing writes no journal entry and no audit event") {
    RecordsFixture f;
    const Uuid id = f.store->create("test.case", f.caseFields("same"));
    const auto journal = f.store->journal().pendingCount();
    const auto audit = f.store->audit().size();
    f.store->update(id, {{"title", std::string("same")}});
    CHECK(f.store->journal().pendingCount() == journal);
    CHECK(f.store->audit().size() == audit);
  }

  TEST_CASE("a validation error names the field and writes nothing") {
    RecordsFixture f;
    const auto journal = f.store->journal().pendingCount();
    const auto audit = f.store->audit().size();
    const auto records = f.count("SELECT count(*) FROM records");
    SUBCASE("missing required field") {
      CHECK(errorMessage([&] {
              (void)f.store->create("test.case", {{"owner_team", std::string("x")}});
            }).find("test.case.title: is required") != std::string::npos);
    }
    SUBCASE("wrong type") {
      auto v = f.caseFields();
      v["count"] = std::string("three");
      CHECK(errorMessage([&] { (void)f.store->create("test.case", v); }) ==
            "test.case.count: must be integer");
    }
    SUBCASE("enum value not allowed") {
      auto v = f.caseFields();
      v["level"] = std::string("medium");
      CHECK(errorCode([&] { (void)f.store->create("test.case", v); }) == Errc::validation);
    }
    SUBCASE("bad date") {
      auto v = f.caseFields();
      v["when"] = std::string("2026-02-30");
      CHECK(errorMessage([&] { (void)f.store->create("test.case", v); }).find("test.case.when") !=
            std::string::npos);
    }
    SUBCASE("unknown field") {
      auto v = f.caseFields();
      v["colour"] = std::string("red");
      CHECK(errorMessage([&] { (void)f.store->create("test.case", v); }).find("test.case.colour") !=
            std::string::npos);
    }
    SUBCASE("reference to a missing record or a record of another type") {
      auto v = f.caseFields();
      v["child"] = Uuid::random().toString();
      CHECK(errorMessage([&] { (void)f.store->create("test.case", v); }).find("does not exist") !=
            std::string::npos);
    }
    SUBCASE("structured value breaking its sub-schema") {
      auto v = f.caseFields();
      v["contact"] = std::string(R"({"phone":"1"})");
      CHECK(errorMessage([&] { (void)f.store->create("test.case", v); }) ==
            "test.case.contact.name: is required");
    }
    SUBCASE("unknown type") {
      CHECK(errorCode([&] { (void)f.store->create("nope", {}); }) == Errc::validation);
    }
    SUBCASE("one bad record fails the whole batch") {
      std::vector<model::RecordWrite> batch(2);
      batch[0].type = "test.case";
      batch[0].fields = f.caseFields();
      batch[1].type = "test.case";
      batch[1].fields = {{"owner_team", std::string("x")}};
      CHECK(errorCode([&] { (void)f.store->writeBatch(batch); }) == Errc::validation);
    }
    CHECK(f.store->journal().pendingCount() == journal);
    CHECK(f.store->audit().size() == audit);
    CHECK(f.count("SELECT count(*) FROM records") == records);
  }

  TEST_CASE("a reference must point at a record of the declared type") {
    RecordsFixture f;
    const Uuid other = f.store->create("test.case", f.caseFields());
    auto v = f.caseFields();
    v["child"] = other.toString();
    CHECK(errorMessage([&] {
            (void)f.store->create("test.case", v);
          }).find("must refer to a test.child") != std::string::npos);
  }

  TEST_CASE("append-only lists accept additions and refuse changes") {
    RecordsFixture f;
    auto v = f.caseFields();
    v["notes"] = StringList{"a"};
    const Uuid id = f.store->create("test.case", v);
    f.store->update(id, {{"notes", StringList{"a", "b"}}});
    CHECK(f.store->get(id)->get("notes") == Value{StringList{"a", "b"}});
    CHECK(errorCode([&] {
            f.store->update(id, {{"notes", StringList{"x", "b"}}});
          }) == Errc::validation);
    CHECK(errorCode([&] {
            f.store->update(id, {{"notes", StringList{"a"}}});
          }) == Errc::validation);
  }

  TEST_CASE("a create keeps a merge state for its append-only fields and for no other") {
    // Other fields' history is the record's own (derived when a merge needs it); an
    // append-only list's entries need their versions from the first write on.
    RecordsFixture f;
    auto v = f.caseFields();
    v["notes"] = StringList{"first visit"};
    const Uuid id = f.store->create("test.case", v);
    const auto created = f.store->get(id);
    REQUIRE(created.has_value());
    std::vector<std::string> fields;
    std::optional<sync::FieldState> notes;
    f.vault->read([&](sql::Database& db) {
      sql::Statement st(db, "SELECT f.field, f.state FROM field_sync f JOIN records r"
                            " ON r.rid = f.rid WHERE r.id = ?1 ORDER BY f.field");
      st.bindBlob(1, std::span<const std::uint8_t>(id.bytes));
      while (st.step()) {
        fields.emplace_back(st.columnText(0));
        const auto raw = st.columnBlob(1);
        notes = sync::decodeFieldState({reinterpret_cast<const char*>(raw.data()), raw.size()});
      }
    });
    CHECK(fields == std::vector<std::string>{"notes"});
    REQUIRE(notes.has_value());
    REQUIRE(notes->entries.size() == 1);
    CHECK(notes->entries[0].changeId ==
          sync::derivedChangeId(f.store->deviceId(), id, "notes", created->createdHlc));
  }

  TEST_CASE("immutable-after-sign fields are frozen once the record is signed") {
    RecordsFixture f;
    auto v = f.caseFields();
    v["body"] = std::string("draft text");
    const Uuid id = f.store->create("test.case", v);
    f.store->update(id, {{"body", std::string("edited draft")}});
    f.store->update(id, {{"signed_at", std::int64_t{1000}}});
    CHECK(f.store->audit().events(0, 100).back().action == model::AuditAction::sign);
    CHECK(errorMessage([&] {
            f.store->update(id, {{"body", std::string("changed")}});
          }).find("test.case.body: is signed and frozen") != std::string::npos);
    CHECK(errorCode([&] {
            f.store->update(id, {{"signed_at", std::int64_t{2}}});
          }) == Errc::validation);
    // lww fields stay editable
    f.store->update(id, {{"count", std::int64_t{1}}});
    CHECK(f.store->get(id)->text("body") == "edited draft");
  }

  TEST_CASE("created_by is set by the store and cannot be changed") {
    RecordsFixture f;
    auto v = f.caseFields();
    v["created_by"] = std::string("someone-else");
    const Uuid id = f.store->create("test.case", v);
    CHECK(f.store->get(id)->text("created_by") == "worker-7");
    CHECK(errorCode([&] {
            f.store->update(id, {{"created_by", std::string("x")}});
          }) == Errc::validation);
  }

  TEST_CASE("updating a record that does not exist is not_found") {
    RecordsFixture f;
    CHECK(errorCode([&] {
            f.store->update(Uuid::random(), {{"title", std::string("x")}});
          }) == Errc::not_found);
  }

  TEST_CASE("validate reports problems without writing") {
    RecordsFixture f;
    model::RecordWrite w;
    w.type = "test.case";
    w.fields = {{"count", std::string("x")}};
    const auto problems = f.store->validate(w);
    CHECK(problems.size() == 3); // count type, title and owner_team required
    CHECK(f.count("SELECT count(*) FROM records") == 0);
  }

  TEST_CASE("apps can register their own types but not reuse a name or a reserved field") {
    RecordsFixture f;
    model::EntityType dup;
    dup.name = "test.child";
    CHECK(errorCode([&] { f.store->schema().add(dup); }) == Errc::already_exists);
    model::EntityType reserved;
    reserved.name = "x";
    reserved.fields = {FieldSpec{"status", FieldType::text, false, {}, {}, {}, {}}};
    CHECK(errorCode([&] { f.store->schema().add(reserved); }) == Errc::invalid_argument);
    model::EntityType badEnum;
    badEnum.name = "y";
    badEnum.fields = {FieldSpec{"e", FieldType::enumeration, false, {}, {}, {}, {}}};
    CHECK(errorCode([&] { f.store->schema().add(badEnum); }) == Errc::invalid_argument);
  }

  TEST_CASE("records survive a restart and the HLC never goes backwards") {
    RecordsFixture f;
    const Uuid id = f.store->create("test.case", f.caseFields());
    const auto before = f.store->journal().lastHlc();
    f.clock.advance(-1h); // the device clock is set back while the app is closed
    f.restart();
    CHECK(f.store->get(id).has_value());
    CHECK(f.store->journal().lastHlc() >= before);
    f.store->update(id, {{"count", std::int64_t{9}}});
    CHECK(f.store->get(id)->clockOf("count").hlc > before);
  }

  TEST_CASE("a read by id is right when the row it remembers is gone or holds another record") {
    RecordsFixture f;
    const Uuid a = f.store->create("test.case", f.caseFields("a"));
    const Uuid b = f.store->create("test.case", f.caseFields("b"));
    f.restart(); // the rows of a and b are loaded by id
    std::string hex = b.toString();
    std::erase(hex, '-');
    f.vault->write(
        [&](sql::Database& db) { db.exec("DELETE FROM records WHERE id = x'" + hex + "'"); });
    const Uuid c = f.store->create("test.case", f.caseFields("c")); // b's row number again
    CHECK(f.count("SELECT count(*) FROM records") == 2);
    CHECK_FALSE(f.store->get(b).has_value());
    CHECK(f.store->get(c)->text("title") == "c");
    CHECK(f.store->get(a)->text("title") == "a");
    CHECK_FALSE(f.store->get(b).has_value());
  }

  TEST_CASE("records read by id with no row numbers kept in memory, or only some") {
    for (const std::size_t limit : {std::size_t{0}, std::size_t{1}, std::size_t{2}}) {
      CAPTURE(limit);
      RecordsFixture f;
      auto o = RecordsFixture::defaultOptions();
      o.memoryIdIndexLimit = limit;
      f.restart(o);
      std::vector<Uuid> ids;
      for (int i = 0; i < 3; ++i) {
        ids.push_back(f.store->create("test.case", f.caseFields("t" + std::to_string(i))));
      }
      for (int pass = 0; pass < 2; ++pass) {
        for (int i = 0; i < 3; ++i) {
          CHECK(f.store->get(ids[static_cast<std::size_t>(i)])->text("title") ==
                "t" + std::to_string(i));
        }
        f.store->update(ids[2], {{"count", std::int64_t{pass}}});
        CHECK(f.store->view(ids[2])->integer("count") == pass);
        CHECK_FALSE(f.store->get(Uuid::random()).has_value());
        f.restart(o);
      }
    }
  }

  TEST_CASE("the device id is made once and kept") {
    RecordsFixture f;
    const Uuid device = f.store->deviceId();
    f.restart();
    CHECK(f.store->deviceId() == device);
  }
}

TEST_SUITE("records.core") {
  TEST_CASE("records of one batch can refer to each other through ids made ahead") {
    RecordsFixture f;
    std::vector<model::RecordWrite> batch(2);
    const Uuid child = Uuid::random();
    batch[0].type = "test.child";
    batch[0].newId = child;
    batch[0].fields = {{"name", std::string("A")}, {"owner_team", std::string("t")}};
    batch[1].type = "test.case";
    batch[1].fields = f.caseFields();
    batch[1].fields["child"] = child.toString();
    const auto ids = f.store->writeBatch(batch);
    CHECK(ids[0] == child);
    CHECK(f.store->get(ids[1])->text("child") == child.toString());
    CHECK(f.store->get(child)->type == "test.child");
    CHECK(errorCode([&] { (void)f.store->writeBatch(std::span(batch.data(), 1)); }) ==
          Errc::already_exists);
    CHECK(errorCode([&] { (void)f.store->validate(batch[0]); }) == Errc::already_exists);
    // A batch that fails on a taken id writes none of its records.
    const auto before = f.count("SELECT count(*) FROM records");
    const auto auditBefore = f.store->audit().size();
    batch[0].newId = Uuid::random();
    batch[1].newId = child;
    CHECK(errorCode([&] { (void)f.store->writeBatch(batch); }) == Errc::already_exists);
    CHECK(f.count("SELECT count(*) FROM records") == before);
    CHECK_FALSE(f.store->get(*batch[0].newId).has_value());
    CHECK(f.store->audit().size() == auditBefore);
    CHECK(f.store->audit().verify().intact);
    // and the store goes on
    batch[1].newId.reset();
    batch[1].fields["child"] = batch[0].newId->toString();
    CHECK(f.store->writeBatch(batch).size() == 2);
  }
}

TEST_SUITE("records.core") {
  TEST_CASE("a reference to a record of a rolled-back batch is refused afterwards") {
    RecordsFixture f;
    std::vector<model::RecordWrite> batch(3);
    const Uuid child = Uuid::random();
    batch[0].type = "test.child";
    batch[0].newId = child;
    batch[0].fields = {{"name", std::string("A")}, {"owner_team", std::string("t")}};
    batch[1].type = "test.case";
    batch[1].fields = f.caseFields();
    batch[1].fields["child"] = child.toString();
    batch[2].type = "test.case"; // invalid: no title
    batch[2].fields = {{"owner_team", std::string("t")}};
    CHECK(errorCode([&] { (void)f.store->writeBatch(batch); }) == Errc::validation);
    CHECK_FALSE(f.store->get(child).has_value());
    CHECK(errorMessage([&] {
            (void)f.store->writeBatch(std::span(batch.data() + 1, 1));
          }).find("does not exist") != std::string::npos);
  }
}

TEST_CASE("records: auto-lock while statements are cached neither crashes nor keeps the keys") {
  outpost::test::VaultFixture f;
  std::ostringstream log;
  outpost::Context context(std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  outpost::test::ManualClock clock;
  outpost::VaultOptions o = outpost::test::fastOptions();
  o.clock = &clock;
  auto vault = outpost::Vault::create(context, f.dir, "2468", f.keyStore, o);
  outpost::model::RecordStore store(context, *vault, clock,
                                    outpost::test::RecordsFixture::defaultOptions());
  outpost::test::addTestTypes(store.schema());
  const auto child = store.create(
      "test.child", {{"name", std::string("A")}, {"owner_team", std::string("team-1")}});
  CHECK(store.get(child).has_value()); // statements are cached now
  clock.advance(std::chrono::minutes(10));
  CHECK(vault->checkAutoLock()); // the store's lock observer released them first
  CHECK(vault->unlock("2468").status == outpost::UnlockStatus::unlocked);
  CHECK(store.get(child).has_value()); // fresh statements on the new connection
  CHECK_MESSAGE(log.str().find("outlive") == std::string::npos, log.str());
}

TEST_CASE("records: a field name starting with '$' is refused (reserved for the sync layer)") {
  outpost::model::Schema schema;
  outpost::model::EntityType t;
  t.name = "acme.thing";
  t.fields = {
      outpost::model::FieldSpec{"$record", outpost::model::FieldType::text, false, {}, {}, {}, {}}};
  CHECK_THROWS_AS(schema.add(t), outpost::Error);
}

TEST_CASE("records: a type's fields in name order, common fields included, each the one "
          "field() finds") {
  outpost::model::Schema schema;
  outpost::model::EntityType t;
  t.name = "acme.thing";
  using outpost::model::FieldSpec;
  using outpost::model::FieldType;
  t.fields = {FieldSpec{"zeta", FieldType::text, false, {}, {}, {}, {}},
              FieldSpec{"Alpha", FieldType::integer, false, {}, {}, {}, {}},
              FieldSpec{"notes", FieldType::list, false, {}, {}, {}, {}}};
  t.fields[2].policy = outpost::sync::MergePolicy::appendOnly;
  schema.add(t);
  const auto* type = schema.find("acme.thing");
  REQUIRE(type != nullptr);
  const auto byName = schema.fieldsByName(*type);
  REQUIRE(byName.size() == 3 + std::size(outpost::model::kCommonFields));
  for (std::size_t i = 0; i < byName.size(); ++i) {
    CAPTURE(byName[i]->name);
    CHECK(schema.field(*type, byName[i]->name) == byName[i]);
    if (i > 0) {
      CHECK(byName[i - 1]->name < byName[i]->name); // byte order, as std::string sorts
    }
  }
  CHECK(byName.front()->name == "Alpha");
  CHECK(schema.field(*type, "notes")->policy == outpost::sync::MergePolicy::appendOnly);
  // A copy of the type finds the same; a type never added has none.
  const outpost::model::EntityType copy = *type;
  CHECK(schema.fieldsByName(copy).size() == byName.size());
  outpost::model::EntityType other;
  other.name = "acme.other";
  CHECK(schema.fieldsByName(other).empty());
}

TEST_SUITE("records.field_names") {
  using outpost::model::RecordWrite;

  TEST_CASE("a record's fields name each field by its number, kept once per store") {
    RecordsFixture f;
    FieldValues fields = f.caseFields("a title");
    fields.emplace("level", std::string("high"));
    const Uuid id = f.store->create("test.case", fields);
    (void)f.store->create("test.case", f.caseFields("another"));
    // status, owner_team, retention_class, created_by, title and level: once each
    CHECK(f.count("SELECT count(*) FROM field_names") == 6);
    CHECK(f.count("SELECT count(*) FROM records WHERE instr(fields, 'retention_class') > 0 OR "
                  "instr(fields, 'owner_team') > 0") == 0);
    f.restart();
    const auto r = f.store->get(id);
    REQUIRE(r);
    CHECK(std::get<std::string>(r->get("title")) == "a title");
    CHECK(std::get<std::string>(r->get("level")) == "high");
    CHECK(std::get<std::string>(r->get("retention_class")) == "standard");
  }

  TEST_CASE("a name first used by a write that rolls back is not kept") {
    RecordsFixture f;
    (void)f.store->create("test.case", f.caseFields());
    // `count` is new to the store; the batch fails at its second write.
    std::vector<RecordWrite> batch(2);
    batch[0].type = "test.case";
    batch[0].fields = f.caseFields();
    batch[0].fields.emplace("count", std::int64_t{7});
    batch[1].type = "test.case"; // no title: refused
    CHECK(errorCode([&] { (void)f.store->writeBatch(batch); }) == Errc::validation);
    // `count` is written again, then a new name, which may take the number the
    // rolled-back `count` had.
    const Uuid counted = f.store->create("test.case", batch[0].fields);
    FieldValues withFlag = f.caseFields();
    withFlag.emplace("flag", true);
    const Uuid flagged = f.store->create("test.case", withFlag);
    f.restart();
    CHECK(f.store->get(counted)->fields.contains("count"));
    CHECK_FALSE(f.store->get(counted)->fields.contains("flag"));
    CHECK(f.store->get(flagged)->fields.contains("flag"));
    CHECK_FALSE(f.store->get(flagged)->fields.contains("count"));
  }

  TEST_CASE("a store made anew on the same unlocked vault reads what the last one wrote") {
    RecordsFixture f;
    FieldValues fields = f.caseFields();
    fields.emplace("when", std::string("2026-01-02"));
    const Uuid id = f.store->create("test.case", fields);
    f.store.reset();
    f.store = f.makeStore();
    const auto r = f.store->get(id);
    REQUIRE(r);
    CHECK(std::get<std::string>(r->get("when")) == "2026-01-02");
  }

  TEST_CASE("records stored with names in full are numbered when the store opens") {
    RecordsFixture f;
    FieldValues fields = f.caseFields("kept");
    fields.emplace("notes", sync::StringList{"one", "two"});
    std::vector<Uuid> ids;
    for (int i = 0; i < 1500; ++i) { // more than one batch of the conversion
      ids.push_back(f.store->create("test.case", fields));
    }
    const auto before = f.store->get(ids.back());
    f.store.reset();
    // Back to the earlier form: names in full, no format key, no names table rows.
    f.vault->write([&](sql::Database& db) {
      sql::Statement rows(db, "SELECT rid FROM records");
      std::vector<std::int64_t> rids;
      while (rows.step()) {
        rids.push_back(rows.columnInt(0));
      }
      for (const std::int64_t rid : rids) {
        const std::string raw = sync::encodeFields(before->fields); // all alike
        sql::Statement(db, "UPDATE records SET fields = ?2 WHERE rid = ?1")
            .bind(1, rid)
            .bindBlob(2, std::span(reinterpret_cast<const unsigned char*>(raw.data()), raw.size()))
            .run();
      }
      db.exec("DELETE FROM store_meta WHERE key = 'fields_format'; DELETE FROM field_names");
    });
    f.store = f.makeStore();
    CHECK(f.count("SELECT count(*) FROM records WHERE instr(fields, 'retention_class') > 0") == 0);
    const auto after = f.store->get(ids.back());
    REQUIRE(after);
    CHECK(after->fields == before->fields);
    CHECK(std::get<std::string>(f.store->get(ids.front())->get("title")) == "kept");
  }

  TEST_CASE("a store of a later format is refused with what to do") {
    RecordsFixture f;
    f.store.reset();
    f.vault->write([](sql::Database& db) {
      db.exec("UPDATE store_meta SET value = 3 WHERE key = 'fields_format'");
    });
    try {
      (void)f.makeStore();
      FAIL("no throw");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::corrupt);
      CHECK(std::string(e.what()).find("update the app") != std::string::npos);
    }
  }
}
