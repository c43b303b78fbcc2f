#include "sdk_store.hpp"

#include <outpost/error.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/records.hpp>
#include <outpost/vault.hpp>

#include <algorithm>
#include <array>
#include <charconv>
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

} // namespace

const std::string& indicatorName(int k) {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n(kIndicators + 1);
    for (int i = 1; i <= kIndicators; ++i) {
      char name[16];
      std::snprintf(name, sizeof name, "ind_%02d", i);
      n[static_cast<std::size_t>(i)] = name;
    }
    return n;
  }();
  return names[static_cast<std::size_t>(k)];
}

namespace {} // namespace

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

std::vector<model::RecordWrite> w1Writes(std::span<const Record> batch,
                                         std::unordered_map<std::string, Uuid>& subjects,
                                         std::size_t& firstRecord) {
  std::vector<model::RecordWrite> writes;
  writes.reserve(batch.size() + 16);
  for (const Record& r : batch) {
    auto [it, added] = subjects.try_emplace(r.subjectId);
    if (added) {
      // A child seen for the first time is created first, in the same
      // transaction, with an id made ahead so the assessment can refer to it.
      it->second = Uuid::random();
      model::RecordWrite s;
      s.type = std::string(kSubjectType);
      s.newId = it->second;
      s.fields = {{"name", r.subjectId}, {"owner_team", std::string("team-1")}};
      writes.push_back(std::move(s));
    }
  }
  firstRecord = writes.size();
  for (const Record& r : batch) {
    model::RecordWrite w;
    w.type = std::string(kAssessmentType);
    // W1's ids are UUIDv4 text: the record keeps the generator's id, as an app
    // importing records made elsewhere would.
    w.newId = Uuid::parse(r.id);
    if (!w.newId) {
      throw Error(Errc::invalid_argument, "W1 record id is not a UUID: " + r.id);
    }
    // Fields in name order: each one then lands at the end of the flat map.
    FieldValues& f = w.fields;
    f.reserve(11 + kIndicators);
    f.emplace_hint(f.end(), "assessed_at", r.created * 1000);
    f.emplace_hint(f.end(), "assessor_id", r.assessorId);
    int k = 1;
    for (const bool b : r.flags) {
      f.emplace_hint(f.end(), indicatorName(k++), b);
    }
    for (const std::uint32_t c : r.counts) {
      f.emplace_hint(f.end(), indicatorName(k++), std::int64_t{c});
    }
    for (const std::string_view st : r.states) {
      f.emplace_hint(f.end(), indicatorName(k++), std::string(st));
    }
    f.emplace_hint(f.end(), "note", r.note);
    f.emplace_hint(f.end(), "owner_team", std::string("team-1"));
    f.emplace_hint(f.end(), "revised_at", r.updated * 1000);
    f.emplace_hint(f.end(), "risk_level", std::string(r.riskLevel));
    f.emplace_hint(f.end(), "schema_version", std::int64_t{1});
    f.emplace_hint(f.end(), "status", std::string(r.status));
    f.emplace_hint(f.end(), "subject", subjects[r.subjectId].toString());
    f.emplace_hint(f.end(), "subject_id", r.subjectId);
    f.emplace_hint(f.end(), "template", std::string("cse-risk-v1"));
    writes.push_back(std::move(w));
  }
  return writes;
}

namespace {

/// `YYYY-MM-DDTHH:MM:SSZ` without printf (the plain runners do no formatting at all).
void appendIsoTime(std::string& out, std::int64_t unixSeconds) {
  const auto days = std::chrono::floor<std::chrono::days>(
      std::chrono::sys_seconds(std::chrono::seconds(unixSeconds)));
  const std::chrono::year_month_day ymd{days};
  const auto secs = unixSeconds - days.time_since_epoch().count() * 86400;
  const auto two = [&](long v) {
    out.push_back(static_cast<char>('0' + v / 10));
    out.push_back(static_cast<char>('0' + v % 10));
  };
  const int y = static_cast<int>(ymd.year());
  two(y / 100);
  two(y % 100);
  out.push_back('-');
  two(static_cast<long>(static_cast<unsigned>(ymd.month())));
  out.push_back('-');
  two(static_cast<long>(static_cast<unsigned>(ymd.day())));
  out.push_back('T');
  two(static_cast<long>(secs / 3600));
  out.push_back(':');
  two(static_cast<long>(secs / 60 % 60));
  out.push_back(':');
  two(static_cast<long>(secs % 60));
  out.push_back('Z');
}

/// The fields W1's JSON shows, found in one pass over the record's fields (they
/// are in name order; W1's keys are not).
struct W1Fields {
  enum Slot : std::size_t {
    templateName,
    schemaVersion,
    subjectId,
    assessorId,
    status,
    riskLevel,
    assessedAt,
    revisedAt,
    note,
    count
  };
  std::array<const sync::Value*, count> named{};
  std::array<const sync::Value*, kIndicators + 1> indicators{};

  explicit W1Fields(const model::Record& r) {
    // In name order, as the record's fields are: one walk over both.
    static constexpr std::array<std::pair<std::string_view, Slot>, count> kNames = {{
        {"assessed_at", assessedAt},
        {"assessor_id", assessorId},
        {"note", note},
        {"revised_at", revisedAt},
        {"risk_level", riskLevel},
        {"schema_version", schemaVersion},
        {"status", status},
        {"subject_id", subjectId},
        {"template", templateName},
    }};
    static_assert(std::is_sorted(kNames.begin(), kNames.end(),
                                 [](const auto& a, const auto& b) { return a.first < b.first; }));
    std::size_t next = 0;
    for (const auto& [name, value] : r.fields) {
      const std::string_view n = name;
      if (n.size() == 6 && n.starts_with("ind_")) {
        const int k = (n[4] - '0') * 10 + (n[5] - '0');
        if (k >= 1 && k <= kIndicators) {
          indicators[static_cast<std::size_t>(k)] = &value;
        }
        continue;
      }
      int c = 1;
      while (next < kNames.size() && (c = kNames[next].first.compare(n)) < 0) {
        ++next;
      }
      if (c == 0) {
        named[kNames[next].second] = &value;
      }
    }
  }

  [[nodiscard]] std::string_view text(Slot slot) const {
    const auto* s = named[slot] ? std::get_if<std::string>(named[slot]) : nullptr;
    return s ? std::string_view(*s) : std::string_view();
  }
  [[nodiscard]] std::int64_t integer(Slot slot) const {
    const auto* i = named[slot] ? std::get_if<std::int64_t>(named[slot]) : nullptr;
    return i ? *i : 0;
  }
};

/// Whether `v` holds `want`, of the same type.
template <class T>
bool holds(const sync::Value* v, const T& want) {
  const auto* got = v ? std::get_if<T>(v) : nullptr;
  return got && *got == want;
}
bool holdsText(const sync::Value* v, std::string_view want) {
  const auto* got = v ? std::get_if<std::string>(v) : nullptr;
  return got && *got == want;
}

/// Whether the record read holds every field of W1's JSON with the generated
/// values (as strict as comparing the JSON: times to the millisecond).
bool matchesGenerated(const model::Record& r, const Record& want) {
  const W1Fields f(r);
  using S = W1Fields::Slot;
  const auto text = [&](S slot, std::string_view v) { return holdsText(f.named[slot], v); };
  const auto integer = [&](S slot, std::int64_t v) { return holds(f.named[slot], v); };
  if (!(text(S::templateName, "cse-risk-v1") && integer(S::schemaVersion, 1) &&
        text(S::subjectId, want.subjectId) && text(S::assessorId, want.assessorId) &&
        text(S::status, want.status) && text(S::riskLevel, want.riskLevel) &&
        integer(S::assessedAt, want.created * 1000) && integer(S::revisedAt, want.updated * 1000) &&
        text(S::note, want.note))) {
    return false;
  }
  std::size_t k = 1;
  for (const bool b : want.flags) {
    if (!holds(f.indicators[k++], b)) {
      return false;
    }
  }
  for (const std::uint32_t c : want.counts) {
    if (!holds(f.indicators[k++], std::int64_t{c})) {
      return false;
    }
  }
  for (const std::string_view st : want.states) {
    if (!holdsText(f.indicators[k++], st)) {
      return false;
    }
  }
  return true;
}

void appendInteger(std::string& out, std::int64_t v) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  out.append(buf, end);
}

/// The W1 JSON of a record read back through the API (keys in the fixed order).
std::string w1Json(const model::Record& r, std::string_view id) {
  const W1Fields f(r);
  std::string out;
  out.reserve(1200);
  out += R"({"id":")";
  out += id;
  out += R"(","template":")";
  out += f.text(W1Fields::templateName);
  out += R"(","schema_version":)";
  appendInteger(out, f.integer(W1Fields::schemaVersion));
  out += R"(,"subject_id":")";
  out += f.text(W1Fields::subjectId);
  out += R"(","assessor_id":")";
  out += f.text(W1Fields::assessorId);
  out += R"(","status":")";
  out += f.text(W1Fields::status);
  out += R"(","risk_level":")";
  out += f.text(W1Fields::riskLevel);
  out += R"(","created_at":")";
  appendIsoTime(out, f.integer(W1Fields::assessedAt) / 1000);
  out += R"(","updated_at":")";
  appendIsoTime(out, f.integer(W1Fields::revisedAt) / 1000);
  out += R"(","indicators":{)";
  for (int k = 1; k <= kIndicators; ++k) {
    out += '"';
    out += indicatorName(k);
    out += "\":";
    static const sync::Value kMissing; // shows nothing, so the payload check fails
    const sync::Value* v = f.indicators[static_cast<std::size_t>(k)];
    if (v == nullptr) {
      v = &kMissing;
    }
    if (const auto* b = std::get_if<bool>(v)) {
      out += *b ? "true" : "false";
    } else if (const auto* i = std::get_if<std::int64_t>(v)) {
      appendInteger(out, *i);
    } else if (const auto* t = std::get_if<std::string>(v)) {
      out += '"';
      out += *t;
      out += '"';
    }
    out += ',';
  }
  out.back() = '}';
  out += R"(,"note":")";
  out += f.text(W1Fields::note);
  out += "\"}";
  return out;
}

class SdkW1Store final : public W1Store {
public:
  explicit SdkW1Store(int cacheKiB) : cacheKiB_(cacheKiB) {}

  void create(const fs::path& dir) override {
    dir_ = dir;
    std::error_code ec;
    fs::remove_all(dir_ / "vault", ec);
    fs::remove_all(dir_ / "keystore", ec);
    fs::create_directories(dir_);
    subjects_.clear();
    keyStore_ = std::make_unique<platform::FileKeyStore>(dir_ / "keystore");
    vault_ = Vault::create(context_, dir_ / "vault", kPin, *keyStore_, vaultOptions());
    makeStore();
  }

  void stage(std::span<const Record> batch) override {
    std::size_t firstRecord = 0;
    staged_ = w1Writes(batch, subjects_, firstRecord);
  }

  void insert(std::span<const Record> batch, std::span<const std::string>) override {
    std::vector<model::RecordWrite> writes = std::move(staged_);
    staged_.clear();
    if (writes.empty()) { // a caller that did not stage: the same writes, made now
      std::size_t firstRecord = 0;
      writes = w1Writes(batch, subjects_, firstRecord);
    }
    (void)store_->writeBatch(writes);
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
    const auto uuid = Uuid::parse(id);
    if (!uuid) {
      return std::nullopt;
    }
    const auto r = store_->view(*uuid);
    if (!r) {
      return std::nullopt;
    }
    return w1Json(*r, id);
  }

  [[nodiscard]] bool readMatches(const Record& expected, const std::string&) override {
    const auto uuid = Uuid::parse(expected.id);
    if (!uuid) {
      return false;
    }
    const auto r = store_->view(*uuid);
    return r && r->id == *uuid && matchesGenerated(*r, expected);
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
  [[nodiscard]] VaultOptions vaultOptions() const {
    // The settings of w1.vault (the vault's shipped defaults but synchronous=NORMAL),
    // so the difference is what the record API costs.
    VaultOptions o;
    o.durableCommits = false;
    if (cacheKiB_ > 0) {
      o.cacheKiB = cacheKiB_;
    }
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
  std::vector<model::RecordWrite> staged_; ///< the next insert's writes
  int cacheKiB_;                           // 0: the vault's own
};

} // namespace

std::unique_ptr<W1Store> makeSdkStore(int cacheKiB) {
  return std::make_unique<SdkW1Store>(cacheKiB);
}

} // namespace outpost::bench
