#pragma once
// A record store on a real vault in a temp folder, with a clock tests move, and a
// small app-defined schema that exercises every field type.

#include "../journal/manual_clock.hpp"
#include "../vault/vault_fixture.hpp"

#include <outpost/audit.hpp>
#include <outpost/journal.hpp>
#include <outpost/records.hpp>

#include <memory>

namespace outpost::test {

using model::FieldSpec;
using model::FieldType;
using sync::FieldValues;
using sync::StringList;
using sync::Uuid;
using sync::Value;

inline void addTestTypes(model::Schema& schema) {
  model::EntityType child;
  child.name = "test.child";
  child.fields = {FieldSpec{"name", FieldType::text, true, {}, {}, {}, {}}};
  schema.add(child);

  model::EntityType c;
  c.name = "test.case";
  c.statuses = {"draft", "open", "closed"};
  c.riskField = "level";
  c.signedField = "signed_at";
  c.searchFields = {"body"};
  FieldSpec contact{"contact", FieldType::structured, false, {}, {}, {}, {}};
  contact.subFields = {FieldSpec{"name", FieldType::text, true, {}, {}, {}, {}},
                       FieldSpec{"phone", FieldType::text, false, {}, {}, {}, {}}};
  c.fields = {
      FieldSpec{"child", FieldType::reference, false, {}, {}, "test.child", {}},
      FieldSpec{"title", FieldType::text, true, {}, {}, {}, {}},
      FieldSpec{"level", FieldType::enumeration, false, {}, {"low", "high"}, {}, {}},
      FieldSpec{"count", FieldType::integer, false, {}, {}, {}, {}},
      FieldSpec{"when", FieldType::date, false, {}, {}, {}, {}},
      FieldSpec{"flag", FieldType::boolean, false, {}, {}, {}, {}},
      FieldSpec{"notes", FieldType::list, false, sync::MergePolicy::appendOnly, {}, {}, {}},
      FieldSpec{"body", FieldType::text, false, sync::MergePolicy::immutableAfterSign, {}, {}, {}},
      FieldSpec{"signed_at", FieldType::dateTime, false, {}, {}, {}, {}},
      FieldSpec{"due", FieldType::dateTime, false, {}, {}, {}, {}},
      contact,
  };
  c.dueAt = [](const FieldValues& f) -> std::optional<std::int64_t> {
    const auto it = f.find("due");
    if (it == f.end()) {
      return std::nullopt;
    }
    return std::get<std::int64_t>(it->second);
  };
  schema.add(c);
}

struct RecordsFixture : VaultFixture {
  ManualClock clock;
  std::unique_ptr<Vault> vault = create();
  std::unique_ptr<model::RecordStore> store = makeStore();

  std::unique_ptr<model::RecordStore> makeStore(model::RecordStoreOptions o = defaultOptions()) {
    auto s = std::make_unique<model::RecordStore>(context, *vault, clock, o);
    addTestTypes(s->schema());
    return s;
  }
  static model::RecordStoreOptions defaultOptions() {
    model::RecordStoreOptions o;
    o.workerId = "worker-7";
    o.auditSignEvery = 4;
    o.viewFlushEvery = 1;
    return o;
  }
  /// Closes the store and vault and opens both again (a restart).
  void restart(model::RecordStoreOptions o = defaultOptions()) {
    store.reset();
    vault.reset();
    vault = openUnlocked();
    store = makeStore(o);
  }
  Uuid addChild(const std::string& name = "A") {
    return store->create("test.child", {{"name", name}, {"owner_team", std::string("team-1")}});
  }
  FieldValues caseFields(const std::string& title = "t") {
    return {{"title", title}, {"owner_team", std::string("team-1")}};
  }
  std::int64_t count(const std::string& sqlText) {
    std::int64_t n = -1;
    vault->read([&](sql::Database& db) { n = db.queryInt(sqlText); });
    return n;
  }
};

/// The code of the Error `f` throws, or Errc::ok.
template <class F>
Errc errorCode(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::ok;
}

template <class F>
std::string errorMessage(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return {};
}

} // namespace outpost::test
