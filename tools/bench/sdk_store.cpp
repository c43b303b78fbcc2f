#include "sdk_store.hpp"

#include <outpost/error.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/records.hpp>
#include <outpost/vault.hpp>

#include <chrono>
#include <cstdio>
#include <unordered_map>

namespace outpost::bench {

namespace fs = std::filesystem;

namespace {

using model::FieldSpec;
using model::FieldType;
using sync::FieldValues;
using sync::Uuid;

constexpr std::string_view kPin = "bench-pin-1234";
constexpr std::string_view kSubjectType = "w1.subject";
constexpr std::string_view kAssessmentType = "w1.assessment";

std::string indicatorName(int k) {
  char name[16];
  std::snprintf(name, sizeof name, "ind_%02d", k);
  return name;
}

/// The app-defined types W1 stores: a subject (the child) and an assessment-like
/// record linked to it, with the 25 indicators as typed fields.
void registerW1Types(model::Schema& schema) {
  model::EntityType subject;
  subject.name = std::string(kSubjectType);
  subject.fields = {FieldSpec{"name", FieldType::text, true, {}, {}, {}, {}}};
  schema.add(subject);

  model::EntityType a;
  a.name = std::string(kAssessmentType);
  a.statuses = {"draft", "final"};
  a.riskField = "risk_level";
  a.fields = {
      FieldSpec{"subject", FieldType::reference, true, {}, {}, std::string(kSubjectType), {}},
      FieldSpec{"subject_id", FieldType::text, true, {}, {}, {}, {}},
      FieldSpec{"assessor_id", FieldType::text, true, {}, {}, {}, {}},
      FieldSpec{"template", FieldType::text, true, {}, {}, {}, {}},
      FieldSpec{"schema_version", FieldType::integer, true, {}, {}, {}, {}},
      FieldSpec{"risk_level", FieldType::enumeration, true, {}, {"low", "medium", "high"}, {}, {}},
      FieldSpec{"assessed_at", FieldType::dateTime, true, {}, {}, {}, {}},
      FieldSpec{"revised_at", FieldType::dateTime, true, {}, {}, {}, {}},
      FieldSpec{"note", FieldType::text, false, {}, {}, {}, {}},
  };
  for (int k = 1; k <= kIndicators; ++k) {
    const FieldType t = k <= kBoolIndicators                    ? FieldType::boolean
                        : k <= kBoolIndicators + kIntIndicators ? FieldType::integer
                                                                : FieldType::text;
    a.fields.push_back(FieldSpec{indicatorName(k), t, false, {}, {}, {}, {}});
  }
  schema.add(a);
}

const std::string& textField(const model::Record& r, std::string_view name) {
  static const std::string kEmpty;
  const auto* s = std::get_if<std::string>(&r.get(name));
  return s ? *s : kEmpty;
}

std::int64_t intField(const model::Record& r, std::string_view name) {
  const auto* i = std::get_if<std::int64_t>(&r.get(name));
  return i ? *i : 0;
}

/// The W1 JSON of a record read back through the API (keys in the fixed order).
std::string w1Json(const model::Record& r) {
  std::string out;
  out.reserve(1200);
  out += R"({"id":")";
  out += r.id.toString();
  out += R"(","template":")";
  out += textField(r, "template");
  out += R"(","schema_version":)";
  out += std::to_string(intField(r, "schema_version"));
  out += R"(,"subject_id":")";
  out += textField(r, "subject_id");
  out += R"(","assessor_id":")";
  out += textField(r, "assessor_id");
  out += R"(","status":")";
  out += textField(r, "status");
  out += R"(","risk_level":")";
  out += textField(r, "risk_level");
  out += R"(","created_at":")";
  out += isoTime(intField(r, "assessed_at") / 1000);
  out += R"(","updated_at":")";
  out += isoTime(intField(r, "revised_at") / 1000);
  out += R"(","indicators":{)";
  for (int k = 1; k <= kIndicators; ++k) {
    const std::string name = indicatorName(k);
    out += '"';
    out += name;
    out += "\":";
    const sync::Value& v = r.get(name);
    if (const auto* b = std::get_if<bool>(&v)) {
      out += *b ? "true" : "false";
    } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
      out += std::to_string(*i);
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      out += '"';
      out += *s;
      out += '"';
    }
    out += ',';
  }
  out.back() = '}';
  out += R"(,"note":")";
  out += textField(r, "note");
  out += "\"}";
  return out;
}

class SdkW1Store final : public W1Store {
public:
  void create(const fs::path& dir) override {
    dir_ = dir;
    std::error_code ec;
    fs::remove_all(dir_ / "vault", ec);
    fs::remove_all(dir_ / "keystore", ec);
    fs::create_directories(dir_);
    subjects_.clear();
    ids_.clear();
    keyStore_ = std::make_unique<platform::FileKeyStore>(dir_ / "keystore");
    vault_ = Vault::create(context_, dir_ / "vault", kPin, *keyStore_, vaultOptions());
    makeStore();
  }

  void insert(std::span<const Record> batch, std::span<const std::string>) override {
    std::vector<model::RecordWrite> writes;
    writes.reserve(batch.size() + 16);
    std::vector<std::size_t> newSubjects;
    for (const Record& r : batch) {
      auto [it, added] = subjects_.try_emplace(r.subjectId);
      if (added) {
        // The subject (child) is created first, in the same transaction.
        model::RecordWrite s;
        s.type = std::string(kSubjectType);
        s.fields = {{"name", r.subjectId}, {"owner_team", std::string("team-1")}};
        newSubjects.push_back(writes.size());
        writes.push_back(std::move(s));
        // Filled in after the batch below; the reference needs the id now, so
        // subjects are written in a batch of their own first.
      }
    }
    if (!newSubjects.empty()) {
      const auto ids = store_->writeBatch(writes);
      std::size_t k = 0;
      for (const model::RecordWrite& w : writes) {
        subjects_[std::get<std::string>(w.fields.at("name"))] = ids[k++];
      }
      writes.clear();
    }
    for (const Record& r : batch) {
      model::RecordWrite w;
      w.type = std::string(kAssessmentType);
      FieldValues& f = w.fields;
      f.emplace("owner_team", std::string("team-1"));
      f.emplace("status", std::string(r.status));
      f.emplace("subject", subjects_[r.subjectId].toString());
      f.emplace("subject_id", r.subjectId);
      f.emplace("assessor_id", r.assessorId);
      f.emplace("template", std::string("cse-risk-v1"));
      f.emplace("schema_version", std::int64_t{1});
      f.emplace("risk_level", std::string(r.riskLevel));
      f.emplace("assessed_at", r.created * 1000);
      f.emplace("revised_at", r.updated * 1000);
      f.emplace("note", r.note);
      int k = 1;
      for (const bool b : r.flags) {
        f.emplace(indicatorName(k++), b);
      }
      for (const std::uint32_t c : r.counts) {
        f.emplace(indicatorName(k++), std::int64_t{c});
      }
      for (const std::string_view s : r.states) {
        f.emplace(indicatorName(k++), std::string(s));
      }
      writes.push_back(std::move(w));
    }
    const auto ids = store_->writeBatch(writes);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      ids_.emplace(batch[i].id, ids[i]);
    }
  }

  void close() override {
    store_.reset();
    vault_.reset();
  }

  OpenTimes open() override {
    OpenTimes times;
    const auto start = std::chrono::steady_clock::now();
    vault_ = Vault::open(context_, dir_ / "vault", *keyStore_, vaultOptions());
    if (vault_->unlock(kPin).status != UnlockStatus::unlocked) {
      throw Error(Errc::wrong_pin, "bench vault did not unlock");
    }
    times.unlockMs =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    makeStore();
    times.openMs =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return times;
  }

  [[nodiscard]] std::optional<std::string> read(std::string_view id) override {
    // W1 ids are UUIDv4 text but not the ids the store made: map them.
    const auto it = ids_.find(std::string(id));
    if (it == ids_.end()) {
      return std::nullopt;
    }
    const auto r = store_->view(it->second);
    if (!r) {
      return std::nullopt;
    }
    std::string json = w1Json(*r);
    // The payload carries the generator's id, which the API does not store.
    json.replace(7, 36, id);
    return json;
  }

  [[nodiscard]] std::vector<std::string> highRiskIds(std::string_view subject) override {
    const auto it = subjects_.find(std::string(subject));
    if (it == subjects_.end()) {
      return {};
    }
    model::RecordQuery q;
    q.linkedTo = it->second;
    q.type = std::string(kAssessmentType);
    q.riskLevel = "high";
    q.limit = 1000;
    std::vector<std::string> out;
    for (const Uuid& id : store_->queryIds(q).ids) {
      out.push_back(id.toString());
    }
    return out;
  }

  void checkpointAndClose() override {
    store_->flushViews();
    vault_->read([](sql::Database& db) { db.exec("PRAGMA wal_checkpoint(TRUNCATE)"); });
    close();
  }

  [[nodiscard]] fs::path databaseFile() const override { return dir_ / "vault" / "vault.db"; }
  [[nodiscard]] fs::path walFile() const override { return dir_ / "vault" / "vault.db-wal"; }
  [[nodiscard]] bool encrypted() const override { return true; }

private:
  static VaultOptions vaultOptions() {
    // The settings of w1.vault, so the difference is what the record API costs.
    VaultOptions o;
    o.durableCommits = false;
    o.cacheKiB = 2000;
    o.autoLockAfter = std::chrono::milliseconds(0);
    return o;
  }

  void makeStore() {
    model::RecordStoreOptions o;
    o.workerId = "user-bench";
    store_ = std::make_unique<model::RecordStore>(context_, *vault_, clock_, o);
    registerW1Types(store_->schema());
  }

  Context context_;
  platform::SystemClock clock_;
  fs::path dir_;
  std::unique_ptr<platform::FileKeyStore> keyStore_;
  std::unique_ptr<Vault> vault_;
  std::unique_ptr<model::RecordStore> store_;
  std::unordered_map<std::string, Uuid> subjects_;
  std::unordered_map<std::string, Uuid> ids_; // generator id -> record id
};

} // namespace

std::unique_ptr<W1Store> makeSdkStore() { return std::make_unique<SdkW1Store>(); }

} // namespace outpost::bench
