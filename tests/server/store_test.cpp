// The server store on its own: administration errors change nothing, and the stored
// form of a field's merge state round-trips.

#include "harness.hpp"

#include <outpost/template.hpp>

#include <nlohmann/json.hpp>

#include <random>
#include <set>
#include <tuple>

using namespace outpost;
using namespace outpost::server;
using namespace outpost::server::testing;

namespace {

/// The change with its id derived when the wire left it out.
protocol::Change withEffectiveId(protocol::Change change) {
  change.changeId = protocol::effectiveChangeId(change);
  return change;
}

/// Pushes one change (x = 1) to a new record from `device`.
PushResult pushNewRecord(SqliteServerStore& store, const protocol::DeviceRecord& device,
                         protocol::Uuid* record = nullptr) {
  protocol::Change c;
  c.changeId = newId();
  c.recordId = newId();
  c.recordType = "assessment";
  c.field = "x";
  c.value = std::int64_t{1};
  c.hlc = sync::Hlc{hlcNow()};
  c.deviceId = device.deviceId;
  if (record != nullptr) {
    *record = c.recordId.bytes;
  }
  const PushContext context{device, *store.findWorker(device.workerId),
                            static_cast<std::int64_t>(hlcNow() >> 16)};
  return store.push(context, {c});
}

} // namespace

TEST_SUITE("server.store") {
  TEST_CASE("a field's merge state survives its stored form, and damage is reported") {
    sync::FieldState s;
    const sync::Uuid d = sync::Uuid::random();
    s.current = sync::FieldVersion{std::string("high"), sync::Hlc{42}, d, sync::Uuid::random()};
    s.conflicts.push_back(
        {std::int64_t{7}, sync::Hlc{41}, sync::Uuid::random(), sync::Uuid::random()});
    s.entries.push_back({sync::StringList{"a", "b"}, sync::Hlc{5}, d, sync::Uuid::random()});
    s.superseded.push_back({sync::Hlc{3}, d});
    const std::string bytes = encodeFieldState(s);
    CHECK(decodeFieldState(bytes) == s);
    CHECK(decodeFieldState(encodeFieldState(sync::FieldState{})) == sync::FieldState{});
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
      CHECK(codeOf([&] { (void)decodeFieldState(std::string_view(bytes).substr(0, cut)); }) ==
            Errc::corrupt);
    }
  }

  TEST_CASE("a record's merge state survives its stored form, and damage is reported") {
    sync::RecordState r;
    const sync::Uuid d = sync::Uuid::random();
    r.fields["risk_level"].current =
        sync::FieldVersion{std::string("high"), sync::Hlc{42}, d, sync::Uuid::random()};
    r.fields["addenda"].entries.push_back(
        {std::string("seen at school"), sync::Hlc{5}, d, sync::Uuid::random()});
    r.fields["note"].superseded.push_back({sync::Hlc{3}, d});
    const std::string bytes = sync::encodeRecordState(r);
    CHECK(sync::decodeRecordState(bytes) == r);
    CHECK(sync::decodeRecordState("") == sync::RecordState{});
    CHECK(sync::decodeRecordState(sync::encodeRecordState({})) == sync::RecordState{});
    for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
      CAPTURE(cut);
      CHECK(codeOf([&] {
              (void)sync::decodeRecordState(std::string_view(bytes).substr(0, cut));
            }) == Errc::corrupt);
    }
    CHECK(codeOf([&] { (void)sync::decodeRecordState(bytes + "x"); }) == Errc::corrupt);
  }

  TEST_CASE("teams and workers: bad input is refused with a clear code and changes nothing") {
    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    CHECK(codeOf([&] { store->addTeam("north"); }) == Errc::already_exists);
    CHECK(codeOf([&] { store->addTeam(""); }) == Errc::invalid_argument);
    CHECK(codeOf([&] { store->addWorker("worker-d", {"north", "nowhere"}); }) == Errc::not_found);
    CHECK_FALSE(store->findWorker("worker-d").has_value());
    CHECK(codeOf([&] { store->addWorker("worker-a", {"south"}); }) == Errc::already_exists);
    CHECK(store->findWorker("worker-a")->teams == std::vector<std::string>{"north"});
    store->addWorker("worker-e", {"south", "north"});
    CHECK(store->findWorker("worker-e")->teams == std::vector<std::string>{"south", "north"});
    CHECK(store->teams() == std::vector<std::string>{"north", "south"});
  }

  TEST_CASE("a store that was never initialised is not created by opening it") {
    Context ctx;
    TempDir empty;
    CHECK(codeOf([&] { (void)ServerKeys::load(empty.path); }) == Errc::not_found);
    TempDir elsewhere;
    const ServerKeys keys = ServerKeys::create(ctx, elsewhere.path);
    CHECK(codeOf([&] { SqliteServerStore s(ctx, empty.path, keys); }) == Errc::not_found);
    CHECK_FALSE(fs::exists(SqliteServerStore::databasePath(empty.path)));
  }

  TEST_CASE("idle() truncates a WAL that is all copied, and never waits for a reader of an "
            "older snapshot") {
    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    const protocol::DeviceRecord device{newId(), {}, "worker-a", "north", false};
    const fs::path wal = SqliteServerStore::databasePath(data.dir.path).string() + "-wal";
    REQUIRE(pushNewRecord(*store, device).applied == 1);
    REQUIRE(fs::file_size(wal) > 0);
    CHECK(store->idle());
    CHECK(fs::file_size(wal) == 0);
    CHECK(store->idle()); // nothing left: still done

    // A reader keeps the snapshot of before the next push: its pages cannot all be
    // copied, so idle() leaves the WAL and says so, at once (the store's busy timeout
    // is 10 s).
    sql::Database reader(SqliteServerStore::databasePath(data.dir.path).string(),
                         SQLITE_OPEN_READONLY);
    reader.exec("BEGIN");
    CHECK(reader.queryInt("SELECT COUNT(*) FROM records") == 1);
    REQUIRE(pushNewRecord(*store, device).applied == 1);
    const auto started = std::chrono::steady_clock::now();
    CHECK_FALSE(store->idle());
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
    CHECK(fs::file_size(wal) > 0);
    reader.exec("COMMIT");
    CHECK(store->idle());
    CHECK(fs::file_size(wal) == 0);
    CHECK(store->recordCount() == 2);
    CHECK(store->verifyAudit().intact);
  }

  TEST_CASE("a new store has 8 KiB pages, and one made with 4 KiB pages keeps them and works") {
    Context ctx;
    DataFolder data(ctx);
    const auto pageSize = [&] {
      sql::Database db(SqliteServerStore::databasePath(data.dir.path).string(),
                       SQLITE_OPEN_READWRITE);
      return db.queryInt("PRAGMA page_size");
    };
    CHECK(pageSize() == 8192);
    {
      // As a store made before: 4 KiB pages (WAL fixes the size; DELETE lets VACUUM
      // change it).
      sql::Database db(SqliteServerStore::databasePath(data.dir.path).string(),
                       SQLITE_OPEN_READWRITE);
      (void)db.queryText("PRAGMA journal_mode = DELETE");
      db.exec("PRAGMA page_size = 4096; VACUUM;");
      (void)db.queryText("PRAGMA journal_mode = WAL");
    }
    REQUIRE(pageSize() == 4096);
    auto store = data.store();
    CHECK(pushNewRecord(*store, {newId(), {}, "worker-a", "north", false}).applied == 1);
    store.reset();
    CHECK(pageSize() == 4096);
    CHECK(data.store()->recordCount() == 1);
    CHECK(data.store()->verifyAudit().intact);
  }

  TEST_CASE("a new record is owned by the worker's first team") {
    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    store->addWorker("worker-e", {"south", "north"});
    protocol::Uuid record{};
    const PushResult r = pushNewRecord(*store, {newId(), {}, "worker-e", "south", false}, &record);
    CHECK(r.applied == 1);
    CHECK(store->record(sync::Uuid{record})->ownerTeam == "south");
    CHECK(store->recordCount() == 1);
  }

  TEST_CASE("a write is one row: its changes share a sequence number, ids left out are derived, "
            "and the same write again is a duplicate as a whole") {
    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    const protocol::DeviceRecord device{newId(), {}, "worker-a", "north", false};
    const protocol::Uuid record = newId();
    const std::uint64_t hlc = hlcNow(); // one write: one HLC, whatever the clock does meanwhile
    std::vector<protocol::Change> write;
    for (const char* field : {"risk", "school", "note"}) {
      protocol::Change c;
      c.recordId = record; // changeId left all-zero: the derived one
      c.recordType = "child";
      c.field = field;
      c.value = std::string(field) + " value";
      c.hlc = sync::Hlc{hlc};
      c.deviceId = device.deviceId;
      write.push_back(c);
    }
    write[1].changeId = newId(); // one id that is not derived
    const PushContext context{device, *store->findWorker("worker-a"),
                              static_cast<std::int64_t>(hlcNow() >> 16)};
    const PushResult first = store->push(context, write);
    CHECK(first.applied == 3);
    const auto derived = [&](const protocol::Change& c) {
      return sync::derivedChangeId(c.deviceId, c.recordId, c.field, c.hlc);
    };
    // The results carry the ids as sent (as the acknowledgement does), the audit the
    // effective ones.
    CHECK(protocol::isElidedId(first.results[0].changeId));
    CHECK(first.results[1].changeId == write[1].changeId);
    CHECK(store->lastSequence() == 1);
    const auto entry = store->lastAuditEntries(1).front();
    REQUIRE(entry.changes.size() == 3);
    for (const auto& c : entry.changes) {
      CHECK(c.seq == 1);
    }
    CHECK(entry.changes[0].changeId == derived(write[0]));
    CHECK(entry.changes[1].changeId == write[1].changeId);

    const Worker puller = *store->findWorker("worker-b");
    const protocol::PullReply full = store->pull(puller, newId(), 0, 100);
    REQUIRE(full.changes.size() == 3);
    CHECK(full.changes[0].changeId == derived(write[0]));
    CHECK(full.changes[1].changeId == write[1].changeId);
    const protocol::PullReply elided = store->pull(puller, newId(), 0, 100, true);
    REQUIRE(elided.changes.size() == 3);
    CHECK(protocol::isElidedId(elided.changes[0].changeId));
    CHECK(elided.changes[1].changeId == write[1].changeId);
    // The device's own write is never sent back to it.
    CHECK(store->pull(puller, device.deviceId, 0, 100).changes.empty());

    // Resent (ids now spelled out): nothing is applied twice.
    std::vector<protocol::Change> again = write;
    for (auto& c : again) {
      c.changeId = protocol::effectiveChangeId(c);
    }
    const PushResult second = store->push(context, again);
    CHECK(second.duplicates == 3);
    CHECK(store->lastSequence() == 1);
    CHECK(store->verifyAudit().intact);
  }

  TEST_CASE("random pushes give the outcomes and, with derived ids filled in, the record states "
            "of merging every change with its effective id") {
    // The reference: sync::merge on states that hold every id, as the store did before
    // it kept derived ids as a flag. Writes from two devices on three records: ids left
    // out, spelled out or not derived; the same field twice in a write; bases and
    // resolves lists; deletions; an append-only field; writes sent again.
    for (const std::uint64_t seed : {1u, 2u, 3u}) {
      CAPTURE(seed);
      Context ctx;
      DataFolder data(ctx);
      auto store = data.store();
      REQUIRE(store->setFieldPolicies({{"child", "notes", sync::MergePolicy::appendOnly}}) == 1);
      std::mt19937_64 rng(seed);
      const std::vector<protocol::DeviceRecord> devices{{newId(), {}, "worker-a", "north", false},
                                                        {newId(), {}, "worker-b", "north", false}};
      const std::vector<protocol::Uuid> records{newId(), newId(), newId()};
      const std::vector<std::string> fields{std::string(sync::kRecordField), "notes", "risk",
                                            "school"};
      const auto policyOf = [](const std::string& field) {
        return field == "notes" ? sync::MergePolicy::appendOnly : sync::MergePolicy::lww;
      };
      std::map<sync::Uuid, sync::RecordState> reference;
      std::set<std::tuple<sync::Uuid, sync::Hlc, sync::Uuid>> storedWrites;
      std::vector<std::pair<std::size_t, std::vector<protocol::Change>>> sent; // device, write
      std::uint64_t logical = 0;
      const std::uint64_t start = hlcNow();
      std::map<protocol::ChangeOutcome, int> seen;
      for (int step = 0; step < 120; ++step) {
        CAPTURE(step);
        std::size_t d = rng() % devices.size();
        std::vector<protocol::Change> write;
        if (!sent.empty() && rng() % 7 == 0) {
          // A write sent again, its ids now left out, now spelled out.
          std::tie(d, write) = sent[rng() % sent.size()];
          for (protocol::Change& c : write) {
            if (rng() % 2 == 0 && c.changeId == protocol::effectiveChangeId(c)) {
              c.changeId = protocol::isElidedId(c.changeId) ? protocol::effectiveChangeId(c)
                                                            : protocol::Uuid{};
            }
          }
        } else {
          const protocol::Uuid record = records[rng() % records.size()];
          const std::uint64_t hlc = start + ++logical;
          std::vector<std::string> names;
          for (const std::string& f : fields) {
            if (rng() % 3 == 0) {
              names.push_back(f);
            }
          }
          if (names.empty() || rng() % 10 == 0) {
            names.push_back(fields[rng() % fields.size()]); // maybe a field twice
          }
          std::sort(names.begin(), names.end());
          for (const std::string& name : names) {
            protocol::Change c;
            c.recordId = record;
            c.recordType = "child";
            c.field = name;
            c.hlc = sync::Hlc{hlc};
            c.deviceId = devices[d].deviceId;
            if (name == sync::kRecordField) {
              c.value = rng() % 2 == 0 ? protocol::Value{protocol::Tombstone{}}
                                       : protocol::Value{protocol::Null{}};
            } else {
              c.value = std::string(name) + "-" + std::to_string(rng() % 5);
            }
            switch (rng() % 4) {
            case 0:
            case 1:
              break; // left out: the derived one
            case 2:
              c.changeId = protocol::effectiveChangeId(c); // the derived one, spelled out
              break;
            default:
              c.changeId = newId(); // not derived
            }
            // Based on a version the device may have seen; now and then resolving another.
            const auto& state = reference[record].fields[name];
            std::vector<sync::FieldVersion> known;
            if (state.current) {
              known.push_back(*state.current);
            }
            known.insert(known.end(), state.conflicts.begin(), state.conflicts.end());
            known.insert(known.end(), state.entries.begin(), state.entries.end());
            if (!known.empty() && rng() % 2 == 0) {
              const auto& base = known[rng() % known.size()];
              c.baseHlc = base.hlc;
              c.baseDeviceId = base.deviceId;
              if (known.size() > 1 && rng() % 3 == 0) {
                const auto& other = known[rng() % known.size()];
                c.resolves.push_back({other.hlc, other.deviceId});
              }
            }
            write.push_back(std::move(c));
          }
          sent.emplace_back(d, write);
        }

        // What the reference makes of it.
        std::vector<protocol::ChangeOutcome> expected;
        const auto key =
            std::tuple(write.front().deviceId, write.front().hlc, write.front().recordId);
        if (storedWrites.contains(key)) {
          expected.assign(write.size(), protocol::ChangeOutcome::duplicate);
        } else {
          bool anyStored = false;
          for (const protocol::Change& c : write) {
            sync::FieldState& state = reference[c.recordId].fields[c.field];
            const sync::MergeOutcome m = sync::merge(state, withEffectiveId(c), policyOf(c.field));
            switch (m) {
            case sync::MergeOutcome::duplicate:
              expected.push_back(protocol::ChangeOutcome::duplicate);
              break;
            case sync::MergeOutcome::rejected:
              expected.push_back(protocol::ChangeOutcome::rejected);
              break;
            case sync::MergeOutcome::won:
            case sync::MergeOutcome::lost:
              expected.push_back(protocol::ChangeOutcome::conflict);
              anyStored = true;
              break;
            default:
              expected.push_back(protocol::ChangeOutcome::applied);
              anyStored = true;
            }
          }
          if (anyStored) {
            storedWrites.insert(key);
          }
        }
        const PushContext context{devices[d], *store->findWorker(devices[d].workerId),
                                  static_cast<std::int64_t>(hlcNow() >> 16)};
        const PushResult result = store->push(context, write);
        REQUIRE(result.results.size() == write.size());
        for (std::size_t i = 0; i < write.size(); ++i) {
          CAPTURE(i);
          CHECK(result.results[i].outcome == expected[i]);
          CHECK(result.results[i].changeId == write[i].changeId); // as sent
          ++seen[expected[i]];
        }
      }
      // The run met each outcome the store can give here.
      for (const auto outcome :
           {protocol::ChangeOutcome::applied, protocol::ChangeOutcome::conflict,
            protocol::ChangeOutcome::duplicate}) {
        CHECK(seen[outcome] >= 5);
      }
      for (const protocol::Uuid& id : records) {
        sync::RecordState want = reference[id];
        std::erase_if(want.fields, [](const auto& f) { return f.second == sync::FieldState{}; });
        const auto view = store->record(sync::Uuid{id});
        if (want.fields.empty()) {
          CHECK_FALSE(view.has_value());
          continue;
        }
        REQUIRE(view.has_value());
        CHECK(view->state == want);
        // As stored: every current or competing derived id is a flag, entries keep theirs.
        sql::Database db(SqliteServerStore::databasePath(data.dir.path).string(),
                         SQLITE_OPEN_READONLY);
        sql::Statement st(db, "SELECT state FROM records WHERE record_id = ?1");
        st.bindBlob(1, std::span<const unsigned char>(id.data(), id.size()));
        REQUIRE(st.step());
        const auto blob = st.columnBlob(0);
        const sync::RecordState stored = sync::decodeRecordState(
            std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size()));
        for (const auto& [name, state] : stored.fields) {
          CAPTURE(name);
          std::vector<sync::FieldVersion> lww = state.conflicts;
          if (state.current) {
            lww.push_back(*state.current);
          }
          for (const sync::FieldVersion& v : lww) {
            CHECK(v.changeId != sync::derivedChangeId(v.deviceId, sync::Uuid{id}, name, v.hlc));
          }
          for (const sync::FieldVersion& v : state.entries) {
            CHECK_FALSE(v.changeId.isNil());
          }
        }
      }
      CHECK(store->verifyAudit().intact);
    }
  }

  TEST_CASE("a record's state keeps derived change ids as a flag: a new record's write "
            "derives none, and later merges compare them") {
    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    const protocol::DeviceRecord a{newId(), {}, "worker-a", "north", false};
    const protocol::DeviceRecord b{newId(), {}, "worker-b", "north", false};
    const protocol::Uuid record = newId();
    const auto change = [&](const protocol::DeviceRecord& device, std::uint64_t hlc,
                            const char* field, std::string value) {
      protocol::Change c; // changeId left all-zero: the derived one
      c.recordId = record;
      c.recordType = "child";
      c.field = field;
      c.value = std::move(value);
      c.hlc = sync::Hlc{hlc};
      c.deviceId = device.deviceId;
      return c;
    };
    const auto derived = [&](const protocol::DeviceRecord& device, std::uint64_t hlc,
                             const char* field) {
      return sync::derivedChangeId(sync::Uuid{device.deviceId}, sync::Uuid{record}, field,
                                   sync::Hlc{hlc});
    };
    const auto push = [&](const protocol::DeviceRecord& device,
                          const std::vector<protocol::Change>& write) {
      const PushContext context{device, *store->findWorker(device.workerId),
                                static_cast<std::int64_t>(hlcNow() >> 16)};
      return store->push(context, write);
    };
    const auto rawState = [&] {
      sql::Database db(SqliteServerStore::databasePath(data.dir.path).string(),
                       SQLITE_OPEN_READONLY);
      sql::Statement st(db, "SELECT state FROM records");
      REQUIRE(st.step());
      const auto blob = st.columnBlob(0);
      return std::string(reinterpret_cast<const char*>(blob.data()), blob.size());
    };

    // A new record: one id left out, one sent; an append-only entry's left out too.
    REQUIRE(store->setFieldPolicies({{"child", "notes", sync::MergePolicy::appendOnly}}) == 1);
    const std::uint64_t h1 = hlcNow();
    std::vector<protocol::Change> first{change(a, h1, "notes", "seen at school"),
                                        change(a, h1, "risk", "low"), change(a, h1, "school", "x")};
    first[2].changeId = newId();
    REQUIRE(push(a, first).applied == 3);
    {
      const sync::RecordState stored = sync::decodeRecordState(rawState());
      // Entries keep their ids (a long list is not derived again at each append).
      REQUIRE(stored.fields.at("notes").entries.size() == 1);
      CHECK(stored.fields.at("notes").entries[0].changeId == derived(a, h1, "notes"));
      CHECK(stored.fields.at("risk").current->changeId.isNil());
      CHECK(stored.fields.at("school").current->changeId.bytes == first[2].changeId);
      const sync::RecordState view = store->record(sync::Uuid{record})->state;
      CHECK(view.fields.at("risk").current->changeId == derived(a, h1, "risk"));
      CHECK(view.fields.at("school").current->changeId.bytes == first[2].changeId);
    }

    // A concurrent edit from another device: both values kept, the ids compared
    // (and derived for it), then left out again.
    const std::uint64_t h2 = hlcNow(5);
    REQUIRE(push(b, {change(b, h2, "risk", "high")}).conflicts == 1);
    {
      const sync::RecordState stored = sync::decodeRecordState(rawState());
      const sync::FieldState& risk = stored.fields.at("risk");
      REQUIRE(risk.current);
      REQUIRE(risk.conflicts.size() == 1);
      CHECK(risk.current->changeId.isNil());
      CHECK(risk.conflicts[0].changeId.isNil());
      const auto viewed = store->record(sync::Uuid{record});
      REQUIRE(viewed.has_value());
      const sync::FieldState& view = viewed->state.fields.at("risk");
      CHECK(view.current->changeId == derived(b, h2, "risk"));
      CHECK(view.conflicts[0].changeId == derived(a, h1, "risk"));
    }

    // A later write that sends the first change's derived id again: the merge knows
    // it (the stored version's id is derived for the comparison).
    const std::uint64_t h3 = hlcNow(9);
    std::vector<protocol::Change> repeat{change(a, h3, "risk", "low")};
    repeat[0].changeId = derived(a, h1, "risk");
    const PushResult again = push(a, repeat);
    CHECK(again.duplicates == 1);
    CHECK(again.applied + again.conflicts == 0);
    CHECK(store->record(sync::Uuid{record})->conflictFields == std::vector<std::string>{"risk"});
    CHECK(store->lastSequence() == 2);
    CHECK(store->verifyAudit().intact);
    // Its audit entry lists it by the id it was sent with.
    const auto entry = store->lastAuditEntries(1).front();
    REQUIRE(entry.changes.size() == 1);
    CHECK(entry.changes[0].changeId == repeat[0].changeId);
    CHECK(entry.changes[0].outcome == protocol::ChangeOutcome::duplicate);
  }

  TEST_CASE("publishing templates: only a valid published document, never changed once "
            "published, devices are sent the ones they lack") {
    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    const std::string v2 = shippedTemplateAs(2, "CSE screening (second edition)");
    CHECK(store->publishTemplate(v2));
    CHECK_FALSE(store->publishTemplate(v2)); // the same again: nothing changes
    CHECK(codeOf([&] {
            (void)store->publishTemplate(shippedTemplateAs(2, "edited after publishing"));
          }) == Errc::already_exists);
    auto draft = nlohmann::json::parse(model::cseScreeningV1Json());
    draft["version"] = 3;
    draft["status"] = "draft";
    draft.erase("content_hash");
    CHECK(codeOf([&] { (void)store->publishTemplate(draft.dump()); }) == Errc::invalid_template);
    CHECK(codeOf([&] { (void)store->publishTemplate("{\"id\": 1}"); }) == Errc::invalid_template);
    CHECK(codeOf([&] { (void)store->publishTemplate("not json"); }) == Errc::invalid_template);
    const auto published = store->publishedTemplates();
    REQUIRE(published.size() == 1);
    CHECK(published[0].id == "cse-screening");
    CHECK(published[0].version == 2);
    CHECK(store->lastAuditEntries(1).front().kind == AuditKind::templatePublish);
    CHECK(store->verifyAudit().intact);

    const protocol::DeviceRecord device{newId(), {}, "worker-a", "north", false};
    const auto lacking = store->pendingCommands(device, {"cse-screening@1"}).commands;
    REQUIRE(lacking.size() == 1);
    const auto* update = std::get_if<protocol::TemplateUpdate>(&lacking[0].action);
    REQUIRE(update != nullptr);
    CHECK(update->templates == std::vector<std::string>{v2});
    CHECK(store->pendingCommands(device, {"cse-screening@1", "cse-screening@2"}).commands.empty());
  }

  TEST_CASE("a pull reply holds whole writes: it stops before a write that would pass the limit") {
    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    const protocol::DeviceRecord device{newId(), {}, "worker-a", "north", false};
    std::vector<protocol::Change> changes;
    for (int w = 0; w < 3; ++w) { // three writes of 4 changes each
      const protocol::Uuid record = newId();
      const std::uint64_t hlc = hlcNow(static_cast<std::uint64_t>(w));
      for (int f = 0; f < 4; ++f) {
        protocol::Change c;
        c.changeId = newId();
        c.recordId = record;
        c.recordType = "child";
        c.field = "f" + std::to_string(f);
        c.value = std::int64_t{f};
        c.hlc = sync::Hlc{hlc};
        c.deviceId = device.deviceId;
        changes.push_back(c);
      }
    }
    const PushContext context{device, *store->findWorker("worker-a"),
                              static_cast<std::int64_t>(hlcNow() >> 16)};
    CHECK(store->push(context, changes).applied == 12);
    const Worker puller = *store->findWorker("worker-b");
    const protocol::PullReply a = store->pull(puller, newId(), 0, 6);
    CHECK(a.changes.size() == 4);
    CHECK(a.more);
    CHECK(a.nextCursor == 1);
    const protocol::PullReply b = store->pull(puller, newId(), a.nextCursor, 8);
    CHECK(b.changes.size() == 8);
    CHECK_FALSE(b.more);
    // A limit smaller than one write still returns that write.
    CHECK(store->pull(puller, newId(), 0, 1).changes.size() == 4);
  }
}

TEST_SUITE("server.store") {
  TEST_CASE("a device's scope: purge commands name the records of teams its worker left") {
    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    const protocol::DeviceRecord device{newId(), {}, "worker-a", "north", false};
    CHECK(store->pendingCommands(device).commands.empty());
    CHECK_FALSE(store->pendingCommands(device).recorded); // first session: recorded at ack
    store->acknowledgeScope(device, store->pendingCommands(device).teams);
    CHECK(store->pendingCommands(device).recorded); // later sessions write nothing
    protocol::Uuid record{};
    CHECK(pushNewRecord(*store, device, &record).applied == 1);
    CHECK(store->pendingCommands(device).commands.empty());
    store->setWorkerTeams("worker-a", {"south"});
    const auto [commands, teams, recorded] = store->pendingCommands(device);
    CHECK_FALSE(recorded);
    CHECK(teams == std::vector<std::string>{"south"});
    REQUIRE(commands.size() == 1);
    CHECK(std::get<protocol::PurgeRecords>(commands[0].action).recordIds ==
          std::vector<protocol::Uuid>{record});
    store->acknowledgeScope(device, teams);
    CHECK(store->pendingCommands(device).commands.empty());
  }
}

TEST_SUITE("server.store") {
  TEST_CASE("a worker in several teams pulls every team's changes once, in sequence order, in "
            "pages") {
    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    store->addTeam("east");
    store->addWorker("worker-1", {"north", "south", "east"});
    const protocol::DeviceRecord north{newId(), {}, "worker-b", "north", false};
    const protocol::DeviceRecord south{newId(), {}, "worker-c", "south", false};
    const auto pushOne = [&](const protocol::DeviceRecord& device) {
      const PushResult r = pushNewRecord(*store, device);
      REQUIRE(r.applied == 1);
      return r.results.front().changeId;
    };
    // Interleaved: north, south, north, north, south, ... (17 changes).
    std::vector<sync::Uuid> pushed;
    for (int i = 0; i < 17; ++i) {
      pushed.push_back(pushOne(i % 3 == 1 ? south : north));
    }
    const Worker worker = *store->findWorker("worker-1");
    std::vector<sync::Uuid> seen;
    std::uint64_t cursor = 0;
    for (int page = 0; page < 10; ++page) {
      const protocol::PullReply reply = store->pull(worker, {}, cursor, 5);
      CHECK(reply.changes.size() <= 5);
      for (const auto& c : reply.changes) {
        seen.push_back(c.changeId);
      }
      cursor = reply.nextCursor;
      if (!reply.more) {
        break;
      }
    }
    CHECK(seen == pushed);
    CHECK(cursor == 17);
    // A worker of one team sees only that team's.
    CHECK(store->pull(*store->findWorker("worker-c"), {}, 0, 100).changes.size() == 6);
    // Sequence order across teams, and a cursor in the middle resumes exactly.
    const protocol::PullReply middle = store->pull(worker, {}, 8, 100);
    CHECK(middle.changes.size() == 9);
    CHECK_FALSE(middle.more);
    const protocol::PullReply first = store->pull(worker, {}, 0, 8);
    CHECK(first.changes.size() == 8);
    CHECK(first.more);
    CHECK(first.nextCursor == 8);
  }
}
