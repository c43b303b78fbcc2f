// The sync client end to end: real vaults, real record stores, a real
// outpost-server on 127.0.0.1, and a proxy that cuts connections.

#include "sync_fixture.hpp"

#include <outpost.h>
#include <outpost/template.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

using namespace outpost;
using namespace outpost::synctest;

namespace {

/// The field merge states a device's vault keeps for a record (its `field_sync` rows).
std::map<std::string, sync::FieldState> fieldStates(FieldDevice& d, const sync::Uuid& record) {
  std::map<std::string, sync::FieldState> out;
  d.vault->read([&](sql::Database& db) {
    sql::Statement st(db, "SELECT f.field, f.state FROM field_sync f JOIN records r ON"
                          " r.rid = f.rid WHERE r.id = ?1");
    st.bindBlob(1, std::span<const std::uint8_t>(record.bytes));
    while (st.step()) {
      const auto raw = st.columnBlob(1);
      out.emplace(std::string(st.columnText(0)),
                  sync::decodeFieldState({reinterpret_cast<const char*>(raw.data()), raw.size()}));
    }
  });
  return out;
}

/// Registers "memo" on a device: text, number, flag, list, an append-only list
/// ("notes") and a reference to another memo; its title is searchable.
void addMemoType(FieldDevice& d) {
  model::EntityType memo;
  memo.name = "memo";
  memo.fields = {
      model::FieldSpec{"title", model::FieldType::text, true, {}, {}, {}, {}},
      model::FieldSpec{"count", model::FieldType::integer, false, {}, {}, {}, {}},
      model::FieldSpec{"urgent", model::FieldType::boolean, false, {}, {}, {}, {}},
      model::FieldSpec{"tags", model::FieldType::list, false, {}, {}, {}, {}},
      model::FieldSpec{
          "notes", model::FieldType::list, false, sync::MergePolicy::appendOnly, {}, {}, {}},
      model::FieldSpec{"about", model::FieldType::reference, false, {}, {}, "memo", {}},
  };
  memo.searchFields = {"title"};
  d.store->schema().add(memo);
}

std::string textOf(const sync::Value& v) {
  const auto* s = std::get_if<std::string>(&v);
  return s ? *s : std::string();
}

/// The server's current value of a field (Null when none), and its competing values.
struct ServerField {
  sync::Value current;
  std::multiset<std::string> competing;
};

ServerField serverField(const DataFolder& data, const sync::Uuid& record,
                        const std::string& field) {
  ServerField out;
  const auto view = data.store()->record(record);
  REQUIRE(view.has_value());
  const auto it = view->state.fields.find(field);
  if (it != view->state.fields.end()) {
    if (it->second.current) {
      out.current = it->second.current->value;
    }
    for (const auto& v : it->second.conflicts) {
      out.competing.insert(sync::toJson(v.value));
    }
  }
  return out;
}

std::string joined(const std::multiset<std::string>& values) {
  std::string out;
  for (const auto& v : values) {
    out += v + ";";
  }
  return out;
}

std::multiset<std::string> deviceCompeting(FieldDevice& d, const sync::Uuid& record,
                                           const std::string& field) {
  std::multiset<std::string> out;
  for (const auto& c : d.store->conflicts(record)) {
    if (c.field == field) {
      for (const auto& v : c.competing) {
        out.insert(sync::toJson(v.value));
      }
    }
  }
  return out;
}

} // namespace

namespace {

/// The convergence property for one seed: three devices, 60 random steps (offline
/// edits, new records, conflict resolutions, syncs through a proxy that cuts
/// connections), then every replica and the server must agree.
void checkConvergence(unsigned seed) {
  CAPTURE(seed);
  Context ctx;
  DataFolder data(ctx);
  data.store()->addWorker("worker-d", {"north"});
  RunningServer server(ctx, data.dir.path);
  CuttingProxy proxy(server.port());
  std::vector<std::unique_ptr<FieldDevice>> devices;
  for (const char* w : {"worker-a", "worker-b", "worker-d"}) {
    SyncOptions o;
    o.pushBatch = 5;
    o.pullBatch = 7;
    devices.push_back(std::make_unique<FieldDevice>(data, w, proxy.port(), o));
  }
  std::mt19937 rng(seed);
  const auto pick = [&](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  };
  const std::vector<std::string> fieldsToEdit = {"school", "gender", "placing_authority",
                                                 "lead_professional"};
  for (int step = 0; step < 60; ++step) {
    FieldDevice& d = *devices[pick(devices.size())];
    model::RecordQuery q;
    q.type = "child";
    q.limit = 1000;
    const auto known = d.store->queryIds(q).ids;
    const std::size_t op = pick(10);
    if (known.empty() || op == 0) {
      (void)d.addChild("north", "Child s" + std::to_string(step));
    } else if (op <= 5) {
      const auto& id = known[pick(known.size())];
      d.store->update(
          id, {{fieldsToEdit[pick(fieldsToEdit.size())], std::string("v") + std::to_string(step)}});
    } else if (op == 6) {
      for (const auto& id : known) {
        const auto c = d.store->conflicts(id);
        if (!c.empty()) {
          const auto& chosen = pick(2) == 0 ? c[0].current : c[0].competing.front();
          d.store->resolveConflict(id, c[0].field, chosen.value);
          break;
        }
      }
    } else {
      proxy.cutAfter(pick(3) == 0 ? static_cast<int>(pick(12)) : -1);
      try {
        (void)d.sync();
      } catch (const Error& e) {
        CHECK(
            (e.code() == Errc::network || e.code() == Errc::timeout || e.code() == Errc::protocol));
      }
    }
  }
  proxy.cutAfter(-1);
  for (int round = 0; round < 2; ++round) {
    for (auto& d : devices) {
      (void)d->sync();
    }
  }
  // Every record the server holds is on every device, with the same current
  // values and the same competing values.
  std::vector<server::RecordView> views;
  data.store()->forEachRecord([&](const server::RecordView& v) { views.push_back(v); });
  CHECK(!views.empty());
  for (const auto& view : views) {
    for (auto& d : devices) {
      CHECK(d->store->journal().pendingCount() == 0);
      const auto r = d->store->get(view.recordId);
      REQUIRE(r.has_value());
      for (const auto& [field, state] : view.state.fields) {
        CAPTURE(field);
        const sync::Value serverValue =
            state.current ? state.current->value : sync::Value{sync::Null{}};
        CHECK(sync::toJson(r->get(field)) == sync::toJson(serverValue));
        std::multiset<std::string> competing;
        for (const auto& v : state.conflicts) {
          competing.insert(sync::toJson(v.value));
        }
        CHECK(joined(deviceCompeting(*d, view.recordId, field)) == joined(competing));
      }
    }
  }
}

} // namespace

TEST_SUITE("sync.client") {
  TEST_CASE("two devices: a record reaches the other device, concurrent edits keep both values "
            "as a conflict everywhere, a resolution clears it everywhere") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    FieldDevice b(data, "worker-b", server.port());

    const auto child = a.addChild("north", "Child One");
    CHECK(a.store->journal().status(child)->state == model::SyncState::pending);
    const SyncReport pushed = a.sync();
    CHECK(pushed.changesPushed > 0);
    CHECK(pushed.writesAcknowledged == 1);
    CHECK(a.store->journal().pendingCount() == 0);
    CHECK(a.store->journal().status(child)->state == model::SyncState::synced);

    const SyncReport pulled = b.sync();
    CHECK(pulled.recordsUpdated == 1);
    const auto onB = b.store->get(child);
    REQUIRE(onB.has_value());
    CHECK(onB->text("name") == "Child One");
    CHECK(onB->type == "child");
    CHECK(b.store->journal().status(child)->state == model::SyncState::synced);
    // The pulled record is indexed like a local one.
    model::RecordQuery q;
    q.type = "child";
    CHECK(b.store->queryIds(q).ids.size() == 1);
    // B audits the new record's arrival like A audited its create: how many fields.
    const auto lastEventOf = [&](FieldDevice& d, model::AuditAction action) {
      std::optional<model::AuditEvent> last;
      for (auto& e : d.store->audit().events(0, 1000)) {
        if (e.action == action && e.record == child) {
          last = std::move(e);
        }
      }
      REQUIRE(last.has_value());
      return *last;
    };
    const std::string created = lastEventOf(a, model::AuditAction::create).detail;
    CHECK(nlohmann::json::parse(created).at("fields").get<int>() > 1);
    CHECK(lastEventOf(b, model::AuditAction::receive).detail == created);

    // Both edit the school offline; B's edit is later.
    a.store->update(child, {{"school", std::string("Northfield Academy")}});
    std::this_thread::sleep_for(5ms);
    b.store->update(child, {{"school", std::string("Hillside College")}});
    (void)a.sync();
    const SyncReport bSync = b.sync();
    CHECK(bSync.newConflicts == 1);
    // A record B holds already: the receive names the fields merged.
    CHECK(lastEventOf(b, model::AuditAction::receive).detail == R"({"fields":["school"]})");
    const SyncReport aSync = a.sync();
    CHECK(aSync.newConflicts == 1);

    for (FieldDevice* d : {&a, &b}) {
      CHECK(d->store->get(child)->text("school") == "Hillside College");
      const auto conflicts = d->store->conflicts(child);
      REQUIRE(conflicts.size() == 1);
      CHECK(conflicts[0].field == "school");
      REQUIRE(conflicts[0].competing.size() == 1);
      CHECK(textOf(conflicts[0].competing[0].value) == "Northfield Academy");
      CHECK(d->store->journal().status(child)->state == model::SyncState::conflict);
      model::RecordQuery inConflict;
      inConflict.syncState = model::SyncState::conflict;
      CHECK(d->store->queryIds(inConflict).ids.size() == 1);
    }
    CHECK(textOf(serverField(data, child, "school").current) == "Hillside College");
    CHECK(data.store()->conflicts().size() == 1);

    // A field without a conflict cannot be "resolved".
    CHECK(codeOf([&] { a.store->resolveConflict(child, "name", std::string("x")); }) ==
          Errc::invalid_argument);

    // A supervisor on A keeps the first value.
    a.store->resolveConflict(child, "school", std::string("Northfield Academy"));
    CHECK(a.store->conflicts(child).empty());
    (void)a.sync();
    (void)b.sync();
    for (FieldDevice* d : {&a, &b}) {
      CHECK(d->store->get(child)->text("school") == "Northfield Academy");
      CHECK(d->store->conflicts(child).empty());
      CHECK(d->store->journal().status(child)->state == model::SyncState::synced);
    }
    CHECK(data.store()->conflicts().empty());
    CHECK(textOf(serverField(data, child, "school").current) == "Northfield Academy");

    // An edit on top of a synced value fast-forwards: no conflict.
    b.store->update(child, {{"school", std::string("Northfield Academy (sixth form)")}});
    (void)b.sync();
    const SyncReport last = a.sync();
    CHECK(last.newConflicts == 0);
    CHECK(a.store->get(child)->text("school") == "Northfield Academy (sixth form)");
    CHECK(a.store->conflicts(child).empty());
  }

  TEST_CASE("a pulled record keeps no field clocks for the values its create wrote, and an edit "
            "of one is based on the create") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    FieldDevice b(data, "worker-b", server.port());
    const auto child = a.addChild("north", "Child One");
    (void)a.sync();
    a.store->update(child, {{"school", std::string("Northfield Academy")}});
    (void)a.sync();
    (void)b.sync();

    const auto onA = a.store->get(child);
    const auto onB = b.store->get(child);
    REQUIRE(onB.has_value());
    CHECK(onB->fields == onA->fields);
    CHECK(onB->createdHlc == onA->createdHlc);
    CHECK(onB->device == a.store->deviceId());
    // Only the field written after the create has a clock of its own, as on A.
    REQUIRE(onB->changedClocks.size() == 1);
    CHECK(onB->changedClocks.begin()->first == "school");
    for (const auto& [field, value] : onB->fields) {
      CHECK(onB->clockOf(field).hlc == onA->clockOf(field).hlc);
      CHECK(onB->clockOf(field).device == onA->clockOf(field).device);
    }

    // B's edit of a created value replaces the create's version: no conflict.
    b.store->update(child, {{"name", std::string("Child Two")}});
    const auto entries = b.store->journal().pending(100);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].change.baseHlc == onA->createdHlc);
    CHECK(entries[0].change.baseDeviceId == a.store->deviceId());
    (void)b.sync();
    const SyncReport pulled = a.sync();
    CHECK(pulled.newConflicts == 0);
    CHECK(a.store->get(child)->text("name") == "Child Two");
    CHECK(data.store()->conflicts().empty());
  }

  TEST_CASE("a record pulled new stores the derived ids of the states it keeps, though the wire "
            "left them out, and the same pull again adds nothing") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    FieldDevice b(data, "worker-b", server.port());
    // A type whose append-only field keeps a merge state row from its first write.
    addMemoType(a);
    addMemoType(b);
    const auto memo = a.store->create("memo", {{"owner_team", std::string("north")},
                                               {"title", std::string("Visit")},
                                               {"notes", sync::StringList{"seen at home"}}});
    (void)a.sync();
    const auto notesState = [&]() -> std::optional<sync::FieldState> {
      const auto states = fieldStates(b, memo);
      const auto it = states.find("notes");
      return it == states.end() ? std::nullopt : std::optional(it->second);
    };
    (void)b.sync();
    const auto onA = a.store->get(memo);
    REQUIRE(onA.has_value());
    const auto state = notesState();
    REQUIRE(state.has_value());
    REQUIRE(state->entries.size() == 1);
    CHECK(state->entries[0].changeId ==
          sync::derivedChangeId(a.store->deviceId(), memo, "notes", onA->createdHlc));
    // The title's state is the record's own (no row), as for any value the create wrote.
    CHECK(b.store->get(memo)->text("title") == "Visit");

    // The same writes delivered again (the pull cursor back at the start): still one entry.
    b.vault->write([](sql::Database& db) {
      db.exec("UPDATE store_meta SET value = 0 WHERE key = 'sync.cursor'");
    });
    (void)b.sync();
    const auto again = notesState();
    REQUIRE(again.has_value());
    CHECK(*again == *state);
    CHECK(b.store->conflicts(memo).empty());
  }

  TEST_CASE("records pulled new in one write are stored as their creator holds them: values, "
            "clocks, merge states, links, text index and audit") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    FieldDevice b(data, "worker-b", server.port());
    addMemoType(a);
    addMemoType(b);
    const auto first = a.store->create(
        "memo", {{"owner_team", std::string("north")}, {"title", std::string("Visit at home")}});
    const auto second =
        a.store->create("memo", {{"owner_team", std::string("north")},
                                 {"title", std::string("Missing overnight")},
                                 {"count", std::int64_t{3}},
                                 {"urgent", true},
                                 {"tags", sync::StringList{"b", "a", "b"}},
                                 {"notes", sync::StringList{"seen", "seen", "called"}},
                                 {"about", first.toString()}});
    (void)a.sync();
    const SyncReport pulled = b.sync();
    CHECK(pulled.recordsUpdated == 2);
    for (const sync::Uuid& id : {first, second}) {
      CAPTURE(id.toString());
      const auto onA = a.store->get(id);
      const auto onB = b.store->get(id);
      REQUIRE(onA.has_value());
      REQUIRE(onB.has_value());
      CHECK(onB->type == onA->type);
      CHECK(onB->fields == onA->fields);
      CHECK(onB->createdHlc == onA->createdHlc);
      CHECK(onB->device == onA->device);
      CHECK(onB->changedClocks.size() == onA->changedClocks.size());
      CHECK(fieldStates(b, id) == fieldStates(a, id));
    }
    CHECK(fieldStates(b, second).size() == 1); // the append-only notes: one entry
    model::RecordQuery links;
    links.linkedTo = first;
    REQUIRE(b.store->queryIds(links).ids.size() == 1);
    CHECK(b.store->queryIds(links).ids[0] == second);
    model::RecordQuery text;
    text.text = "overnight";
    REQUIRE(b.store->queryIds(text).ids.size() == 1);
    CHECK(b.store->queryIds(text).ids[0] == second);
    CHECK(b.store->audit().verify().intact);

    // Both append to the notes at once, one an item already there: after syncing, both
    // hold every item, each as many times as an author wrote it.
    a.store->update(second,
                    {{"notes", sync::StringList{"seen", "seen", "called", "left message"}}});
    b.store->update(second, {{"notes", sync::StringList{"seen", "seen", "called", "called"}}});
    (void)a.sync();
    (void)b.sync();
    (void)a.sync();
    const sync::Value onA = a.store->get(second)->get("notes");
    CHECK(b.store->get(second)->get("notes") == onA);
    REQUIRE(std::holds_alternative<sync::StringList>(onA));
    sync::StringList items = std::get<sync::StringList>(onA);
    // The creation's three first, then the two appends in HLC order.
    REQUIRE(items.size() == 5);
    CHECK(sync::StringList(items.begin(), items.begin() + 3) ==
          sync::StringList{"seen", "seen", "called"});
    std::sort(items.begin() + 3, items.end());
    CHECK(sync::StringList(items.begin() + 3, items.end()) ==
          sync::StringList{"called", "left message"});
  }

  TEST_CASE("a record pulled new in one write that names a base keeps what it replaced") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice b(data, "worker-b", server.port());
    // The one write of the record B sees replaced a version B never sees (its author's
    // first write, which did not reach the server).
    using server::testing::hlcNow;
    using server::testing::newId;
    const protocol::DeviceRecord other{newId(), {}, "worker-a", "north", false};
    const protocol::Uuid record = newId();
    const std::uint64_t hlc = hlcNow();
    std::vector<protocol::Change> write;
    for (const char* field : {"name", "owner_team"}) {
      protocol::Change c;
      c.recordId = sync::Uuid{record};
      c.recordType = std::string(safeguarding::kChildType);
      c.field = field;
      c.value = std::string(field == std::string("name") ? "A. Child" : "north");
      c.hlc = sync::Hlc{hlc};
      c.deviceId = sync::Uuid{other.deviceId};
      write.push_back(std::move(c));
    }
    write[0].baseHlc = sync::Hlc{hlc - (5u << 16)};
    write[0].baseDeviceId = sync::Uuid{other.deviceId};
    {
      auto store = data.store();
      const server::PushContext context{other, *store->findWorker("worker-a"),
                                        static_cast<std::int64_t>(hlc >> 16)};
      REQUIRE(store->push(context, write).applied == 2);
    }
    (void)b.sync();
    REQUIRE(b.store->get(sync::Uuid{record}).has_value());
    CHECK(b.store->get(sync::Uuid{record})->text("name") == "A. Child");
    const auto states = fieldStates(b, sync::Uuid{record});
    REQUIRE(states.contains("name"));
    CHECK(states.at("name").superseded ==
          std::vector<sync::VersionId>{{sync::Hlc{hlc - (5u << 16)}, sync::Uuid{other.deviceId}}});
  }

  TEST_CASE("edits written before the sync client existed sync without conflicts between the "
            "device's own edits") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    // A second store on a fresh enrolled vault, written before any SyncClient.
    test::VaultFixture vf;
    platform::SystemClock clock;
    auto vault = vf.create();
    (void)enrollDevice(vf.context, *vault, enrollmentPayload(data, "worker-b", server.port()),
                       "test");
    model::RecordStore store(vf.context, *vault, clock, model::RecordStoreOptions{"worker-b"});
    const auto child = store.create("child", {{"owner_team", std::string("north")},
                                              {"name", std::string("Early")},
                                              {"local_authority", std::string("L")},
                                              {"police_force_area", std::string("P")},
                                              {"estimated_age", std::int64_t{15}}});
    store.update(child, {{"school", std::string("First")}});
    store.update(child, {{"school", std::string("Second")}, {"name", std::string("Early B")}});
    SyncClient client(vf.context, *vault, store, clock);
    (void)client.sync();
    CHECK(store.journal().pendingCount() == 0);
    CHECK(data.store()->conflicts().empty());
    (void)a.sync();
    CHECK(a.store->get(child)->text("school") == "Second");
    CHECK(a.store->get(child)->text("name") == "Early B");
    CHECK(a.store->conflicts(child).empty());
  }

  TEST_CASE("a change the server refuses marks its record rejected with the reason, and the "
            "worker's value stays on the device") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    FieldDevice b(data, "worker-b", server.port());
    const auto child = a.addChild("north", "Taken");
    (void)a.sync();
    // B, before it has pulled A's record, writes another type under the same id:
    // the server refuses the changes (a record's type never changes).
    model::EntityType visit;
    visit.name = "test.visit";
    visit.fields = {model::FieldSpec{"note", model::FieldType::text, false, {}, {}, {}, {}}};
    b.store->schema().add(visit);
    model::RecordWrite w;
    w.type = "test.visit";
    w.newId = child;
    w.fields = {{"owner_team", std::string("north")}, {"note", std::string("typed by B")}};
    (void)b.store->writeBatch(std::span(&w, 1));
    const SyncReport r = b.sync();
    CHECK(r.changesRejected > 0);
    CHECK(r.changesPushed == 0);
    const auto status = b.store->journal().status(child);
    REQUIRE(status.has_value());
    CHECK(status->state == model::SyncState::rejected);
    CHECK(status->reason == "validation");
    CHECK(b.store->journal().pendingCount() == 0);
    CHECK(b.store->get(child)->text("note") == "typed by B");
    CHECK(textOf(serverField(data, child, "name").current) == "Taken");
  }

  TEST_CASE("a server named by a host name is reached through the resolver, one named by "
            "an address without it") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice byName(data, "worker-a", server.port(), {}, "localhost");
    FieldDevice byAddress(data, "worker-b", server.port());
    const auto child = byName.addChild("north", "Named");
    CHECK(byName.sync().writesAcknowledged == 1);
    (void)byAddress.sync();
    CHECK(byAddress.store->get(child).has_value());
  }

  TEST_CASE("a rejected record is no longer rejected once the server accepts its next push, and "
            "the acknowledgement clears it in the same vault transaction") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    FieldDevice c(data, "worker-c", server.port()); // south
    const auto child = a.addChild("north", "Taken");
    (void)a.sync();
    // C writes under the id of a north record: refused, out of C's scope.
    model::RecordWrite w;
    w.type = "child";
    w.newId = child;
    w.fields = {{"owner_team", std::string("north")},
                {"name", std::string("Typed by C")},
                {"local_authority", std::string("Northshire")},
                {"police_force_area", std::string("Northshire Police")},
                {"date_of_birth", std::string("2010-04-01")}};
    (void)c.store->writeBatch(std::span(&w, 1));
    const SyncReport refused = c.sync();
    CHECK(refused.changesRejected > 0);
    auto status = c.store->journal().status(child);
    REQUIRE(status.has_value());
    CHECK(status->state == model::SyncState::rejected);
    CHECK(status->reason == "out_of_scope");

    // C's worker joins north: the next push of the record is taken.
    data.store()->setWorkerTeams("worker-c", {"south", "north"});
    c.store->update(child, {{"name", std::string("Placed")}});
    const SyncReport taken = c.sync();
    CHECK(taken.changesRejected == 0);
    CHECK(taken.changesPushed == 1);
    status = c.store->journal().status(child);
    REQUIRE(status.has_value());
    CHECK(status->state != model::SyncState::rejected);
    CHECK(status->state != model::SyncState::pending);
    CHECK(status->reason.empty());
  }

  TEST_CASE("scope: a worker never receives another team's records, a worker moved to another "
            "team has the old team's records purged at the next sync, with a receipt") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    FieldDevice b(data, "worker-b", server.port());
    FieldDevice c(data, "worker-c", server.port());
    const auto child = a.addChild("north", "Child Two");
    (void)a.sync();
    (void)b.sync();
    (void)c.sync();
    CHECK(b.store->get(child).has_value());
    CHECK_FALSE(c.store->get(child).has_value());

    // An unsent edit on B when B's worker moves to the south team.
    b.store->update(child, {{"school", std::string("Unsent")}});
    data.store()->setWorkerTeams("worker-b", {"south"});
    const SyncReport r = b.sync();
    REQUIRE(r.purged.size() == 1);
    REQUIRE(r.purged[0].records.size() == 1);
    CHECK(r.purged[0].records[0] == child);
    CHECK(r.purged[0].discardedChanges == 1);
    CHECK_FALSE(b.store->get(child).has_value());
    CHECK(b.store->journal().pendingCount() == 0);
    // The removal is in the device's audit trail.
    bool audited = false;
    for (const auto& e : b.store->audit().events(0, 1000)) {
      audited = audited || (e.action == model::AuditAction::purge && e.record == child);
    }
    CHECK(audited);
    // The server never took the out-of-scope edit.
    CHECK(textOf(serverField(data, child, "school").current).empty());
  }

  TEST_CASE("scope grows: a worker added to a team gets that team's earlier records, a worker "
            "who leaves a team and comes back gets its records again") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port()); // north
    FieldDevice b(data, "worker-b", server.port()); // north
    FieldDevice c(data, "worker-c", server.port()); // south
    const auto south = c.addChild("south", "South child");
    (void)c.sync();
    // Worker-b's later north records: pulling them moves worker-a's cursor past worker-c's.
    const auto north = b.addChild("north", "North child");
    (void)b.sync();
    (void)a.sync();
    REQUIRE(a.store->get(north).has_value());
    CHECK_FALSE(a.store->get(south).has_value());
    REQUIRE(a.client->status().cursor == 2); // past worker-c's write (1)

    data.store()->setWorkerTeams("worker-a", {"north", "south"});
    const SyncReport joined = a.sync();
    CHECK(joined.purged.empty());
    REQUIRE(a.store->get(south).has_value());
    CHECK(a.store->get(south)->text("name") == "South child");
    CHECK(a.store->conflicts(north).empty());
    // Nothing more to fetch next time: the teams are remembered.
    CHECK(a.sync().changesPulled == 0);

    // Out of south (purged), then back in: south's record returns.
    data.store()->setWorkerTeams("worker-a", {"north"});
    REQUIRE(a.sync().purged.size() == 1);
    CHECK_FALSE(a.store->get(south).has_value());
    data.store()->setWorkerTeams("worker-a", {"north", "south"});
    (void)a.sync();
    REQUIRE(a.store->get(south).has_value());
    CHECK(a.store->get(north).has_value());
    CHECK(a.store->journal().pendingCount() == 0);
  }

  TEST_CASE("a template published at the hub reaches every device once, at its next sync") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    // Version 2 of the shipped template: the same questions, published anew.
    const std::string v2 = server::testing::shippedTemplateAs(2);
    CHECK(a.sync().templatesInstalled == 0); // nothing published yet
    CHECK(data.store()->publishTemplate(v2));
    const SyncReport first = a.sync();
    CHECK(first.templatesInstalled == 1);
    const auto installed = installedTemplates(*a.vault);
    REQUIRE(installed.size() == 1);
    CHECK(model::loadTemplate(installed[0]).version() == 2);
    // The device says at Hello what it has: nothing is sent again.
    CHECK(a.sync().templatesInstalled == 0);
    CHECK(installedTemplates(*a.vault).size() == 1);
  }

  TEST_CASE("a revoked device is refused and wiped at its next sync") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    (void)a.addChild("north", "Child Three");
    (void)a.sync();
    const auto identity = loadDeviceIdentity(*a.vault);
    REQUIRE(identity.has_value());
    CHECK(data.store()->deviceRegistry().revoke(identity->deviceId));
    CHECK(codeOf([&] { (void)a.sync(); }) == Errc::revoked);
    CHECK(a.client->status().wiped);
    CHECK_FALSE(std::filesystem::exists(a.vf.dir / "vault.db"));
    CHECK(codeOf([&] { (void)a.sync(); }) == Errc::revoked);
  }

  TEST_CASE("a connection cut at every message boundary, both ways: after the next sync "
            "nothing is lost and nothing is duplicated") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    CuttingProxy proxy(server.port());
    SyncOptions small;
    small.pushBatch = 40; // several batches
    small.pullBatch = 25;
    FieldDevice a(data, "worker-a", proxy.port(), small);
    FieldDevice b(data, "worker-b", proxy.port(), small);
    const std::vector<sync::Uuid> ids = a.addChildren(24);
    // The server numbers writes (one record's changes at one HLC): one each.
    const std::int64_t writesMade = a.store->journal().pendingCount();

    for (FieldDevice* d : {&a, &b}) {
      bool completed = false;
      for (int cut = 0; cut < 60 && !completed; ++cut) {
        proxy.cutAfter(cut);
        try {
          (void)d->sync();
          completed = true;
        } catch (const Error& e) {
          CHECK((e.code() == Errc::network || e.code() == Errc::timeout ||
                 e.code() == Errc::protocol));
        }
      }
      CHECK(completed);
      proxy.cutAfter(-1);
      (void)d->sync();
    }
    CHECK(proxy.connectionsCut() > 8);
    // The server holds each write exactly once; both devices hold every record.
    CHECK(data.store()->recordCount() == 24);
    CHECK(data.store()->lastSequence() == static_cast<std::uint64_t>(writesMade));
    CHECK(a.store->journal().pendingCount() == 0);
    for (const auto& id : ids) {
      const auto ra = a.store->get(id);
      const auto rb = b.store->get(id);
      REQUIRE(rb.has_value());
      CHECK(ra->fields == rb->fields);
      CHECK(a.store->journal().status(id)->state == model::SyncState::synced);
      CHECK(b.store->journal().status(id)->state == model::SyncState::synced);
    }
  }

  TEST_CASE("a pull of many batches (each merged while the next is received) cancelled "
            "after a merge, then the app closed at once: the next sync pulls the rest, "
            "nothing lost, nothing duplicated, no conflicts") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    const std::vector<sync::Uuid> ids = a.addChildren(30);
    (void)a.sync();

    SyncOptions small;
    small.pullBatch = 10; // a write or two per batch: many batches
    std::atomic<SyncClient*> target{nullptr};
    std::atomic<std::size_t> mergedBeforeCancel{0};
    small.onProgress = [&](const SyncProgress& p) {
      // After the second merge: the third batch is then merging or about to.
      if (p.phase == SyncPhase::pulling && p.changesPulled > 0 && mergedBeforeCancel == 0) {
        static_cast<void>(++mergedBeforeCancel);
      } else if (p.phase == SyncPhase::pulling && mergedBeforeCancel == 1) {
        ++mergedBeforeCancel;
        if (SyncClient* c = target.load()) {
          c->cancel();
        }
      }
    };
    FieldDevice b(data, "worker-b", server.port(), small);
    target = b.client.get();
    CHECK(codeOf([&] { (void)b.sync(); }) == Errc::cancelled);
    CHECK(mergedBeforeCancel.load() == 2);
    // Closed right after the cancelled sync: no merge may still be running (a merge
    // touching the closed store would fail, or be caught by the sanitizers).
    target = nullptr;
    b.close();
    b.reopen();
    model::RecordQuery q;
    q.type = "child";
    q.limit = 100;
    const std::size_t partial = b.store->queryIds(q).ids.size();
    CHECK(partial > 0);
    CHECK(partial < ids.size());
    (void)b.sync();
    CHECK(b.store->queryIds(q).ids.size() == ids.size());
    for (const auto& id : ids) {
      REQUIRE(b.store->get(id).has_value());
      CHECK(b.store->get(id)->fields == a.store->get(id)->fields);
      CHECK(b.store->journal().status(id)->state == model::SyncState::synced);
    }
    CHECK(b.sync().changesPulled == 0);
  }

  TEST_CASE("a pull of many batches, merged in groups while the next are received, merges "
            "everything in order and leaves the log copied into the vault's file") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    const std::vector<sync::Uuid> ids = a.addChildren(40);
    // Edits after the creates: merged after them, whichever transaction each is in.
    for (int i = 0; i < 40; i += 3) {
      a.store->update(ids[static_cast<std::size_t>(i)],
                      {{"school", std::string("School " + std::to_string(i))}});
    }
    (void)a.sync();

    SyncOptions small;
    small.pullBatch = 8; // a write or so per batch: many batches
    FieldDevice b(data, "worker-b", server.port(), small);
    const SyncReport r = b.sync();
    CHECK(r.recordsUpdated >= ids.size());
    CHECK(r.roundTrips > 40); // so more than one merge transaction (PullMerger::kGroup)
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto onB = b.store->get(ids[i]);
      REQUIRE(onB.has_value());
      CHECK(onB->fields == a.store->get(ids[i])->fields);
      CHECK(b.store->conflicts(ids[i]).empty());
    }
    // Every page is in the database file: the log was copied at the end of the pull,
    // not left for the worker's next edit.
    b.vault->read([&](sql::Database& db) {
      const auto pages = db.queryInt("PRAGMA page_count");
      const auto pageSize = db.queryInt("PRAGMA page_size");
      CHECK(static_cast<std::int64_t>(std::filesystem::file_size(b.vault->databasePath())) ==
            pages * pageSize);
    });
    CHECK(b.sync().changesPulled == 0);
  }

  TEST_CASE("a device killed (SIGKILL) in the middle of syncing, again and again, loses "
            "nothing and duplicates nothing after its next sync") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    FieldDevice a(data, "worker-a", server.port());
    FieldDevice b(data, "worker-b", server.port());
    for (int i = 0; i < 400; ++i) {
      (void)a.addChild("north", "From A " + std::to_string(i));
    }
    const auto aWrites = static_cast<std::uint64_t>(a.store->journal().pendingCount());
    (void)a.sync();
    std::vector<sync::Uuid> fromB;
    for (int i = 0; i < 60; ++i) {
      fromB.push_back(b.addChild("north", "From B " + std::to_string(i)));
    }
    const auto bWrites = static_cast<std::uint64_t>(b.store->journal().pendingCount());
    b.close();

    const std::string vaultDir = b.vf.dir.string();
    const std::string keyDir = (b.vf.tmp / "keystore").string();
    std::mt19937 rng(7);
    int killed = 0;
    for (int round = 0; round < 8; ++round) {
      const pid_t pid = fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        execl(SYNC_VICTIM_PATH, SYNC_VICTIM_PATH, vaultDir.c_str(), keyDir.c_str(), "2468",
              "worker-b", static_cast<char*>(nullptr));
        _exit(127);
      }
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 150)(rng)));
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        ++killed;
        REQUIRE(waitpid(pid, &status, 0) == pid);
      } else {
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
      }
    }
    CHECK(killed >= 2);

    b.reopen();
    (void)b.sync();
    (void)a.sync();
    CHECK(b.store->journal().pendingCount() == 0);
    CHECK(data.store()->recordCount() == 460);
    CHECK(data.store()->lastSequence() == aWrites + bWrites);
    model::RecordQuery q;
    q.type = "child";
    q.limit = 1000;
    CHECK(b.store->queryIds(q).ids.size() == 460);
    CHECK(a.store->queryIds(q).ids.size() == 460);
    for (const auto& id : fromB) {
      CHECK(a.store->get(id)->fields == b.store->get(id)->fields);
      CHECK(b.store->journal().status(id)->state == model::SyncState::synced);
    }
  }

  TEST_CASE("the C ABI enrolls and syncs, and reports bad input with stable codes") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    test::TempDir tmp;
    outpost_vault* v = nullptr;
    outpost_error err{};
    REQUIRE(outpost_vault_create((tmp / "vault").c_str(), (tmp / "keys").c_str(), "2468",
                                 "worker-a", &v, &err) == OUTPOST_OK);
    char* report = nullptr;
    CHECK(outpost_sync(v, &report, &err) == static_cast<int32_t>(Errc::invalid_argument));
    CHECK(outpost_device_enroll(v, "outpost-enroll:v1:nonsense", "1.0", &err) ==
          static_cast<int32_t>(Errc::invalid_argument));
    const std::string payload = enrollmentPayload(data, "worker-a", server.port());
    REQUIRE(outpost_device_enroll(v, payload.c_str(), "1.0", &err) == OUTPOST_OK);
    char id[37];
    REQUIRE(
        outpost_record_put_json(
            v,
            R"({"type":"child","fields":{"name":"C","owner_team":"north","local_authority":"L",)"
            R"("police_force_area":"P","estimated_age":14}})",
            id, &err) == OUTPOST_OK);
    REQUIRE(outpost_sync(v, &report, &err) == OUTPOST_OK);
    const auto j = nlohmann::json::parse(report);
    outpost_string_release(report);
    CHECK(j["changes_pushed"].get<int>() > 0);
    CHECK(j["changes_rejected"].get<int>() == 0);
    CHECK(data.store()->recordCount() == 1);
    outpost_vault_release(v);
  }

  TEST_CASE("background mode: syncs after a local write, backs off while the server is "
            "unreachable, and recovers without another write") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer server(ctx, data.dir.path);
    CuttingProxy proxy(server.port());
    SyncOptions o;
    o.minBackoff = 20ms;
    o.maxBackoff = 200ms;
    o.interval = 1h;
    std::atomic<int> successes{0};
    std::atomic<int> failures{0};
    o.onResult = [&](const SyncReport* r, const std::exception_ptr&) {
      (r ? successes : failures).fetch_add(1);
    };
    FieldDevice a(data, "worker-a", proxy.port(), o);
    proxy.cutAfter(0); // the server is unreachable
    a.client->start();
    const auto child = a.addChild("north", "Child Four");
    a.client->notifyLocalWrite();
    for (int i = 0; i < 200 && failures.load() < 3; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    CHECK(failures.load() >= 3);
    CHECK(a.client->status().consecutiveFailures >= 1);
    CHECK(a.store->journal().pendingCount() == 1);
    proxy.cutAfter(-1); // back: the retry pushes without another write
    for (int i = 0; i < 300 && successes.load() == 0; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    CHECK(a.store->journal().pendingCount() == 0);
    CHECK(successes.load() >= 1);
    a.client->stop();
    CHECK_FALSE(a.client->status().running);
    CHECK(data.store()->record(child).has_value());
  }

  TEST_CASE("convergence: three devices, random offline edits, random sync order with cut "
            "connections, all replicas and the server end identical") {
    for (unsigned seed = 1; seed <= 10; ++seed) {
      checkConvergence(seed);
    }
  }
}
