// The server's audit chain: every pushed batch and administrative action is an
// entry, the chain verifies, and tampering with an entry or with the change log
// after the fact is found, naming the first bad entry. Also: the merge policies
// the server takes from the SDK's built-in schema.

#include "harness.hpp"

#include <outpost/server/builtin_schema.hpp>

#include <algorithm>
#include <map>

using namespace outpost;
using namespace outpost::server;
using namespace outpost::server::testing;

namespace {

/// Raw SQL on a data folder's database, as someone with file access could run it.
void tamper(const DataFolder& data, const std::string& statement) {
  sql::Database db(SqliteServerStore::databasePath(data.dir.path).string(), SQLITE_OPEN_READWRITE);
  db.exec(statement);
}

std::int64_t queryInt(const DataFolder& data, const std::string& query) {
  sql::Database db(SqliteServerStore::databasePath(data.dir.path).string(), SQLITE_OPEN_READONLY);
  return db.queryInt(query);
}

protocol::Change changeBy(const protocol::DeviceRecord& device, const protocol::Uuid& record,
                          std::string type, std::string field, protocol::Value value,
                          std::uint64_t baseHlc = 0, protocol::Uuid baseDevice = {}) {
  static std::uint64_t logical = 0;
  protocol::Change c;
  c.changeId = newId();
  c.recordId = record;
  c.recordType = std::move(type);
  c.field = std::move(field);
  c.value = std::move(value);
  c.hlc = sync::Hlc{hlcNow(++logical % 1000)};
  c.deviceId = device.deviceId;
  c.baseHlc = sync::Hlc{baseHlc};
  c.baseDeviceId = baseDevice;
  return c;
}

PushResult pushAs(ServerStore& store, const protocol::DeviceRecord& device,
                  const std::vector<protocol::Change>& changes) {
  const auto worker = store.findWorker(device.workerId);
  REQUIRE(worker.has_value());
  PushContext context{device, *worker, static_cast<std::int64_t>(hlcNow() >> 16),
                      std::chrono::minutes(2), newId()};
  return store.push(context, changes);
}

/// A folder with admin entries (from DataFolder) and three pushed batches: the
/// second has a duplicate and a rejected change. Returns the device used.
protocol::DeviceRecord fillFolder(const DataFolder& data) {
  auto store = data.store();
  const protocol::DeviceRecord device{newId(), {}, "worker-a", "north", false};
  const protocol::Uuid record = newId();
  const auto first = changeBy(device, record, "assessment", "risk", std::string("low"));
  (void)pushAs(*store, device,
               {first, changeBy(device, record, "assessment", "x", std::int64_t{1})});
  protocol::Change foreign = changeBy(device, newId(), "assessment", "risk", std::string("high"));
  foreign.deviceId = newId(); // speaks for another device: rejected
  (void)pushAs(*store, device,
               {first, foreign, changeBy(device, record, "assessment", "y", std::string("b"))});
  (void)pushAs(*store, device,
               {changeBy(device, newId(), "assessment", "risk", std::string("medium"))});
  return device;
}

/// Turns a new data folder's database into an empty schema-1 store (a change log of
/// one row per field change, field states, no audit chain), as an old build made it.
void asSchemaOne(sql::Database& db) {
  db.exec("DROP TABLE audit_log; DROP TABLE writes; ALTER TABLE records DROP COLUMN state;"
          "CREATE TABLE changes(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
          " change_id BLOB NOT NULL UNIQUE, record_id BLOB NOT NULL,"
          " record_type TEXT NOT NULL, field TEXT NOT NULL, value BLOB NOT NULL,"
          " hlc INTEGER NOT NULL, device_id BLOB NOT NULL, base_hlc INTEGER NOT NULL,"
          " base_device_id BLOB NOT NULL, resolves BLOB NOT NULL,"
          " received_ms INTEGER NOT NULL, merge_outcome TEXT NOT NULL);"
          "CREATE INDEX changes_by_record ON changes(record_id);"
          "CREATE TABLE field_states(record_id BLOB NOT NULL, field TEXT NOT NULL,"
          " state BLOB NOT NULL, in_conflict INTEGER NOT NULL,"
          " PRIMARY KEY(record_id, field)) WITHOUT ROWID;"
          "PRAGMA user_version = 1");
}

} // namespace

TEST_SUITE("server.audit") {
  TEST_CASE("every pushed batch and administrative action is an entry, and the chain verifies") {
    Context ctx;
    DataFolder data(ctx); // 2 teams, 3 workers: 5 entries
    const protocol::DeviceRecord device = fillFolder(data);
    auto store = data.store();
    store->setActor("admin:test");
    store->setWorkerTeams("worker-b", {"south", "north"});
    const auto code =
        store->issueEnrollmentCode("worker-b", std::chrono::hours(1), protocol::Clock::now());
    CHECK(code.code.size() == 19);
    store->deviceRegistry().add(
        {newId(), protocol::noise::KeyPair::generate(ctx).publicKey, "worker-b", "south", false},
        protocol::Clock::now());
    CHECK(store->revokeDevice(store->devices().back().record.deviceId));
    CHECK_FALSE(store->revokeDevice(newId()));

    const AuditVerification v = store->verifyAudit();
    CHECK(v.intact);
    CHECK(v.problem.empty());
    CHECK(v.entries == 11);
    CHECK(v.pushes == 3);
    CHECK(v.signaturesChecked == 11);
    CHECK(v.changesChecked == 4);
    CHECK(queryInt(data, "SELECT COUNT(*) FROM writes") == 4); // one change per write here
    CHECK(v.headSeq == 11);

    const auto entries = store->auditEntries(0, 100);
    REQUIRE(entries.size() == 11);
    std::vector<AuditKind> kinds;
    for (const auto& e : entries) {
      kinds.push_back(e.kind);
    }
    CHECK(kinds == std::vector<AuditKind>{AuditKind::teamAdd, AuditKind::teamAdd,
                                          AuditKind::workerAdd, AuditKind::workerAdd,
                                          AuditKind::workerAdd, AuditKind::push, AuditKind::push,
                                          AuditKind::push, AuditKind::workerSetTeams,
                                          AuditKind::enrollIssue, AuditKind::deviceRevoke});
    const AuditEntry& second = entries[6];
    CHECK(second.actor == "worker-a");
    CHECK(second.device == device.deviceId);
    REQUIRE(second.changes.size() == 3);
    CHECK(second.changes[0].outcome == protocol::ChangeOutcome::duplicate);
    CHECK(second.changes[0].seq == 0);
    CHECK(second.changes[1].outcome == protocol::ChangeOutcome::rejected);
    CHECK(second.changes[1].reason == static_cast<std::uint16_t>(Errc::auth_failed));
    CHECK(second.changes[2].outcome == protocol::ChangeOutcome::applied);
    CHECK(second.changes[2].seq == 3);
    CHECK(second.detail.find("\"duplicate\":1") != std::string::npos);
    CHECK(entries[8].actor == "admin:test");
    CHECK(entries[8].detail.find("previousTeams") != std::string::npos);
    // The code itself is never in the chain.
    CHECK(entries[9].detail.find(code.code) == std::string::npos);
    CHECK(store->lastAuditEntries(2).front().seq == 10);
  }

  TEST_CASE("tampering after the fact is found and the first bad entry named") {
    Context ctx;
    DataFolder data(ctx);
    (void)fillFolder(data);
    // Entries 6, 7, 8 are the pushes; entry 6 stored writes 1-2, entry 7 write 3, entry 8
    // write 4 (each change of fillFolder is a write of its own).
    REQUIRE(data.store()->verifyAudit().intact);
    std::int64_t expectedBad = 0;
    std::string expectedWords;

    SUBCASE("an entry's detail edited") {
      tamper(data, "UPDATE audit_log SET detail = replace(detail, '\"applied\":1', '\"applied\":0')"
                   " WHERE seq = 7");
      expectedBad = 7;
      expectedWords = "altered";
    }
    SUBCASE("an entry's actor edited") {
      tamper(data, "UPDATE audit_log SET actor = 'worker-b' WHERE seq = 2");
      expectedBad = 2;
      expectedWords = "altered";
    }
    SUBCASE("an entry's change list edited (an outcome turned into another)") {
      // Entry 7 starts with its duplicate, listed with its id: tag, id, outcome.
      tamper(data, "UPDATE audit_log SET changes = substr(changes, 1, 17) || x'00' ||"
                   " substr(changes, 19) WHERE seq = 7");
      expectedBad = 7;
      expectedWords = "altered";
    }
    SUBCASE("a run's count edited (a write said to hold two changes)") {
      REQUIRE(queryInt(data, "SELECT hex(substr(changes, 1, 2)) = '0101' FROM audit_log"
                             " WHERE seq = 8") == 1);
      tamper(data, "UPDATE audit_log SET changes = x'0102' || substr(changes, 3) WHERE seq = 8");
      expectedBad = 8;
      expectedWords = "altered";
    }
    SUBCASE("an entry's change list format turned back to the explicit one") {
      tamper(data, "UPDATE audit_log SET changes_format = 1 WHERE seq = 8");
      expectedBad = 8;
      expectedWords = "altered";
    }
    SUBCASE("an entry deleted") {
      tamper(data, "DELETE FROM audit_log WHERE seq = 4");
      expectedBad = 4;
      expectedWords = "missing";
    }
    SUBCASE("an entry re-signed with another key") {
      tamper(data, "UPDATE audit_log SET signature = randomblob(64) WHERE seq = 5");
      expectedBad = 5;
      expectedWords = "signed";
    }
    SUBCASE("a write row's fields damaged") {
      tamper(data, "UPDATE writes SET fields = x'00' WHERE seq = 2");
      expectedBad = 6;
      expectedWords = "altered";
    }
    SUBCASE("a write row's value altered (still well-formed)") {
      tamper(data, "UPDATE writes SET fields = CAST(replace(fields, CAST('low' AS BLOB),"
                   " CAST('LOW' AS BLOB)) AS BLOB) WHERE seq = 1");
      expectedBad = 6;
      expectedWords = "altered";
    }
    SUBCASE("a write row's time altered") {
      tamper(data, "UPDATE writes SET received_ms = received_ms + 1 WHERE seq = 3");
      expectedBad = 7;
      expectedWords = "altered";
    }
    SUBCASE("a write row deleted") {
      tamper(data, "DELETE FROM writes WHERE seq = 3");
      expectedBad = 7;
      expectedWords = "deleted";
    }
    SUBCASE("the last write row deleted") {
      tamper(data, "DELETE FROM writes WHERE seq = 4");
      expectedBad = 8;
      expectedWords = "deleted";
    }
    SUBCASE("a write row moved to another record") {
      tamper(data, "UPDATE writes SET record_id = randomblob(16) WHERE seq = 1");
      expectedBad = 6;
      expectedWords = "altered";
    }
    SUBCASE("a write row added") {
      tamper(data, "INSERT INTO writes(record_id, record_type, hlc, device_id, owner_team,"
                   " received_ms, fields) SELECT record_id, record_type, hlc + 1, device_id,"
                   " owner_team, received_ms, fields FROM writes WHERE seq = 4");
      expectedBad = 0;
      expectedWords = "no audit entry";
    }
    SUBCASE("a push entry deleted together with its write row (not the last)") {
      tamper(data, "DELETE FROM writes WHERE seq = 3; DELETE FROM audit_log WHERE seq = 7");
      expectedBad = 7;
      expectedWords = "missing";
    }

    const AuditVerification v = data.store()->verifyAudit();
    CHECK_FALSE(v.intact);
    CHECK(v.firstBadSeq == expectedBad);
    CHECK_MESSAGE(v.problem.find(expectedWords) != std::string::npos, v.problem);
    if (expectedBad > 0) {
      CHECK(v.entries == expectedBad - 1); // the entries before it verified
    }
  }

  TEST_CASE("a schema-1 store (a change log, no audit chain) is upgraded: its changes regroup "
            "as writes, and every record, conflict, cursor and audit link survives") {
    Context ctx;
    DataFolder data(ctx);
    const protocol::Uuid devA = newId();
    const protocol::Uuid devB = newId();
    const protocol::Uuid rec1 = newId();
    const protocol::Uuid rec2 = newId();
    // The change log of a version-1 store: record 1 created by A (a write of two
    // fields), then edited concurrently by A and B (a conflict); record 2 by B.
    struct Row {
      protocol::Uuid record;
      std::string field;
      std::string value;
      std::uint64_t hlc;
      protocol::Uuid device;
      bool derived;
    };
    const std::uint64_t t = hlcNow();
    const std::vector<Row> rows = {{rec1, "risk", "low", t, devA, true},
                                   {rec1, "school", "Hill", t, devA, false},
                                   {rec1, "risk", "high", t + 1, devA, true},
                                   {rec1, "risk", "medium", t + 2, devB, true},
                                   {rec2, "risk", "low", t + 3, devB, true}};
    std::map<protocol::Uuid, sync::RecordState> states;
    {
      sql::Database db(SqliteServerStore::databasePath(data.dir.path).string(),
                       SQLITE_OPEN_READWRITE);
      asSchemaOne(db);
      sql::Statement ins(db, "INSERT INTO changes(change_id, record_id, record_type, field,"
                             " value, hlc, device_id, base_hlc, base_device_id, resolves,"
                             " received_ms, merge_outcome)"
                             " VALUES (?1, ?2, 'child', ?3, ?4, ?5, ?6, ?7, ?8, x'', 1, ?9)");
      for (const Row& r : rows) {
        sync::Uuid dev;
        dev.bytes = r.device;
        sync::Uuid rec;
        rec.bytes = r.record;
        sync::Change c;
        c.changeId = r.derived ? sync::derivedChangeId(dev, rec, r.field, sync::Hlc{r.hlc})
                               : sync::Uuid::random();
        c.recordId = rec;
        c.recordType = "child";
        c.field = r.field;
        c.value = r.value;
        c.hlc = sync::Hlc{r.hlc};
        c.deviceId = dev;
        // The second edit of record 1 by A is based on A's first version.
        if (r.hlc == t + 1) {
          c.baseHlc = sync::Hlc{t};
          c.baseDeviceId = dev;
        }
        const auto outcome =
            sync::merge(states[r.record].fields[r.field], c, sync::MergePolicy::lww);
        std::string value;
        sync::encodeValue(c.value, value);
        ins.reset();
        ins.bindBlob(1, c.changeId.bytes)
            .bindBlob(2, r.record)
            .bind(3, r.field)
            .bindBlob(4,
                      std::span(reinterpret_cast<const unsigned char*>(value.data()), value.size()))
            .bind(5, static_cast<std::int64_t>(r.hlc))
            .bindBlob(6, r.device)
            .bind(7, static_cast<std::int64_t>(c.baseHlc.value))
            .bindBlob(8, c.baseDeviceId.bytes)
            .bind(9, sync::mergeOutcomeName(outcome));
        ins.run();
      }
      sql::Statement state(db, "INSERT INTO field_states VALUES (?1, ?2, ?3, ?4)");
      sql::Statement record(db, "INSERT INTO records(record_id, record_type, owner_team,"
                                " created_seq, updated_seq, conflicts) VALUES (?1, 'child',"
                                " 'north', 1, 5, ?2)");
      for (const auto& [id, rs] : states) {
        int conflicts = 0;
        for (const auto& [field, fs] : rs.fields) {
          const std::string bytes = sync::encodeFieldState(fs);
          state.reset();
          state.bindBlob(1, id)
              .bind(2, field)
              .bindBlob(
                  3, std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()))
              .bind(4, std::int64_t{fs.hasConflict() ? 1 : 0});
          state.run();
          conflicts += fs.hasConflict() ? 1 : 0;
        }
        record.reset();
        record.bindBlob(1, id).bind(2, std::int64_t{conflicts});
        record.run();
      }
    }
    REQUIRE(states[rec1].fields["risk"].hasConflict());

    auto store = data.store();
    CHECK(queryInt(data, "PRAGMA user_version") == 4);
    const AuditVerification v = store->verifyAudit();
    CHECK_MESSAGE(v.intact, v.problem);
    // A baseline over the 5 change rows (schema 1 -> 2), then one over the 4 writes
    // they regroup into (2 -> 3), which lists the same 5 changes.
    CHECK(v.entries == 2);
    CHECK(v.changesChecked == 10);
    const auto entries = store->auditEntries(0, 10);
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].kind == AuditKind::baseline);
    CHECK(entries[1].kind == AuditKind::baseline);
    CHECK(entries[1].changes.size() == 5);
    CHECK(queryInt(data, "SELECT COUNT(*) FROM writes") == 4);
    // A write keeps its last change's number: a device that had pulled up to change 3
    // (record 1's first two writes) gets exactly the rest.
    const protocol::PullReply rest = store->pull(*store->findWorker("worker-a"), {}, 3, 100);
    REQUIRE(rest.changes.size() == 2);
    CHECK(std::get<std::string>(rest.changes[0].value) == "medium");
    CHECK(std::get<std::string>(rest.changes[1].value) == "low");
    CHECK(rest.changes[1].recordId == rec2);
    const protocol::PullReply all = store->pull(*store->findWorker("worker-a"), {}, 0, 100);
    CHECK(all.changes.size() == 5);
    CHECK(all.nextCursor == 5);
    CHECK(store->pull(*store->findWorker("worker-c"), {}, 0, 100).changes.empty());
    // The ids survive, derived or not.
    CHECK(all.changes[1].field == "school");
    CHECK(all.changes[1].changeId !=
          sync::derivedChangeId(sync::Uuid{devA}, sync::Uuid{rec1}, "school", sync::Hlc{t}).bytes);
    // The records' merge state (with record 1's conflict) is what it was.
    const auto view = store->record(sync::Uuid{rec1});
    REQUIRE(view.has_value());
    CHECK(view->state == states[rec1]);
    CHECK(view->conflictFields == std::vector<std::string>{"risk"});
    CHECK(store->conflicts().size() == 1);
    // New pushes continue after the old numbers, and the chain still verifies.
    const protocol::DeviceRecord device{newId(), {}, "worker-a", "north", false};
    (void)pushAs(*store, device, {changeBy(device, newId(), "child", "risk", std::string("x"))});
    CHECK(store->lastSequence() == 6);
    CHECK(store->verifyAudit().intact);
    // The upgrade's entries list ids; the new push stores a run over its write row.
    CHECK(queryInt(data, "SELECT group_concat(changes_format, '') FROM audit_log") == 112);
    // Opened again: nothing migrates twice.
    CHECK(data.store()->verifyAudit().entries == 3);
  }

  TEST_CASE("a push entry stores its stored changes as runs over their write rows, and "
            "listing gives back every id") {
    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    const protocol::DeviceRecord device{newId(), {}, "worker-a", "north", false};
    const protocol::Uuid record = newId();
    std::vector<protocol::Change> write;
    for (const char* field : {"a", "b", "c", "d"}) {
      write.push_back(changeBy(device, record, "assessment", field, std::string(field)));
      write.back().hlc = write.front().hlc; // one write of four fields
    }
    write[2].changeId = protocol::Uuid{}; // left out: the server derives it
    const PushResult first = pushAs(*store, device, write);
    REQUIRE(first.applied == 4);
    // A batch again, with a new write after the repeated ones.
    auto again = write;
    again.push_back(changeBy(device, newId(), "assessment", "e", std::string("e")));
    const PushResult second = pushAs(*store, device, again);
    CHECK(second.duplicates == 4);
    CHECK(second.applied == 1);
    // One run (1 + count + outcome + reason + seq: 6 bytes) instead of 4 x 27 bytes.
    const std::int64_t head = store->lastAuditEntries(1).front().seq;
    CHECK(queryInt(data, "SELECT length(changes) FROM audit_log WHERE seq = " +
                             std::to_string(head - 1)) == 6);
    // Four duplicates with their ids (21 bytes each), then one run.
    CHECK(queryInt(data, "SELECT length(changes) FROM audit_log WHERE seq = " +
                             std::to_string(head)) == 4 * 21 + 6);
    const auto entries = store->lastAuditEntries(2);
    REQUIRE(entries.size() == 2);
    REQUIRE(entries[0].changes.size() == 4);
    // The results carry the ids as sent; the audit the effective ones.
    CHECK(protocol::isElidedId(first.results[2].changeId));
    for (std::size_t i = 0; i < 4; ++i) {
      CHECK(entries[0].changes[i].changeId == protocol::effectiveChangeId(write[i]));
      CHECK(entries[0].changes[i].seq == 1);
      CHECK(entries[0].changes[i].outcome == protocol::ChangeOutcome::applied);
    }
    REQUIRE(entries[1].changes.size() == 5);
    for (std::size_t i = 0; i < 5; ++i) {
      CHECK(entries[1].changes[i].changeId == protocol::effectiveChangeId(again[i]));
    }
    CHECK(entries[1].changes[3].seq == 0);
    CHECK(entries[1].changes[4].seq == 2);
    const AuditVerification v = store->verifyAudit();
    CHECK_MESSAGE(v.intact, v.problem);
    CHECK(v.changesChecked == 5);
    // A write row's id altered: the rows hash says so.
    tamper(data, "UPDATE writes SET fields = CAST(replace(fields, CAST('d' AS BLOB),"
                 " CAST('D' AS BLOB)) AS BLOB) WHERE seq = 1");
    CHECK_FALSE(data.store()->verifyAudit().intact);
    // A run claiming four billion changes is damage, reported as such (not allocated).
    tamper(data, "UPDATE audit_log SET changes = x'01ffffffff0f00000001' WHERE seq = " +
                     std::to_string(head));
    CHECK(codeOf([&] { (void)data.store()->lastAuditEntries(1); }) == Errc::corrupt);
    CHECK_FALSE(data.store()->verifyAudit().intact);
  }

  TEST_CASE("a push longer than a batch is audited with every id spelled out, derived ones "
            "included") {
    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    const protocol::DeviceRecord device{newId(), {}, "worker-a", "north", false};
    // New records whose ids are left out: stored without deriving them.
    std::vector<protocol::Change> changes;
    for (std::size_t i = 0; i <= protocol::limits::kChanges; ++i) {
      changes.push_back(changeBy(device, newId(), "assessment", "a", std::int64_t{1}));
      changes.back().changeId = protocol::Uuid{};
    }
    REQUIRE(pushAs(*store, device, changes).applied == changes.size());
    const auto entry = store->lastAuditEntries(1).front();
    REQUIRE(entry.changes.size() == changes.size());
    CHECK(entry.changes.front().changeId == protocol::effectiveChangeId(changes.front()));
    CHECK(entry.changes.back().changeId == protocol::effectiveChangeId(changes.back()));
    const AuditVerification v = store->verifyAudit();
    CHECK_MESSAGE(v.intact, v.problem);
  }

  TEST_CASE("an upgraded store's legacy change log is still covered by the audit chain") {
    Context ctx;
    DataFolder data(ctx);
    {
      sql::Database db(SqliteServerStore::databasePath(data.dir.path).string(),
                       SQLITE_OPEN_READWRITE);
      asSchemaOne(db);
      db.exec("INSERT INTO records VALUES (x'00112233445566778899aabbccddeeff', 'child',"
              " 'north', 1, 1, 0);"
              "INSERT INTO changes VALUES (1, randomblob(16), x'00112233445566778899aabbccddeeff',"
              " 'child', 'risk', x'00', 1, randomblob(16), 0, zeroblob(16), x'', 1,"
              " 'fast-forward');");
    }
    REQUIRE(data.store()->verifyAudit().intact);
    tamper(data, "UPDATE legacy_changes SET received_ms = 2");
    const AuditVerification v = data.store()->verifyAudit();
    CHECK_FALSE(v.intact);
    CHECK(v.firstBadSeq == 1);
    tamper(data, "UPDATE legacy_changes SET received_ms = 1");
    REQUIRE(data.store()->verifyAudit().intact);
    tamper(data, "DROP TABLE legacy_changes");
    CHECK(data.store()->verifyAudit().problem.find("deleted") != std::string::npos);
  }

  TEST_CASE("the server takes the built-in schema's merge policies: addenda are append-only") {
    const auto policies = builtinFieldPolicies();
    const auto find = [&](std::string_view type, std::string_view field) {
      return std::find_if(policies.begin(), policies.end(), [&](const FieldPolicy& p) {
        return p.recordType == type && p.field == field;
      });
    };
    REQUIRE(find("contact_note", "addenda") != policies.end());
    CHECK(find("contact_note", "addenda")->policy == sync::MergePolicy::appendOnly);
    REQUIRE(find("assessment", "judged_level") != policies.end());
    CHECK(find("assessment", "judged_level")->policy == sync::MergePolicy::immutableAfterSign);
    REQUIRE(find("child", "school") != policies.end());
    CHECK(find("child", "school")->policy == sync::MergePolicy::lww);

    Context ctx;
    DataFolder data(ctx);
    auto store = data.store();
    const protocol::DeviceRecord a{newId(), {}, "worker-a", "north", false};
    const protocol::DeviceRecord b{newId(), {}, "worker-b", "north", false};
    const protocol::Uuid note = newId();
    const auto addendum = [](std::string text) {
      return protocol::Value(std::string(R"({"at":"2026-01-01T10:00:00Z","by":"w","text":")") +
                             text + "\"}");
    };

    SUBCASE("a store merging addenda as lww keeps them as a conflict; seeding re-merges them") {
      (void)pushAs(*store, a, {changeBy(a, note, "contact_note", "addenda", addendum("one"))});
      const PushResult second =
          pushAs(*store, b, {changeBy(b, note, "contact_note", "addenda", addendum("two"))});
      CHECK(second.conflicts == 1);
      CHECK(store->conflicts().size() == 1);
      CHECK(store->setFieldPolicies(builtinFieldPolicies()) > 0);
      const auto view = store->record(sync::Uuid{note});
      REQUIRE(view.has_value());
      const sync::FieldState& state = view->state.fields.at("addenda");
      CHECK(state.entries.size() == 2);
      CHECK_FALSE(state.hasConflict());
      CHECK(view->conflictFields.empty());
      CHECK(store->conflicts().empty());
      // Seeding twice changes nothing more.
      CHECK(store->setFieldPolicies(builtinFieldPolicies()) == 0);
    }
    SUBCASE("a running server seeds them at start and appends concurrent addenda") {
      RunningServer srv(ctx, data.dir.path);
      const auto seeded = store->fieldPolicies();
      CHECK(std::find(seeded.begin(), seeded.end(),
                      FieldPolicy{"contact_note", "addenda", sync::MergePolicy::appendOnly}) !=
            seeded.end());
      CHECK(std::none_of(seeded.begin(), seeded.end(),
                         [](const FieldPolicy& p) { return p.policy == sync::MergePolicy::lww; }));
      Device da(ctx);
      Device db(ctx);
      enrollAs(data, srv, da, "worker-a");
      enrollAs(data, srv, db, "worker-b");
      (void)da.hello();
      (void)db.hello();
      auto c1 = da.change(note, "addenda", addendum("one"));
      c1.recordType = "contact_note";
      auto c2 = db.change(note, "addenda", addendum("two"));
      c2.recordType = "contact_note";
      CHECK(da.push({c1}).results[0].outcome == protocol::ChangeOutcome::applied);
      CHECK(db.push({c2}).results[0].outcome == protocol::ChangeOutcome::applied);
      const auto view = data.store()->record(sync::Uuid{note});
      REQUIRE(view.has_value());
      CHECK(view->state.fields.at("addenda").entries.size() == 2);
      CHECK(view->conflictFields.empty());
    }
    CHECK(store->verifyAudit().intact); // re-merging never touches the change log
  }
}
