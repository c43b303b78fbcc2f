// The embedded server store on SQLite (WAL). One object = one connection.

#include "audit_chain.hpp"
#include "statement_cache.hpp"
#include "write_row.hpp"

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/server/sqlite_store.hpp>
#include <outpost/template.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace outpost::server {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxName = 256;
/// A pull reply stops adding changes past this many value bytes (the message limit is
/// 16 MiB; leave room for the envelope and the other fields).
constexpr std::size_t kPullReplyBudget = 8u << 20;

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS server_settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS teams(name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS workers(id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS worker_teams(
  worker_id TEXT NOT NULL REFERENCES workers(id),
  team TEXT NOT NULL REFERENCES teams(name),
  position INTEGER NOT NULL,
  PRIMARY KEY(worker_id, team));
CREATE TABLE IF NOT EXISTS records(
  record_id BLOB PRIMARY KEY,
  record_type TEXT NOT NULL,
  owner_team TEXT NOT NULL REFERENCES teams(name),
  created_seq INTEGER NOT NULL,
  updated_seq INTEGER NOT NULL,
  conflicts INTEGER NOT NULL DEFAULT 0,
  state BLOB NOT NULL DEFAULT x'');
CREATE INDEX IF NOT EXISTS records_in_conflict ON records(conflicts) WHERE conflicts > 0;
CREATE TABLE IF NOT EXISTS device_scopes(
  device_id BLOB NOT NULL,
  team TEXT NOT NULL,
  PRIMARY KEY(device_id, team)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS field_policies(
  record_type TEXT NOT NULL,
  field TEXT NOT NULL,
  policy TEXT NOT NULL,
  PRIMARY KEY(record_type, field));
)sql";

/// The write log (schema 3): one row per write a device pushed (its changes to one
/// record at one HLC), numbered by the server's sequence; and the published templates.
constexpr std::string_view kWritesSchema = R"sql(
CREATE TABLE IF NOT EXISTS writes(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  record_id BLOB NOT NULL,
  record_type TEXT NOT NULL,
  hlc INTEGER NOT NULL,
  device_id BLOB NOT NULL,
  owner_team TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  fields BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS writes_key ON writes(device_id, hlc, record_id);
CREATE INDEX IF NOT EXISTS writes_by_team ON writes(owner_team, seq);
CREATE INDEX IF NOT EXISTS records_by_team ON records(owner_team, record_id);
CREATE TABLE IF NOT EXISTS templates(
  template_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  content_hash TEXT NOT NULL,
  document TEXT NOT NULL,
  published_ms INTEGER NOT NULL,
  PRIMARY KEY(template_id, version));
)sql";

/// How long a connection waits for another's lock.
constexpr int kBusyTimeoutMs = 10000;

/// Template documents a HelloReply carries at most (the message limit is 16 MiB).
constexpr std::size_t kTemplateBudget = 8u << 20;

using nlohmann::json;

/// The schema version this build writes: 1 = before the audit chain, 2 = with it
/// (a change log of one row per field change), 3 = a write log of one row per write
/// and one merge state per record, 4 = push audit entries may list a write row's
/// changes as a run (audit_log.changes_format).
constexpr std::int64_t kSchemaVersion = 4;

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string uuidText(const protocol::Uuid& id) {
  sync::Uuid u;
  u.bytes = id;
  return u.toString();
}

std::span<const unsigned char> blob(const std::array<std::uint8_t, 16>& bytes) {
  return {bytes.data(), bytes.size()};
}
std::span<const unsigned char> blob(const sync::Uuid& id) { return blob(id.bytes); }
std::span<const unsigned char> blob(std::string_view s) {
  return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}
std::string_view text(std::span<const unsigned char> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
std::array<std::uint8_t, 16> uuidColumn(const sql::Statement& st, int column) {
  const auto b = st.columnBlob(column);
  if (b.size() != 16) {
    throw Error(Errc::corrupt, "a stored identifier is damaged");
  }
  std::array<std::uint8_t, 16> out{};
  std::copy(b.begin(), b.end(), out.begin());
  return out;
}
sync::Uuid idColumn(const sql::Statement& st, int column) {
  return sync::Uuid{uuidColumn(st, column)};
}

void checkName(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() > kMaxName) {
    throw Error(Errc::invalid_argument, std::string(what) + " must be 1 to 256 characters");
  }
  if (std::any_of(name.begin(), name.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    throw Error(Errc::invalid_argument, std::string(what) + " must not contain control characters");
  }
}

std::vector<sync::VersionId> decodeResolves(std::span<const unsigned char> b) {
  if (b.size() % 24 != 0) {
    throw Error(Errc::corrupt, "a stored change is damaged");
  }
  std::vector<sync::VersionId> out(b.size() / 24);
  for (std::size_t k = 0; k < out.size(); ++k) {
    const unsigned char* p = b.data() + k * 24;
    std::uint64_t hlc = 0;
    for (int i = 0; i < 8; ++i) {
      hlc |= std::uint64_t{p[i]} << (8 * i);
    }
    out[k].hlc = sync::Hlc{hlc};
    std::copy(p + 8, p + 24, out[k].deviceId.bytes.begin());
  }
  return out;
}

/// A change read by a statement selecting audit::kRowColumns (seq first).
protocol::Change changeFromRow(const sql::Statement& st) {
  protocol::Change c;
  c.changeId = idColumn(st, 1);
  c.recordId = idColumn(st, 2);
  c.recordType = std::string(st.columnText(3));
  c.field = std::string(st.columnText(4));
  std::string_view value = text(st.columnBlob(5));
  c.value = sync::decodeValue(value);
  c.hlc = sync::Hlc{static_cast<std::uint64_t>(st.columnInt(6))};
  c.deviceId = idColumn(st, 7);
  c.baseHlc = sync::Hlc{static_cast<std::uint64_t>(st.columnInt(8))};
  c.baseDeviceId = idColumn(st, 9);
  c.resolves = decodeResolves(st.columnBlob(10));
  return c;
}

/// A version of a field whose change id is its derived one.
struct DerivedVersion {
  sync::Hlc hlc;
  sync::Uuid deviceId;
  sync::Uuid changeId;

  friend bool operator<(const DerivedVersion& a, const DerivedVersion& b) noexcept {
    return std::tie(a.hlc, a.deviceId, a.changeId) < std::tie(b.hlc, b.deviceId, b.changeId);
  }
};

/// Gives the versions of `field` of record `record` whose id the state keeps all-zero
/// their derived ids, and lists them in `filled`.
void fillDerivedIds(sync::FieldState& state, const sync::Uuid& record, std::string_view field,
                    std::vector<DerivedVersion>& filled) {
  const auto fill = [&](sync::FieldVersion& v) {
    if (v.changeId.isNil()) {
      v.changeId = sync::derivedChangeId(v.deviceId, record, field, v.hlc);
      filled.push_back({v.hlc, v.deviceId, v.changeId});
    }
  };
  if (state.current) {
    fill(*state.current);
  }
  std::for_each(state.conflicts.begin(), state.conflicts.end(), fill);
  std::for_each(state.entries.begin(), state.entries.end(), fill); // never all-zero here
}

/// Sets the ids of the current and competing versions that `derived` lists back to
/// all-zero (the form the record state keeps a derived id in). Append-only entries
/// keep theirs.
void forgetDerivedIds(sync::FieldState& state, std::vector<DerivedVersion>& derived) {
  std::sort(derived.begin(), derived.end());
  const auto forget = [&](sync::FieldVersion& v) {
    if (std::binary_search(derived.begin(), derived.end(),
                           DerivedVersion{v.hlc, v.deviceId, v.changeId})) {
      v.changeId = sync::Uuid{};
    }
  };
  if (state.current) {
    forget(*state.current);
  }
  std::for_each(state.conflicts.begin(), state.conflicts.end(), forget);
}

/// After a field's state was rebuilt with every id spelled out: its current and
/// competing versions' derived ids go back to all-zero.
void elideDerivedIds(sync::FieldState& state, const sync::Uuid& record, std::string_view field) {
  const auto elide = [&](sync::FieldVersion& v) {
    if (v.changeId == sync::derivedChangeId(v.deviceId, record, field, v.hlc)) {
      v.changeId = sync::Uuid{};
    }
  };
  if (state.current) {
    elide(*state.current);
  }
  std::for_each(state.conflicts.begin(), state.conflicts.end(), elide);
}

/// Fields in conflict, and fields whose versions a deletion did not see.
std::vector<std::string> conflictFieldsOf(const sync::RecordState& record) {
  std::set<std::string> fields;
  for (const auto& [name, state] : record.fields) {
    if (state.hasConflict()) {
      fields.insert(name);
    }
  }
  for (const auto& [name, version] : sync::deletionConflicts(record)) {
    (void)version;
    fields.insert(name);
  }
  return {fields.begin(), fields.end()};
}

/// A stored change as a push or baseline audit entry lists it.
AuditedChange auditedStored(const StoredField& f, std::int64_t seq) {
  const bool conflict =
      f.outcome == sync::MergeOutcome::won || f.outcome == sync::MergeOutcome::lost;
  AuditedChange c;
  c.changeId = f.changeId.bytes;
  c.outcome = conflict ? protocol::ChangeOutcome::conflict : protocol::ChangeOutcome::applied;
  c.reason = conflict ? static_cast<std::uint16_t>(Errc::conflict) : 0;
  c.seq = seq;
  return c;
}

/// Merge policies by record type, then field; fields not listed are lww.
using PolicyMap =
    std::map<std::string, std::map<std::string, sync::MergePolicy, std::less<>>, std::less<>>;

sync::MergePolicy policyOf(const PolicyMap& policies, std::string_view type,
                           std::string_view field) {
  if (const auto t = policies.find(type); t != policies.end()) {
    if (const auto f = t->second.find(field); f != t->second.end()) {
      return f->second;
    }
  }
  return sync::MergePolicy::lww;
}

} // namespace

struct SqliteServerStore::Impl {
  const Context& context;
  ServerKeys keys;
  sql::Database db;
  protocol::DeviceRegistry devices;
  protocol::EnrollmentRegistry enrollment;
  StatementCache statements{db};
  std::string actor = "server";

  Impl(const Context& ctx, const fs::path& path, const ServerKeys& k, int flags)
      : context(ctx), keys(k.clone()), db(openAndMigrate(path, flags)), devices(db),
        enrollment(ctx, db, SecretBytes::copyOf(keys.enrollmentSecret.span()), devices) {
    migrate();
  }

  static sql::Database openAndMigrate(const fs::path& path, int flags) {
    sql::Database db(path.string(), flags);
    db.exec("PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs));
    // 8 KiB pages for a new store (an existing one keeps its size). A pushed write
    // stores ~3 KB (its row and its record's merge state): against 4 KiB, larger pages
    // mean fewer WAL frames and B-tree splits per push (~10 % less CPU for W2's
    // push_all). But a push of edits to records spread over the store writes a whole
    // page per record: 16 KiB pages cost W2's push_delta ~3 ms more than 8 KiB ones,
    // for the same push_all (docs/benchmarks.md).
    db.exec("PRAGMA page_size = 8192");
    // WAL: readers never block the writer. synchronous=FULL: a batch is acknowledged
    // only after its commit is durable, also across a power cut.
    (void)db.queryText("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    // A large push batch touches many pages of the change log and the field states.
    db.exec("PRAGMA cache_size = -32768");
    return db;
  }

  /// Brings the schema to kSchemaVersion. Version 1 stores (before the audit chain)
  /// get the chain, starting with a `baseline` entry that covers every change
  /// already stored.
  void migrate() {
    if (db.queryInt("PRAGMA user_version") >= kSchemaVersion) {
      return;
    }
    sql::Transaction tx(db);
    const std::int64_t version = db.queryInt("PRAGMA user_version"); // under the lock
    if (version >= kSchemaVersion) {
      return;
    }
    if (version == 0) {
      db.exec(kSchema);
      db.exec(kWritesSchema);
    } else if (version == 1) {
      // Pulls read a team's changes through an index instead of joining every
      // change after the cursor with its record.
      db.exec("ALTER TABLE changes ADD COLUMN owner_team TEXT NOT NULL DEFAULT '';"
              "UPDATE changes SET owner_team ="
              " (SELECT owner_team FROM records r WHERE r.record_id = changes.record_id);"
              "CREATE INDEX IF NOT EXISTS changes_by_team ON changes(owner_team, seq);");
    }
    db.exec(audit::kSchema);
    // Schema 4: push entries may store their change list as runs (audit::ChangeList).
    // An audit log made before has every entry in the explicit form.
    if (db.queryInt("SELECT COUNT(*) FROM pragma_table_info('audit_log') WHERE name ="
                    " 'changes_format'") == 0) {
      db.exec("ALTER TABLE audit_log ADD COLUMN changes_format INTEGER NOT NULL DEFAULT 1");
    }
    if (version == 1 && db.queryInt("SELECT COUNT(*) FROM changes") > 0) {
      AuditEntry entry;
      entry.atMs = nowMs();
      entry.kind = AuditKind::baseline;
      entry.actor = "server";
      audit::RowsHash rows;
      sql::Statement st(db,
                        "SELECT " + std::string(audit::kRowColumns) + " FROM changes ORDER BY seq");
      while (st.step()) {
        const audit::ChangeRow row = audit::rowFrom(st, 0);
        const bool conflict = row.mergeOutcome == sync::mergeOutcomeName(sync::MergeOutcome::won) ||
                              row.mergeOutcome == sync::mergeOutcomeName(sync::MergeOutcome::lost);
        AuditedChange c;
        c.changeId = uuidColumn(st, 1);
        c.outcome = conflict ? protocol::ChangeOutcome::conflict : protocol::ChangeOutcome::applied;
        c.reason = conflict ? static_cast<std::uint16_t>(Errc::conflict) : 0;
        c.seq = row.seq;
        entry.changes.push_back(c);
        rows.add(row);
      }
      entry.rowsHash = rows.finish();
      entry.detail = json{{"changes", entry.changes.size()},
                          {"note", "changes stored before the audit chain existed"}}
                         .dump();
      appendAudit(entry);
    }
    if (version == 1 || version == 2) {
      migrateToWrites();
    }
    db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
    tx.commit();
  }

  /// Schema 2 -> 3, inside migrate()'s transaction: the change log becomes a write
  /// log and the field states one state per record. A write keeps the sequence
  /// number of its last change, so devices' pull cursors keep their meaning. The
  /// change log is kept as `legacy_changes` for the audit entries that name its rows
  /// (up to the legacy head), and one `baseline` entry covers the new write rows.
  void migrateToWrites() {
    db.exec("ALTER TABLE records ADD COLUMN state BLOB NOT NULL DEFAULT x''");
    db.exec(kWritesSchema);
    struct Pending {
      WriteKey key;
      std::string recordType;
      std::string ownerTeam;
      std::int64_t receivedMs = 0;
      std::int64_t seq = 0;
      std::vector<StoredField> fields;
    };
    std::vector<Pending> pending;
    std::map<std::tuple<sync::Uuid, sync::Hlc, sync::Uuid>, std::size_t> byKey;
    {
      sql::Statement st(db, "SELECT " + std::string(audit::kRowColumns) +
                                ", owner_team FROM changes ORDER BY seq");
      while (st.step()) {
        const protocol::Change c = changeFromRow(st);
        const auto key = std::tuple{c.deviceId, c.hlc, c.recordId};
        auto [it, added] = byKey.emplace(key, pending.size());
        if (added) {
          Pending p;
          p.key = {c.recordId, c.hlc, c.deviceId};
          p.recordType = c.recordType;
          p.ownerTeam = std::string(st.columnText(13));
          p.receivedMs = st.columnInt(11);
          pending.push_back(std::move(p));
        }
        Pending& p = pending[it->second];
        StoredField f;
        f.field = c.field;
        f.value = c.value;
        f.baseHlc = c.baseHlc;
        f.baseDeviceId = c.baseDeviceId;
        f.resolves = c.resolves;
        f.changeId = c.changeId;
        f.derivedId = c.changeId == sync::derivedChangeId(c.deviceId, c.recordId, c.field, c.hlc);
        f.outcome = parseMergeOutcome(st.columnText(12)).value_or(sync::MergeOutcome::fastForward);
        p.fields.push_back(std::move(f));
        p.seq = st.columnInt(0);
      }
    }
    std::sort(pending.begin(), pending.end(),
              [](const Pending& a, const Pending& b) { return a.seq < b.seq; });
    std::map<sync::Uuid, std::pair<std::int64_t, std::int64_t>> span; // first, last
    AuditEntry entry;
    {
      sql::Statement ins(db, "INSERT INTO writes(" + std::string(audit::kWriteColumns) +
                                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
      for (const Pending& p : pending) {
        const std::string fields = encodeStoredFields(p.fields);
        ins.reset();
        ins.bind(1, p.seq)
            .bindBlob(2, blob(p.key.recordId))
            .bind(3, p.recordType)
            .bind(4, static_cast<std::int64_t>(p.key.hlc.value))
            .bindBlob(5, blob(p.key.deviceId))
            .bind(6, p.ownerTeam)
            .bind(7, p.receivedMs)
            .bindBlob(8, blob(fields));
        ins.run();
        auto [it, added] = span.emplace(p.key.recordId, std::pair{p.seq, p.seq});
        it->second.second = p.seq;
        for (const StoredField& f : p.fields) {
          entry.changes.push_back(auditedStored(f, p.seq));
        }
      }
    }
    // One merge state per record, from its field states.
    std::map<sync::Uuid, sync::RecordState> states;
    {
      sql::Statement st(db, "SELECT record_id, field, state FROM field_states");
      while (st.step()) {
        states[idColumn(st, 0)].fields.emplace(std::string(st.columnText(1)),
                                               decodeFieldState(text(st.columnBlob(2))));
      }
    }
    {
      sql::Statement upd(db, "UPDATE records SET state = ?2, created_seq = ?3, updated_seq = ?4,"
                             " conflicts = ?5 WHERE record_id = ?1");
      for (const auto& [id, state] : states) {
        const auto [first, last] =
            span.contains(id) ? span.at(id) : std::pair<std::int64_t, std::int64_t>{0, 0};
        const std::string encoded = sync::encodeRecordState(state);
        upd.reset();
        upd.bindBlob(1, blob(id))
            .bindBlob(2, blob(encoded))
            .bind(3, std::int64_t{first})
            .bind(4, std::int64_t{last})
            .bind(5, static_cast<std::int64_t>(conflictFieldsOf(state).size()));
        upd.run();
      }
    }
    const std::int64_t legacyHead = db.queryInt("SELECT IFNULL(MAX(seq), 0) FROM audit_log");
    {
      sql::Statement set(db, "INSERT INTO server_settings(key, value) VALUES (?1, ?2)"
                             " ON CONFLICT(key) DO UPDATE SET value = excluded.value");
      set.bind(1, audit::kLegacyHeadSetting).bind(2, std::to_string(legacyHead));
      set.run();
    }
    db.exec("DROP INDEX IF EXISTS changes_by_record; DROP INDEX IF EXISTS changes_by_team;"
            "ALTER TABLE changes RENAME TO legacy_changes; DROP TABLE field_states;");
    if (!pending.empty()) {
      audit::RowsHash rows;
      sql::Statement st(db, "SELECT " + std::string(audit::kWriteColumns) +
                                " FROM writes ORDER BY seq");
      while (st.step()) {
        rows.add(audit::writeRowFrom(st, 0));
      }
      entry.atMs = nowMs();
      entry.kind = AuditKind::baseline;
      entry.actor = "server";
      entry.rowsHash = rows.finish();
      entry.detail = json{{"writes", pending.size()},
                          {"changes", entry.changes.size()},
                          {"note", "the change log regrouped as a write log (schema 3)"}}
                         .dump();
      appendAudit(entry);
    }
  }

  /// Appends inside the caller's write transaction.
  void appendAudit(AuditEntry& entry, audit::ChangeList format = audit::ChangeList::explicitIds) {
    if (entry.kind != AuditKind::push && entry.kind != AuditKind::baseline) {
      entry.rowsHash = audit::RowsHash().finish();
    }
    audit::append(statements, audit::Signer{keys.auditSigningKey, keys.auditPublicKey}, entry,
                  format);
  }

  /// An administrative entry by this connection's actor.
  void appendAdmin(AuditKind kind, json detail, const protocol::Uuid& device = {}) {
    AuditEntry entry;
    entry.atMs = nowMs();
    entry.kind = kind;
    entry.actor = actor;
    entry.device = device;
    entry.detail = detail.dump();
    appendAudit(entry);
  }

  /// True when `teams` (not empty) is exactly the scope recorded for the device.
  bool isRecordedScope(const protocol::Uuid& deviceId, const std::vector<std::string>& teams) {
    auto st = statements.use("SELECT team FROM device_scopes WHERE device_id = ?1");
    st->bindBlob(1, blob(deviceId));
    std::set<std::string> recorded;
    while (st->step()) {
      recorded.emplace(st->columnText(0));
    }
    return !teams.empty() && recorded == std::set<std::string>(teams.begin(), teams.end());
  }

  PolicyMap loadPolicies() {
    PolicyMap out;
    auto st = statements.use("SELECT record_type, field, policy FROM field_policies");
    while (st->step()) {
      out[std::string(st->columnText(0))][std::string(st->columnText(1))] =
          sync::parseMergePolicy(st->columnText(2)).value_or(sync::MergePolicy::lww);
    }
    return out;
  }

  std::vector<std::string> teamsOf(std::string_view workerId) {
    auto st =
        statements.use("SELECT team FROM worker_teams WHERE worker_id = ?1 ORDER BY position");
    st->bind(1, workerId);
    std::vector<std::string> out;
    while (st->step()) {
      out.emplace_back(st->columnText(0));
    }
    return out;
  }

  std::optional<RecordView> loadRecord(const std::array<std::uint8_t, 16>& id) {
    sql::Statement st(db, "SELECT record_type, owner_team, updated_seq, state FROM records"
                          " WHERE record_id = ?1");
    st.bindBlob(1, blob(id));
    if (!st.step()) {
      return std::nullopt;
    }
    RecordView view;
    view.recordId.bytes = id;
    view.recordType = std::string(st.columnText(0));
    view.ownerTeam = std::string(st.columnText(1));
    view.updatedSeq = st.columnInt(2);
    setState(view, st.columnBlob(3));
    return view;
  }

  static void setState(RecordView& view, std::span<const unsigned char> state) {
    view.state = sync::decodeRecordState(text(state), view.recordId);
    view.deleted = sync::isDeleted(view.state);
    view.conflictFields = conflictFieldsOf(view.state);
  }
};

fs::path SqliteServerStore::databasePath(const fs::path& dataDir) { return dataDir / "server.db"; }

SqliteServerStore::SqliteServerStore(const Context& context, const fs::path& dataDir,
                                     const ServerKeys& keys, bool create) {
  const fs::path path = databasePath(dataDir);
  if (!create && !fs::exists(path)) {
    throw Error(Errc::not_found, "no server store in '" + dataDir.string() +
                                     "'; run 'outpostctl --data " + dataDir.string() +
                                     " init' first");
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (create) {
    flags |= SQLITE_OPEN_CREATE;
  }
  impl_ = std::make_unique<Impl>(context, path, keys, flags);
}

SqliteServerStore::~SqliteServerStore() = default;

void SqliteServerStore::setActor(std::string actor) { impl_->actor = std::move(actor); }

void SqliteServerStore::setAutoCheckpoint(bool on) {
  impl_->db.exec(on ? "PRAGMA wal_autocheckpoint = 1000" : "PRAGMA wal_autocheckpoint = 0");
}

bool SqliteServerStore::idle() {
  sqlite3* db = impl_->db.handle();
  int walPages = 0;
  int copied = 0;
  int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &walPages, &copied);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    throw Error(Errc::io, std::string("checkpoint failed: ") + sqlite3_errstr(rc));
  }
  if (rc == SQLITE_BUSY || walPages <= 0 || copied != walPages) {
    return rc == SQLITE_OK && walPages <= 0;
  }
  // Everything is copied: truncate, without waiting for a reader of an older
  // snapshot (with no busy handler the checkpoint then stops as a PASSIVE one would).
  sqlite3_busy_timeout(db, 0);
  rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &walPages, &copied);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    throw Error(Errc::io, std::string("checkpoint failed: ") + sqlite3_errstr(rc));
  }
  return rc == SQLITE_OK;
}

void SqliteServerStore::addTeam(std::string_view name) {
  checkName(name, "a team name");
  sql::Transaction tx(impl_->db);
  sql::Statement st(impl_->db, "INSERT INTO teams(name) VALUES (?1) ON CONFLICT DO NOTHING");
  st.bind(1, name);
  st.run();
  if (impl_->db.changes() == 0) {
    throw Error(Errc::already_exists, "team '" + std::string(name) + "' already exists");
  }
  impl_->appendAdmin(AuditKind::teamAdd, {{"team", name}});
  tx.commit();
}

std::vector<std::string> SqliteServerStore::teams() {
  sql::Statement st(impl_->db, "SELECT name FROM teams ORDER BY name");
  std::vector<std::string> out;
  while (st.step()) {
    out.emplace_back(st.columnText(0));
  }
  return out;
}

void SqliteServerStore::addWorker(std::string_view id, const std::vector<std::string>& teams) {
  checkName(id, "a worker id");
  if (teams.empty()) {
    throw Error(Errc::invalid_argument, "a worker needs at least one team (--team NAME)");
  }
  sql::Transaction tx(impl_->db);
  for (const auto& team : teams) {
    sql::Statement st(impl_->db, "SELECT 1 FROM teams WHERE name = ?1");
    st.bind(1, team);
    if (!st.step()) {
      throw Error(Errc::not_found,
                  "there is no team '" + team + "'; add it first with 'outpostctl team add'");
    }
  }
  sql::Statement ins(impl_->db, "INSERT INTO workers(id) VALUES (?1) ON CONFLICT DO NOTHING");
  ins.bind(1, id);
  ins.run();
  if (impl_->db.changes() == 0) {
    throw Error(Errc::already_exists, "worker '" + std::string(id) + "' already exists");
  }
  std::int64_t position = 0;
  for (const auto& team : teams) {
    sql::Statement st(impl_->db, "INSERT OR IGNORE INTO worker_teams(worker_id, team, position)"
                                 " VALUES (?1, ?2, ?3)");
    st.bind(1, id).bind(2, team).bind(3, position++);
    st.run();
  }
  impl_->appendAdmin(AuditKind::workerAdd, {{"worker", id}, {"teams", teams}});
  tx.commit();
}

void SqliteServerStore::setWorkerTeams(std::string_view id, const std::vector<std::string>& teams) {
  if (teams.empty()) {
    throw Error(Errc::invalid_argument, "a worker needs at least one team (--team NAME)");
  }
  sql::Transaction tx(impl_->db);
  const auto before = findWorker(id);
  if (!before) {
    throw Error(Errc::not_found, "there is no worker '" + std::string(id) +
                                     "'; add it with 'outpostctl worker add'");
  }
  for (const auto& team : teams) {
    sql::Statement st(impl_->db, "SELECT 1 FROM teams WHERE name = ?1");
    st.bind(1, team);
    if (!st.step()) {
      throw Error(Errc::not_found,
                  "there is no team '" + team + "'; add it first with 'outpostctl team add'");
    }
  }
  sql::Statement clear(impl_->db, "DELETE FROM worker_teams WHERE worker_id = ?1");
  clear.bind(1, id);
  clear.run();
  std::int64_t position = 0;
  for (const auto& team : teams) {
    sql::Statement st(impl_->db, "INSERT OR IGNORE INTO worker_teams(worker_id, team, position)"
                                 " VALUES (?1, ?2, ?3)");
    st.bind(1, id).bind(2, team).bind(3, position++);
    st.run();
  }
  impl_->appendAdmin(AuditKind::workerSetTeams,
                     {{"worker", id}, {"teams", teams}, {"previousTeams", before->teams}});
  tx.commit();
}

std::optional<Worker> SqliteServerStore::findWorker(std::string_view id) {
  {
    auto st = impl_->statements.use("SELECT 1 FROM workers WHERE id = ?1");
    st->bind(1, id);
    if (!st->step()) {
      return std::nullopt;
    }
  }
  return Worker{std::string(id), impl_->teamsOf(id)};
}

std::vector<Worker> SqliteServerStore::workers() {
  std::vector<Worker> out;
  sql::Statement st(impl_->db, "SELECT id FROM workers ORDER BY id");
  while (st.step()) {
    out.push_back(Worker{std::string(st.columnText(0)), {}});
  }
  for (auto& w : out) {
    w.teams = impl_->teamsOf(w.id);
  }
  return out;
}

std::vector<DeviceInfo> SqliteServerStore::devices() {
  sql::Statement st(impl_->db,
                    "SELECT public_key, device_id, worker_id, team_id, revoked,"
                    " enrolled_ms FROM protocol_devices ORDER BY enrolled_ms, device_id");
  std::vector<DeviceInfo> out;
  while (st.step()) {
    DeviceInfo d;
    const auto key = st.columnBlob(0);
    if (key.size() != d.record.publicKey.size()) {
      throw Error(Errc::corrupt, "a stored device key is damaged");
    }
    std::copy(key.begin(), key.end(), d.record.publicKey.begin());
    d.record.deviceId = uuidColumn(st, 1);
    d.record.workerId = std::string(st.columnText(2));
    d.record.teamId = std::string(st.columnText(3));
    d.record.revoked = st.columnInt(4) != 0;
    d.enrolledMs = st.columnInt(5);
    out.push_back(std::move(d));
  }
  return out;
}

std::optional<std::string> SqliteServerStore::setting(std::string_view key) {
  sql::Statement st(impl_->db, "SELECT value FROM server_settings WHERE key = ?1");
  st.bind(1, key);
  if (!st.step()) {
    return std::nullopt;
  }
  return std::string(st.columnText(0));
}

void SqliteServerStore::setSetting(std::string_view key, std::string_view value) {
  sql::Statement st(impl_->db, "INSERT INTO server_settings(key, value) VALUES (?1, ?2)"
                               " ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  st.bind(1, key).bind(2, value);
  st.run();
}

protocol::DeviceRegistry& SqliteServerStore::deviceRegistry() { return impl_->devices; }
protocol::EnrollmentRegistry& SqliteServerStore::enrollmentRegistry() { return impl_->enrollment; }

protocol::IssuedCode SqliteServerStore::issueEnrollmentCode(std::string_view workerId,
                                                            std::chrono::seconds ttl,
                                                            protocol::Clock::time_point now) {
  const auto worker = findWorker(workerId);
  if (!worker || worker->teams.empty()) {
    throw Error(Errc::not_found, "there is no worker '" + std::string(workerId) +
                                     "'; add it first with 'outpostctl worker add'");
  }
  protocol::IssuedCode code =
      impl_->enrollment.issueEnrollmentCode(worker->id, worker->teams.front(), ttl, now);
  // The registry committed the code in its own transaction; the code itself is
  // never written to the audit chain.
  sql::Transaction tx(impl_->db);
  impl_->appendAdmin(AuditKind::enrollIssue,
                     {{"worker", worker->id},
                      {"team", worker->teams.front()},
                      {"expiresMs", std::chrono::duration_cast<std::chrono::milliseconds>(
                                        code.expiresAt.time_since_epoch())
                                        .count()}});
  tx.commit();
  return code;
}

bool SqliteServerStore::revokeDevice(const protocol::Uuid& deviceId) {
  sql::Transaction tx(impl_->db);
  const auto device = impl_->devices.findById(deviceId);
  if (!device || !impl_->devices.revoke(deviceId)) {
    return false;
  }
  impl_->appendAdmin(AuditKind::deviceRevoke,
                     {{"device", uuidText(deviceId)}, {"worker", device->workerId}}, deviceId);
  tx.commit();
  return true;
}

void SqliteServerStore::recordAudit(AuditKind kind, std::string_view actor,
                                    const protocol::Uuid& device, std::string_view detailJson) {
  if (kind == AuditKind::push || kind == AuditKind::baseline) {
    throw Error(Errc::invalid_argument, "push entries are written by push() only");
  }
  sql::Transaction tx(impl_->db);
  AuditEntry entry;
  entry.atMs = nowMs();
  entry.kind = kind;
  entry.actor = std::string(actor);
  entry.device = device;
  entry.detail = std::string(detailJson);
  impl_->appendAudit(entry);
  tx.commit();
}

std::vector<AuditEntry> SqliteServerStore::auditEntries(std::int64_t afterSeq, std::size_t limit) {
  return audit::list(impl_->db, afterSeq, limit);
}

std::vector<AuditEntry> SqliteServerStore::lastAuditEntries(std::size_t count) {
  const std::int64_t last = impl_->db.queryInt("SELECT IFNULL(MAX(seq), 0) FROM audit_log");
  const auto n = static_cast<std::int64_t>(std::min<std::size_t>(count, INT64_MAX));
  return audit::list(impl_->db, std::max<std::int64_t>(0, last - n), count);
}

AuditVerification SqliteServerStore::verifyAudit() {
  sql::Transaction tx(impl_->db, false); // one snapshot of the chain and the change log
  AuditVerification v = audit::verify(impl_->db, impl_->keys.auditPublicKey);
  tx.commit();
  return v;
}

std::size_t SqliteServerStore::setFieldPolicies(const std::vector<FieldPolicy>& policies) {
  sql::Database& db = impl_->db;
  sql::Transaction tx(db);
  std::size_t changed = 0;
  sql::Statement current(db, "SELECT policy FROM field_policies WHERE record_type = ?1"
                             " AND field = ?2");
  sql::Statement upsert(db, "INSERT INTO field_policies(record_type, field, policy)"
                            " VALUES (?1, ?2, ?3) ON CONFLICT(record_type, field)"
                            " DO UPDATE SET policy = excluded.policy");
  sql::Statement remove(db, "DELETE FROM field_policies WHERE record_type = ?1 AND field = ?2");
  for (const FieldPolicy& p : policies) {
    current.reset();
    current.bind(1, p.recordType).bind(2, p.field);
    sync::MergePolicy before = sync::MergePolicy::lww;
    if (current.step()) {
      before = sync::parseMergePolicy(current.columnText(0)).value_or(sync::MergePolicy::lww);
    }
    current.reset();
    if (p.policy == sync::MergePolicy::lww) {
      remove.reset();
      remove.bind(1, p.recordType).bind(2, p.field);
      remove.run();
    } else {
      upsert.reset();
      upsert.bind(1, p.recordType).bind(2, p.field).bind(3, sync::mergePolicyName(p.policy));
      upsert.run();
    }
    if (before == p.policy) {
      continue;
    }
    ++changed;
    // Merging is order-independent: replaying the field's changes with the new policy
    // gives the state every device that merges with it reaches.
    std::map<sync::Uuid, sync::FieldState> states;
    sql::Statement writes(db, "SELECT record_id, hlc, device_id, fields FROM writes"
                              " WHERE record_type = ?1 ORDER BY seq");
    writes.bind(1, p.recordType);
    while (writes.step()) {
      const WriteKey key{idColumn(writes, 0),
                         sync::Hlc{static_cast<std::uint64_t>(writes.columnInt(1))},
                         idColumn(writes, 2)};
      for (StoredField& f : decodeStoredFields(text(writes.columnBlob(3)), key)) {
        if (f.field != p.field) {
          continue;
        }
        sync::Change c;
        c.changeId = f.changeId;
        c.recordId = key.recordId;
        c.recordType = p.recordType;
        c.field = std::move(f.field);
        c.value = std::move(f.value);
        c.hlc = key.hlc;
        c.deviceId = key.deviceId;
        c.baseHlc = f.baseHlc;
        c.baseDeviceId = f.baseDeviceId;
        c.resolves = std::move(f.resolves);
        (void)sync::merge(states[key.recordId], c, p.policy, false);
      }
    }
    sql::Statement load(db, "SELECT state FROM records WHERE record_id = ?1");
    sql::Statement save(db, "UPDATE records SET state = ?2, conflicts = ?3 WHERE record_id = ?1");
    std::size_t touched = 0;
    for (const auto& [id, state] : states) {
      load.reset();
      load.bindBlob(1, blob(id));
      if (!load.step()) {
        continue;
      }
      sync::RecordState record = sync::decodeRecordState(text(load.columnBlob(0)));
      sync::FieldState& field = record.fields[p.field];
      field = state;
      elideDerivedIds(field, id, p.field);
      const std::string encoded = sync::encodeRecordState(record);
      save.reset();
      save.bindBlob(1, blob(id))
          .bindBlob(2, blob(encoded))
          .bind(3, static_cast<std::int64_t>(conflictFieldsOf(record).size()));
      save.run();
      ++touched;
    }
    impl_->context.log().info("merge policy of {}.{} is now {}: {} record(s) re-merged",
                              p.recordType, p.field, sync::mergePolicyName(p.policy), touched);
  }
  tx.commit();
  return changed;
}

std::vector<FieldPolicy> SqliteServerStore::fieldPolicies() {
  sql::Statement st(impl_->db, "SELECT record_type, field, policy FROM field_policies"
                               " ORDER BY record_type, field");
  std::vector<FieldPolicy> out;
  while (st.step()) {
    out.push_back({std::string(st.columnText(0)), std::string(st.columnText(1)),
                   sync::parseMergePolicy(st.columnText(2)).value_or(sync::MergePolicy::lww)});
  }
  return out;
}

PushResult SqliteServerStore::push(const PushContext& context,
                                   const std::vector<protocol::Change>& changes) {
  sql::Transaction tx(impl_->db);
  PushResult out = applyBatch(context, changes);
  tx.commit();
  return out;
}

std::vector<PushResult> SqliteServerStore::pushGroup(std::span<const PushRequest> batches) {
  sql::Transaction tx(impl_->db);
  std::vector<PushResult> out;
  out.reserve(batches.size());
  for (const PushRequest& batch : batches) {
    out.push_back(applyBatch(batch.context, batch.changes));
  }
  tx.commit();
  return out;
}

PushResult SqliteServerStore::applyBatch(const PushContext& context,
                                         const std::vector<protocol::Change>& changes) {
  sql::Database& db = impl_->db;
  PushResult out;
  out.results.reserve(changes.size());

  auto seen = impl_->statements.use(
      "SELECT 1 FROM writes WHERE device_id = ?1 AND hlc = ?2 AND record_id = ?3");
  auto findRecord = impl_->statements.use(
      "SELECT record_type, owner_team, state FROM records WHERE record_id = ?1");
  auto insertRecord = impl_->statements.use(
      "INSERT INTO records(record_id, record_type, owner_team, created_seq, updated_seq,"
      " conflicts, state) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)");
  auto updateRecord = impl_->statements.use(
      "UPDATE records SET updated_seq = ?2, conflicts = ?3, state = ?4 WHERE record_id = ?1");
  auto insertWrite = impl_->statements.use(
      "INSERT INTO writes(record_id, record_type, hlc, device_id, owner_team, received_ms,"
      " fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  const auto policies = impl_->loadPolicies();

  std::vector<std::int64_t> storedSeqs; // parallel to out.results; 0 = not stored
  storedSeqs.reserve(changes.size());
  std::vector<protocol::Uuid> auditIds; // parallel to out.results
  auditIds.reserve(changes.size());
  audit::RowsHash rowsHash;
  const std::uint64_t skewLimitMs =
      static_cast<std::uint64_t>(std::max<std::int64_t>(context.nowMs, 0)) +
      static_cast<std::uint64_t>(context.maxSkew.count());
  // Results carry each id as the device sent it, as its acknowledgement does. The
  // audit entry carries a change's effective id (derived where the device left it
  // out) if it was not stored; a stored one is listed by its write row.
  const auto add = [&](const protocol::Change& c, const sync::Uuid& auditId,
                       protocol::ChangeOutcome outcome, Errc reason, std::int64_t seq) {
    out.results.push_back({c.changeId.bytes, outcome, reason});
    auditIds.push_back(auditId.bytes);
    storedSeqs.push_back(seq);
    switch (outcome) {
    case protocol::ChangeOutcome::applied:
      ++out.applied;
      break;
    case protocol::ChangeOutcome::duplicate:
      ++out.duplicates;
      break;
    case protocol::ChangeOutcome::conflict:
      ++out.conflicts;
      break;
    case protocol::ChangeOutcome::rejected:
      ++out.rejected;
      break;
    }
  };

  // The merge state of the write's record. Its map's nodes are kept from one write to
  // the next (`spare`): a new record takes them instead of allocating one per field.
  sync::RecordState record;
  std::vector<decltype(record.fields)::node_type> spare;
  const auto fieldSlot = [&](const std::string& field) -> sync::FieldState& {
    auto& fields = record.fields;
    if (!spare.empty() && (fields.empty() || fields.rbegin()->first < field)) {
      auto node = std::move(spare.back());
      spare.pop_back();
      node.key() = field;
      node.mapped() = sync::FieldState{};
      return fields.insert(fields.end(), std::move(node))->second;
    }
    // A write lists its fields in name order: the hint makes each new one's
    // insertion O(1) (a wrong hint only costs the usual search).
    return fields.try_emplace(fields.end(), field)->second;
  };
  std::vector<StoredField> stored;
  std::vector<std::pair<protocol::ChangeOutcome, Errc>> outcomes;
  std::vector<sync::Uuid> ids;
  std::vector<DerivedVersion> derivedVersions; // of the field being merged

  // One write at a time: a run of consecutive changes with the same record, type,
  // HLC and device (a device sends a write's changes together).
  for (std::size_t first = 0; first < changes.size();) {
    while (!record.fields.empty()) {
      spare.push_back(record.fields.extract(record.fields.begin()));
    }
    const protocol::Change& head = changes[first];
    std::size_t last = first + 1;
    while (last < changes.size() && protocol::sameWrite(changes[last], head)) {
      ++last;
    }
    const std::span<const protocol::Change> write(changes.data() + first, last - first);
    first = last;
    const auto refuseAll = [&](Errc reason) {
      for (const protocol::Change& c : write) {
        add(c, protocol::effectiveChangeId(c), protocol::ChangeOutcome::rejected, reason, 0);
      }
    };

    // A device pushes what it wrote; anything else would let it speak for another.
    if (head.deviceId.bytes != context.device.deviceId) {
      refuseAll(Errc::auth_failed);
      continue;
    }
    findRecord->reset();
    findRecord->bindBlob(1, blob(head.recordId));
    const bool newRecord = !findRecord->step();
    // The same write again (a retry after a lost acknowledgement): nothing to do.
    // Writes are stored with their record and records are never deleted, so only
    // a record the store holds can have one.
    if (!newRecord) {
      seen->reset();
      seen->bindBlob(1, blob(head.deviceId))
          .bind(2, static_cast<std::int64_t>(head.hlc.value))
          .bindBlob(3, blob(head.recordId));
      if (seen->step()) {
        for (const protocol::Change& c : write) {
          add(c, protocol::effectiveChangeId(c), protocol::ChangeOutcome::duplicate, Errc::ok, 0);
        }
        continue;
      }
    }
    std::string ownerTeam;
    if (!newRecord) {
      ownerTeam = std::string(findRecord->columnText(1));
      if (std::find(context.worker.teams.begin(), context.worker.teams.end(), ownerTeam) ==
          context.worker.teams.end()) {
        refuseAll(Errc::out_of_scope);
        continue;
      }
      if (findRecord->columnText(0) != head.recordType) {
        refuseAll(Errc::validation);
        continue;
      }
      record = sync::decodeRecordState(text(findRecord->columnBlob(2)));
    } else {
      if (context.worker.teams.empty()) {
        refuseAll(Errc::out_of_scope);
        continue;
      }
      ownerTeam = context.worker.teams.front();
    }
    if (sync::Hlc{head.hlc}.physicalMs() > skewLimitMs) {
      refuseAll(Errc::clock_skew);
      continue;
    }

    // Merge every field; the ones that change the record's state are stored.
    //
    // A derived change id stays all-zero in the record's state, which then stores a
    // flag for it (sync::encodeRecordState), and is computed only where it is
    // compared: a field that holds versions gets its versions' ids for the merge
    // and loses them again after. So a new record's write derives no id at all.
    std::optional<sync::ChangeIdDeriver> derive; // made only when an id is needed
    stored.clear();
    outcomes.clear();
    ids.clear();
    stored.reserve(write.size());
    outcomes.reserve(write.size());
    ids.reserve(write.size());
    const auto derivedOf = [&](const protocol::Change& c) {
      if (!derive) {
        derive.emplace(head.deviceId, head.recordId, head.hlc);
      }
      return (*derive)(c.field);
    };
    const sync::Uuid& recordId = head.recordId;
    for (const protocol::Change& c : write) {
      const sync::MergePolicy policy = policyOf(policies, c.recordType, c.field);
      // The server does not know which records are signed (the signature is a field
      // like any other to it): frozen is decided on the devices.
      // An id the device left out is derived; one it sent is kept, and is not stored
      // either when it is the derived one.
      const bool elided = c.changeId.isNil();
      const bool derivedId = elided || c.changeId == derivedOf(c);
      // Append-only entries keep their ids in the state (a long list is not derived
      // again at every append); a current or competing version keeps a derived one
      // all-zero.
      const bool keepIds = policy == sync::MergePolicy::appendOnly;
      sync::FieldState& state = fieldSlot(c.field);
      const bool fresh = !state.current && state.conflicts.empty() && state.entries.empty() &&
                         state.superseded.empty();
      sync::Change change = c;
      if (elided && (keepIds || !fresh)) {
        change.changeId = derivedOf(c);
      } else if (derivedId && !keepIds && fresh) {
        change.changeId = sync::Uuid{}; // a derived id sent spelled out
      }
      if (!fresh) {
        derivedVersions.clear();
        fillDerivedIds(state, recordId, c.field, derivedVersions);
        if (derivedId && !keepIds) {
          derivedVersions.push_back({change.hlc, change.deviceId, change.changeId});
        }
      }
      const sync::MergeOutcome merged = sync::merge(state, change, policy, false);
      if (!fresh) {
        forgetDerivedIds(state, derivedVersions);
      }
      // The id the audit lists a change not stored by (a stored one is its row's).
      const auto effectiveId = [&] {
        return change.changeId.isNil() ? derivedOf(c) : change.changeId;
      };
      if (merged == sync::MergeOutcome::duplicate) {
        ids.push_back(effectiveId());
        outcomes.emplace_back(protocol::ChangeOutcome::duplicate, Errc::ok);
        continue;
      }
      if (merged == sync::MergeOutcome::rejected) {
        ids.push_back(effectiveId());
        outcomes.emplace_back(protocol::ChangeOutcome::rejected, Errc::validation);
        continue;
      }
      ids.push_back(change.changeId);
      const bool conflict = merged == sync::MergeOutcome::won || merged == sync::MergeOutcome::lost;
      outcomes.emplace_back(conflict ? protocol::ChangeOutcome::conflict
                                     : protocol::ChangeOutcome::applied,
                            conflict ? Errc::conflict : Errc::ok);
      StoredField f;
      f.derivedId = derivedId;
      f.changeId = change.changeId;
      f.field = std::move(change.field);
      f.value = std::move(change.value);
      f.baseHlc = c.baseHlc;
      f.baseDeviceId = c.baseDeviceId;
      f.resolves = c.resolves;
      f.outcome = merged;
      stored.push_back(std::move(f));
    }
    std::int64_t seq = 0;
    if (!stored.empty()) {
      const std::string fields = encodeStoredFields(stored);
      audit::WriteRow row;
      row.recordId = blob(head.recordId);
      row.recordType = head.recordType;
      row.hlc = static_cast<std::int64_t>(head.hlc.value);
      row.deviceId = blob(head.deviceId);
      row.ownerTeam = ownerTeam;
      row.receivedMs = context.nowMs;
      row.fields = blob(fields);
      insertWrite->reset();
      insertWrite->bindBlob(1, row.recordId)
          .bind(2, row.recordType)
          .bind(3, row.hlc)
          .bindBlob(4, row.deviceId)
          .bind(5, row.ownerTeam)
          .bind(6, row.receivedMs)
          .bindBlob(7, row.fields);
      insertWrite->run();
      seq = db.lastInsertRowid();
      row.seq = seq;
      rowsHash.add(row);

      std::erase_if(record.fields, [](const auto& f) { return f.second == sync::FieldState{}; });
      const std::string state = sync::encodeRecordState(record);
      const auto conflicts = static_cast<std::int64_t>(conflictFieldsOf(record).size());
      auto& st = newRecord ? insertRecord : updateRecord;
      st->reset();
      if (newRecord) {
        st->bindBlob(1, blob(head.recordId))
            .bind(2, head.recordType)
            .bind(3, ownerTeam)
            .bind(4, seq)
            .bind(5, conflicts)
            .bindBlob(6, blob(state));
      } else {
        st->bindBlob(1, blob(head.recordId))
            .bind(2, seq)
            .bind(3, conflicts)
            .bindBlob(4, blob(state));
      }
      st->run();
    }
    for (std::size_t i = 0; i < write.size(); ++i) {
      const bool isStored = outcomes[i].first == protocol::ChangeOutcome::applied ||
                            outcomes[i].first == protocol::ChangeOutcome::conflict;
      add(write[i], ids[i], outcomes[i].first, outcomes[i].second, isStored ? seq : 0);
    }
  }

  // The batch's audit entry, in the same transaction: what the device was told,
  // change by change, and a hash of every row stored.
  AuditEntry entry;
  entry.atMs = context.nowMs;
  entry.kind = AuditKind::push;
  entry.actor = context.worker.id;
  entry.device = context.device.deviceId;
  entry.changes.reserve(out.results.size());
  // A list longer than a batch is kept with every id (audit::append): a stored
  // change's id is then derived here.
  const bool listsIds = out.results.size() > protocol::limits::kChanges;
  for (std::size_t i = 0; i < out.results.size(); ++i) {
    if (listsIds && protocol::isElidedId(auditIds[i])) {
      auditIds[i] = protocol::effectiveChangeId(changes[i]).bytes;
    }
    entry.changes.push_back({auditIds[i], out.results[i].outcome,
                             static_cast<std::uint16_t>(out.results[i].reason), storedSeqs[i]});
  }
  entry.rowsHash = rowsHash.finish();
  entry.detail = json{{"batch", uuidText(context.batchId)},
                      {"changes", changes.size()},
                      {"applied", out.applied},
                      {"duplicate", out.duplicates},
                      {"conflict", out.conflicts},
                      {"rejected", out.rejected}}
                     .dump();
  // Its stored changes as runs over their write rows: a few bytes per write.
  impl_->appendAudit(entry, audit::ChangeList::writeRuns);
  return out;
}

protocol::PullReply SqliteServerStore::pull(const Worker& worker, const protocol::Uuid& requester,
                                            std::uint64_t cursor, std::uint32_t limit,
                                            bool elideDerivedIds) {
  limit = std::clamp<std::uint32_t>(limit, 1, protocol::limits::kPullLimit);
  sql::Database& db = impl_->db;
  // One read transaction: the rows and the last sequence number agree.
  sql::Transaction tx(db, false);
  // One index range scan per team of the worker (from the team's first write after
  // the cursor, in sequence order), merged by sequence number: a pull reads only the
  // writes it returns, however many other teams wrote meanwhile. Writes the
  // requesting device pushed itself are left out (it has them).
  const std::vector<std::string> names = impl_->teamsOf(worker.id);
  std::vector<sql::Statement> teams;
  teams.reserve(names.size());
  std::vector<bool> pending;
  for (const std::string& team : names) {
    teams.emplace_back(db, "SELECT seq, record_id, record_type, hlc, device_id, fields"
                           " FROM writes WHERE owner_team = ?1 AND seq > ?2"
                           " AND device_id <> ?4 ORDER BY seq LIMIT ?3");
    teams.back()
        .bind(1, team)
        .bind(2, static_cast<std::int64_t>(std::min<std::uint64_t>(cursor, INT64_MAX)))
        .bind(3, std::int64_t{limit} + 1) // every write holds at least one change
        .bindBlob(4, blob(requester));
    pending.push_back(teams.back().step());
  }
  protocol::PullReply reply;
  reply.changes.reserve(limit);
  std::size_t bytes = 0;
  std::uint64_t lastSeq = cursor;
  for (;;) {
    std::size_t next = teams.size();
    for (std::size_t i = 0; i < teams.size(); ++i) {
      if (pending[i] &&
          (next == teams.size() || teams[i].columnInt(0) < teams[next].columnInt(0))) {
        next = i;
      }
    }
    if (next == teams.size()) {
      break;
    }
    sql::Statement& st = teams[next];
    // Whole writes only, so a device never shows half a record: stop before the
    // write that would pass the limit (a reply holds at least one write).
    const WriteKey key{idColumn(st, 1), sync::Hlc{static_cast<std::uint64_t>(st.columnInt(3))},
                       idColumn(st, 4)};
    std::vector<StoredField> fields =
        decodeStoredFields(text(st.columnBlob(5)), key, !elideDerivedIds);
    if (!reply.changes.empty() &&
        (reply.changes.size() + fields.size() > limit || bytes > kPullReplyBudget)) {
      reply.more = true;
      break;
    }
    if (reply.changes.size() + fields.size() > protocol::limits::kChanges) {
      throw Error(Errc::corrupt, "a stored write holds more changes than a reply may carry");
    }
    bytes += st.columnBlob(5).size();
    lastSeq = static_cast<std::uint64_t>(st.columnInt(0));
    const std::string_view recordType = st.columnText(2);
    for (StoredField& f : fields) {
      protocol::Change& c = reply.changes.emplace_back();
      c.changeId = f.changeId;
      c.recordId = key.recordId;
      c.recordType = recordType;
      c.field = std::move(f.field);
      c.value = std::move(f.value);
      c.hlc = key.hlc;
      c.deviceId = key.deviceId;
      c.baseHlc = f.baseHlc;
      c.baseDeviceId = f.baseDeviceId;
      c.resolves = std::move(f.resolves);
    }
    pending[next] = st.step();
  }
  if (reply.more) {
    reply.nextCursor = lastSeq;
  } else {
    // Nothing more the worker may see: skip past what they may not, too.
    reply.nextCursor = std::max(cursor, lastSequence());
  }
  tx.commit();
  return reply;
}

bool SqliteServerStore::publishTemplate(std::string_view document) {
  const model::TemplateLoadResult parsed = model::parseTemplate(document);
  if (!parsed.loaded) {
    std::string text = "the template does not load:";
    for (const auto& problem : parsed.problems) {
      text += "\n  " + problem.path + ": " + problem.message;
    }
    throw Error(Errc::invalid_template, text);
  }
  const model::Template& t = *parsed.loaded;
  if (t.status() != model::TemplateStatus::published) {
    throw Error(Errc::invalid_template,
                "template " + t.id() + " version " + std::to_string(t.version()) +
                    " is a draft; set \"status\": \"published\" and its content_hash first "
                    "(docs/templates.md)");
  }
  sql::Transaction tx(impl_->db);
  sql::Statement existing(impl_->db, "SELECT content_hash FROM templates WHERE template_id = ?1"
                                     " AND version = ?2");
  existing.bind(1, t.id()).bind(2, t.version());
  if (existing.step()) {
    if (existing.columnText(0) != t.contentHash()) {
      throw Error(Errc::already_exists,
                  "template " + t.id() + " version " + std::to_string(t.version()) +
                      " is already published with other content; a published version never "
                      "changes: give the new content the next version");
    }
    return false;
  }
  sql::Statement ins(impl_->db, "INSERT INTO templates(template_id, version, content_hash,"
                                " document, published_ms) VALUES (?1, ?2, ?3, ?4, ?5)");
  ins.bind(1, t.id())
      .bind(2, t.version())
      .bind(3, t.contentHash())
      .bind(4, document)
      .bind(5, nowMs());
  ins.run();
  impl_->appendAdmin(
      AuditKind::templatePublish,
      {{"template", t.id()}, {"version", t.version()}, {"contentHash", t.contentHash()}});
  tx.commit();
  return true;
}

std::vector<PublishedTemplate> SqliteServerStore::publishedTemplates() {
  sql::Statement st(impl_->db, "SELECT template_id, version, published_ms, content_hash"
                               " FROM templates ORDER BY template_id, version");
  std::vector<PublishedTemplate> out;
  while (st.step()) {
    out.push_back({std::string(st.columnText(0)), st.columnInt(1), st.columnInt(2),
                   std::string(st.columnText(3))});
  }
  return out;
}

DeviceScope SqliteServerStore::pendingCommands(const protocol::DeviceRecord& device,
                                               const std::vector<std::string>& deviceTemplates) {
  DeviceScope scope;
  sql::Transaction tx(impl_->db, false); // the teams and the records agree
  scope.teams = impl_->teamsOf(device.workerId);
  scope.recorded = impl_->isRecordedScope(device.deviceId, scope.teams);
  // Only the teams the device had and the worker left are looked into (usually none:
  // then no record is read, however many the server holds).
  sql::Statement st(
      impl_->db, "SELECT r.record_id FROM device_scopes s JOIN records r ON r.owner_team = s.team"
                 " WHERE s.device_id = ?1"
                 " AND s.team NOT IN (SELECT team FROM worker_teams WHERE worker_id = ?2)"
                 " ORDER BY r.record_id");
  st.bindBlob(1, blob(device.deviceId)).bind(2, device.workerId);
  auto& commands = scope.commands;
  while (st.step()) {
    if (commands.empty() ||
        std::get<protocol::PurgeRecords>(commands.back().action).recordIds.size() ==
            protocol::limits::kPurgeRecords) {
      if (commands.size() == protocol::limits::kCommands) {
        break; // best effort: more than 25 million records left the scope at once
      }
      commands.push_back({sync::Uuid::random().bytes, protocol::PurgeRecords{}});
    }
    std::get<protocol::PurgeRecords>(commands.back().action).recordIds.push_back(uuidColumn(st, 0));
  }
  // Published templates the device does not have, oldest first within the budget.
  const std::set<std::string, std::less<>> has(deviceTemplates.begin(), deviceTemplates.end());
  sql::Statement templates(impl_->db, "SELECT template_id, version, document FROM templates"
                                      " ORDER BY published_ms, template_id, version");
  protocol::TemplateUpdate update;
  std::size_t bytes = 0;
  while (templates.step()) {
    const std::string ref =
        std::string(templates.columnText(0)) + "@" + std::to_string(templates.columnInt(1));
    const std::string_view document = templates.columnText(2);
    if (has.contains(ref)) {
      continue;
    }
    if ((!update.templates.empty() && bytes + document.size() > kTemplateBudget) ||
        update.templates.size() == protocol::limits::kTemplates) {
      break; // the rest at the next session
    }
    bytes += document.size();
    update.templates.emplace_back(document);
  }
  if (!update.templates.empty() && commands.size() < protocol::limits::kCommands) {
    commands.push_back({sync::Uuid::random().bytes, std::move(update)});
  }
  tx.commit();
  return scope;
}

void SqliteServerStore::acknowledgeScope(const protocol::DeviceRecord& device,
                                         const std::vector<std::string>& teams) {
  // Most sessions start with the scope the device already had: then nothing is
  // written (a write here costs every reconnecting device a commit).
  if (impl_->isRecordedScope(device.deviceId, teams)) {
    return;
  }
  sql::Transaction tx(impl_->db);
  sql::Statement clear(impl_->db, "DELETE FROM device_scopes WHERE device_id = ?1");
  clear.bindBlob(1, blob(device.deviceId));
  clear.run();
  for (const auto& team : teams) {
    sql::Statement add(impl_->db, "INSERT OR IGNORE INTO device_scopes(device_id, team)"
                                  " VALUES (?1, ?2)");
    add.bindBlob(1, blob(device.deviceId)).bind(2, team);
    add.run();
  }
  tx.commit();
}

std::uint64_t SqliteServerStore::lastSequence() {
  return static_cast<std::uint64_t>(impl_->db.queryInt("SELECT IFNULL(MAX(seq), 0) FROM writes"));
}

std::vector<ConflictSummary> SqliteServerStore::conflicts() {
  std::vector<std::array<std::uint8_t, 16>> ids;
  {
    sql::Statement st(impl_->db, "SELECT record_id FROM records WHERE conflicts > 0"
                                 " ORDER BY updated_seq");
    while (st.step()) {
      ids.push_back(uuidColumn(st, 0));
    }
  }
  std::vector<ConflictSummary> out;
  for (const auto& id : ids) {
    if (auto view = impl_->loadRecord(id)) {
      out.push_back({view->recordId, view->recordType, view->ownerTeam, view->conflictFields});
    }
  }
  return out;
}

std::optional<RecordView> SqliteServerStore::record(const sync::Uuid& recordId) {
  return impl_->loadRecord(recordId.bytes);
}

std::int64_t SqliteServerStore::recordCount() {
  return impl_->db.queryInt("SELECT COUNT(*) FROM records");
}

void SqliteServerStore::forEachRecord(const std::function<void(const RecordView&)>& visit) {
  sql::Transaction tx(impl_->db, false);
  sql::Statement st(impl_->db, "SELECT record_id, record_type, owner_team, updated_seq, state"
                               " FROM records ORDER BY record_id");
  while (st.step()) {
    RecordView view;
    view.recordId.bytes = uuidColumn(st, 0);
    view.recordType = std::string(st.columnText(1));
    view.ownerTeam = std::string(st.columnText(2));
    view.updatedSeq = st.columnInt(3);
    Impl::setState(view, st.columnBlob(4));
    visit(view);
  }
  tx.commit();
}

} // namespace outpost::server
