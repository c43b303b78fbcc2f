// The real programs: outpostctl commands (and their refusals), and outpost-server
// as a subprocess that a device syncs with and that exits cleanly on SIGTERM.

#include "harness.hpp"
#include "process.hpp"

#include <outpost/template.hpp>

#include <nlohmann/json.hpp>

#include <set>

using namespace outpost;
using namespace outpost::server;
using namespace outpost::server::testing;

namespace {

/// Pushes `n` one-field records as a device of `worker` would, through the store.
void pushRecords(const DataFolder& data, const std::string& worker, int n) {
  auto store = data.store();
  const auto w = store->findWorker(worker);
  REQUIRE(w.has_value());
  const protocol::DeviceRecord device{newId(), {}, worker, w->teams.front(), false};
  std::vector<protocol::Change> changes;
  for (int i = 0; i < n; ++i) {
    protocol::Change c;
    c.changeId = newId();
    c.recordId = newId();
    c.recordType = "assessment";
    c.field = "risk";
    c.value = std::string("low");
    c.hlc = sync::Hlc{hlcNow(static_cast<std::uint64_t>(i))};
    c.deviceId = device.deviceId;
    changes.push_back(c);
  }
  const PushContext context{device, *w, static_cast<std::int64_t>(hlcNow() >> 16),
                            std::chrono::minutes(2), newId()};
  REQUIRE(store->push(context, changes).applied == static_cast<std::size_t>(n));
}

} // namespace

TEST_SUITE("server.cli") {
  TEST_CASE("outpostctl refuses bad input with a message and a non-zero exit") {
    TempDir scratch;
    const std::string data = (scratch.path / "data").string();
    SUBCASE("missing --data") {
      const Run r = ctl(scratch, "devices");
      CHECK(r.status != 0);
      CHECK(r.err.find("--data") != std::string::npos);
    }
    SUBCASE("a folder that was never initialised") {
      const Run r = ctl(scratch, "--data " + data + " devices");
      CHECK(r.status == 1);
      CHECK(r.err.find("init") != std::string::npos);
      CHECK_FALSE(fs::exists(data));
    }
    SUBCASE("init twice, an unknown team, a bad device id, a bad ttl") {
      const Run first = ctl(scratch, "--data " + data + " init --listen 127.0.0.1:7420");
      REQUIRE(first.status == 0);
      CHECK(first.out.find("server public key") != std::string::npos);
      const std::string keyBefore = slurp(fs::path(data) / "keys" / "server-static.key");
      REQUIRE(keyBefore.size() == 32);
      const Run second = ctl(scratch, "--data " + data + " init");
      CHECK(second.status == 1);
      CHECK(second.err.find("already") != std::string::npos);
      CHECK(slurp(fs::path(data) / "keys" / "server-static.key") == keyBefore);

      const Run noTeam = ctl(scratch, "--data " + data + " worker add worker-a --team north");
      CHECK(noTeam.status == 1);
      CHECK(noTeam.err.find("team add") != std::string::npos);
      CHECK(ctl(scratch, "--data " + data + " team add north").status == 0);
      CHECK(ctl(scratch, "--data " + data + " team add north").status == 1);
      CHECK(ctl(scratch, "--data " + data + " worker add worker-a --team north").status == 0);
      CHECK(ctl(scratch, "--data " + data + " enroll nobody").status == 1);
      CHECK(ctl(scratch, "--data " + data + " worker set-teams worker-a --team south").status == 1);
      CHECK(ctl(scratch, "--data " + data + " worker set-teams nobody --team north").status == 1);
      CHECK(ctl(scratch, "--data " + data + " enroll worker-a --ttl forever").status == 1);
      CHECK(ctl(scratch, "--data " + data + " revoke not-a-uuid").status == 1);
      CHECK(
          ctl(scratch, "--data " + data + " revoke 00000000-0000-4000-8000-000000000000").status ==
          1);
      CHECK(ctl(scratch, "--data " + data + " export --format xml").status != 0);
      CHECK(ctl(scratch, "--data " + data + " conflicts show nope").status == 1);
      const Run help = ctl(scratch, "enroll --help");
      CHECK(help.status == 0);
      CHECK(help.out.find("--ttl") != std::string::npos);
    }
  }

  TEST_CASE("end to end with the real programs: init, enroll, sync, conflicts, export, SIGTERM") {
    Context ctx;
    TempDir scratch;
    const fs::path data = scratch.path / "data";
    const std::string d = "--data " + data.string();
    REQUIRE(ctl(scratch, d + " init").status == 0);
    REQUIRE(ctl(scratch, d + " team add north").status == 0);
    REQUIRE(ctl(scratch, d + " worker add worker-a --team north").status == 0);
    REQUIRE(ctl(scratch, d + " worker add worker-b --team north").status == 0);

    ServerProcess server(data);
    const std::string line = server.firstLine();
    const auto at = line.find("listening on 127.0.0.1:");
    REQUIRE(at != std::string::npos);
    const std::string port = line.substr(at + 23, line.find(' ', at + 23) - (at + 23));

    Device a(ctx);
    Device b(ctx);
    for (const auto& [device, worker] : {std::pair<Device*, std::string>{&a, "worker-a"},
                                         std::pair<Device*, std::string>{&b, "worker-b"}}) {
      const Run issued =
          ctl(scratch, d + " --json enroll " + worker + " --ttl 1h --server 127.0.0.1:" + port);
      REQUIRE(issued.status == 0);
      const auto j = nlohmann::json::parse(issued.out);
      const std::string payload = j.at("payload");
      CHECK(payload.rfind("outpost-enroll:v1:127.0.0.1:" + port + ":", 0) == 0);
      device->enroll(payload);
      (void)device->hello();
    }
    const protocol::Uuid record = newId();
    const protocol::Change base = a.change(record, "risk.level", std::string("low"));
    (void)a.push({base});
    (void)a.push(
        {a.change(record, "risk.level", std::string("medium"), base.hlc.value, a.deviceId)});
    (void)b.push({b.change(record, "risk.level", std::string("high"), base.hlc.value, a.deviceId)});
    a.channel.reset();
    b.channel.reset();

    const Run devices = ctl(scratch, d + " --json devices");
    REQUIRE(devices.status == 0);
    CHECK(nlohmann::json::parse(devices.out).size() == 2);
    const Run list = ctl(scratch, d + " --json conflicts list");
    REQUIRE(list.status == 0);
    const auto conflicts = nlohmann::json::parse(list.out);
    REQUIRE(conflicts.size() == 1);
    const std::string recordId = conflicts[0].at("record");
    const Run show = ctl(scratch, d + " conflicts show " + recordId);
    CHECK(show.status == 0);
    CHECK(show.out.find("risk.level") != std::string::npos);

    const Run json =
        ctl(scratch, d + " export --format json --out " + (scratch.path / "export.json").string());
    REQUIRE(json.status == 0);
    const auto exported = nlohmann::json::parse(slurp(scratch.path / "export.json"));
    REQUIRE(exported.at("records").size() == 1);
    CHECK(exported["records"][0]["inConflict"] == true);
    CHECK(exported["records"][0]["conflicts"]["risk.level"].size() == 2);
    const Run csv = ctl(scratch, d + " export --format csv");
    CHECK(csv.status == 0);
    CHECK(csv.out.find("risk.level") != std::string::npos);

    // Revocation takes effect on the running server.
    sync::Uuid bId;
    bId.bytes = b.deviceId;
    CHECK(ctl(scratch, d + " revoke " + bId.toString()).status == 0);
    CHECK(codeOf([&] { (void)b.hello(); }) == Errc::revoked);

    // Everything above is in the audit chain, which verifies while the server runs.
    const Run audit = ctl(scratch, d + " --json audit list --last 100");
    REQUIRE(audit.status == 0);
    std::multiset<std::string> kinds;
    for (const auto& e : nlohmann::json::parse(audit.out)) {
      kinds.insert(e.at("kind").get<std::string>());
    }
    CHECK(kinds.count("init") == 1);
    CHECK(kinds.count("team.add") == 1);
    CHECK(kinds.count("worker.add") == 2);
    CHECK(kinds.count("enroll.issue") == 2);
    CHECK(kinds.count("device.enroll") == 2);
    CHECK(kinds.count("push") == 3);
    CHECK(kinds.count("record.view") == 1);
    CHECK(kinds.count("export") == 2);
    CHECK(kinds.count("device.revoke") == 1);
    const Run verified = ctl(scratch, d + " audit verify");
    CHECK(verified.status == 0);
    CHECK(verified.out.find("intact") != std::string::npos);

    CHECK(server.signalAndWait(SIGTERM) == 0);
  }

  TEST_CASE("every command and group prints --help") {
    TempDir scratch;
    for (const std::string command : {"",
                                      "init",
                                      "team",
                                      "team add",
                                      "team list",
                                      "worker",
                                      "worker add",
                                      "worker set-teams",
                                      "worker list",
                                      "enroll",
                                      "devices",
                                      "revoke",
                                      "conflicts",
                                      "conflicts list",
                                      "conflicts show",
                                      "export",
                                      "backup",
                                      "audit",
                                      "audit verify",
                                      "audit list",
                                      "template",
                                      "template publish",
                                      "template list"}) {
      const Run r = ctl(scratch, command + " --help");
      CHECK_MESSAGE(r.status == 0, command);
      CHECK_MESSAGE(r.out.find("Usage") != std::string::npos, command);
    }
    const Run unknown = ctl(scratch, "--data x frobnicate");
    CHECK(unknown.status != 0);
    CHECK_FALSE(unknown.err.empty());
  }

  TEST_CASE("template publish and list: a valid document once, bad ones refused with the reason") {
    Context ctx;
    DataFolder data(ctx);
    TempDir scratch;
    const std::string d = "--data " + data.dir.path.string();
    auto doc = nlohmann::json::parse(shippedTemplateAs(2));
    const fs::path good = scratch.path / "cse-v2.json";
    std::ofstream(good) << doc.dump(2);
    const Run first = ctl(scratch, d + " template publish " + good.string());
    CHECK(first.status == 0);
    CHECK(first.out.find("published cse-screening version 2") != std::string::npos);
    const Run again = ctl(scratch, d + " template publish " + good.string());
    CHECK(again.status == 0);
    CHECK(again.out.find("already published") != std::string::npos);
    doc["title"] = "changed";
    const fs::path changed = scratch.path / "changed.json";
    std::ofstream(changed) << doc.dump(2); // content_hash no longer matches
    const Run bad = ctl(scratch, d + " template publish " + changed.string());
    CHECK(bad.status != 0);
    CHECK(bad.err.find("content_hash") != std::string::npos);
    const Run missing = ctl(scratch, d + " template publish " + (scratch.path / "nope").string());
    CHECK(missing.status != 0);
    const Run list = ctl(scratch, d + " --json template list");
    REQUIRE(list.status == 0);
    const auto listed = nlohmann::json::parse(list.out);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].at("version") == 2);
  }

  TEST_CASE("audit verify: intact, then a change row altered is found, naming the entry") {
    Context ctx;
    DataFolder data(ctx); // 5 administrative entries
    pushRecords(data, "worker-a", 3);
    pushRecords(data, "worker-c", 2); // entry 7: change seqs 4 and 5
    TempDir scratch;
    const std::string d = "--data " + data.dir.path.string();

    const Run ok = ctl(scratch, d + " audit verify");
    CHECK(ok.status == 0);
    CHECK(ok.out.find("audit chain intact: 7 entries (2 pushed batches), 5 changes matched to "
                      "their stored rows") != std::string::npos);
    const Run okJson = ctl(scratch, d + " --json audit verify");
    REQUIRE(okJson.status == 0);
    CHECK(nlohmann::json::parse(okJson.out).at("intact") == true);

    const Run list = ctl(scratch, d + " --json audit list --last 2");
    REQUIRE(list.status == 0);
    const auto entries = nlohmann::json::parse(list.out);
    REQUIRE(entries.size() == 2);
    CHECK(entries[1].at("kind") == "push");
    CHECK(entries[1].at("actor") == "worker-c");
    CHECK(entries[1].at("detail").at("applied") == 2);

    {
      sql::Database db(SqliteServerStore::databasePath(data.dir.path).string(),
                       SQLITE_OPEN_READWRITE);
      db.exec("UPDATE writes SET fields = x'00' WHERE seq = (SELECT MAX(seq) FROM writes)");
    }
    const Run bad = ctl(scratch, d + " audit verify");
    CHECK(bad.status == 2);
    CHECK(bad.err.find("BROKEN at entry 7") != std::string::npos);
    CHECK(bad.err.find("altered") != std::string::npos);
    const Run badJson = ctl(scratch, d + " --json audit verify");
    CHECK(badJson.status == 2);
    CHECK(nlohmann::json::parse(badJson.out).at("firstBadEntry") == 7);
  }

  TEST_CASE("export: a progress bar on stderr with --progress only (stderr is a file here)") {
    Context ctx;
    DataFolder data(ctx);
    pushRecords(data, "worker-a", 5);
    TempDir scratch;
    const std::string d = "--data " + data.dir.path.string();
    const std::string out = (scratch.path / "records.csv").string();
    const Run quiet = ctl(scratch, d + " export --format csv --out " + out);
    CHECK(quiet.status == 0);
    CHECK(quiet.err.empty());
    const Run shown = ctl(scratch, d + " export --format json --out " + out + " --progress");
    CHECK(shown.status == 0);
    CHECK(shown.err.find("100% (5/5)") != std::string::npos);
    CHECK(nlohmann::json::parse(slurp(out)).at("records").size() == 5);
    // Exports are audited, and the chain still verifies.
    const Run list = ctl(scratch, d + " --json audit list --last 1");
    REQUIRE(list.status == 0);
    CHECK(nlohmann::json::parse(list.out)[0].at("kind") == "export");
    CHECK(ctl(scratch, d + " audit verify").status == 0);
  }

  TEST_CASE("backup copies a live folder consistently, the copy verifies and serves") {
    Context ctx;
    DataFolder data(ctx);
    pushRecords(data, "worker-a", 7);
    TempDir scratch;
    const std::string d = "--data " + data.dir.path.string();
    // A connection keeps a write transaction open meanwhile: the copy is the last
    // committed state, not the half-done one.
    sql::Database writer(SqliteServerStore::databasePath(data.dir.path).string(),
                         SQLITE_OPEN_READWRITE);
    writer.exec("PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE;"
                " UPDATE writes SET fields = x'00' WHERE seq = 1");
    const fs::path copy = scratch.path / "copy";
    const Run backup = ctl(scratch, d + " --json backup " + copy.string());
    writer.exec("ROLLBACK");
    REQUIRE(backup.status == 0);
    const auto j = nlohmann::json::parse(backup.out);
    CHECK(j.at("records") == 7);
    CHECK(j.at("auditIntact") == true);
    CHECK((fs::status(copy / "keys").permissions() & fs::perms::all) == fs::perms::owner_all);
    CHECK(slurp(copy / "keys" / "server-static.key") ==
          slurp(data.dir.path / "keys" / "server-static.key"));
    CHECK(ctl(scratch, "--data " + copy.string() + " audit verify").status == 0);
    const Run again = ctl(scratch, d + " backup " + copy.string());
    CHECK(again.status == 1);
    CHECK(again.err.find("already exists") != std::string::npos);
    // The copy is a server's data folder.
    ServerProcess server(copy);
    CHECK(server.port() != 0);
    CHECK(server.signalAndWait(SIGTERM) == 0);
  }
}
