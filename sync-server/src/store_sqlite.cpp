// The embedded server store on SQLite (WAL). One object = one connection.

#include "audit_chain.hpp"
#include "statement_cache.hpp"

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/server/sqlite_store.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

namespace outpost::server {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxName = 256;
/// A pull reply stops adding changes past this many value bytes (the message limit is
/// 16 MiB; leave room for the envelope and the other fields).
constexpr std::size_t kPullReplyBudget = 8u << 20;
/// A pull reply may go this many changes past its limit to finish a write.
constexpr std::uint32_t kWriteTail = 1024;

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
  conflicts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS records_in_conflict ON records(conflicts) WHERE conflicts > 0;
CREATE TABLE IF NOT EXISTS changes(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  change_id BLOB NOT NULL UNIQUE,
  record_id BLOB NOT NULL,
  record_type TEXT NOT NULL,
  field TEXT NOT NULL,
  value BLOB NOT NULL,
  hlc INTEGER NOT NULL,
  device_id BLOB NOT NULL,
  base_hlc INTEGER NOT NULL,
  base_device_id BLOB NOT NULL,
  resolves BLOB NOT NULL,
  received_ms INTEGER NOT NULL,
  merge_outcome TEXT NOT NULL,
  owner_team TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS changes_by_record ON changes(record_id);
CREATE INDEX IF NOT EXISTS changes_by_team ON changes(owner_team, seq);
CREATE TABLE IF NOT EXISTS field_states(
  record_id BLOB NOT NULL,
  field TEXT NOT NULL,
  state BLOB NOT NULL,
  in_conflict INTEGER NOT NULL,
  PRIMARY KEY(record_id, field)) WITHOUT ROWID;
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

using nlohmann::json;

/// The schema version this build writes: 1 = before the audit chain, 2 = with it.
constexpr std::int64_t kSchemaVersion = 2;

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

void checkName(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() > kMaxName) {
    throw Error(Errc::invalid_argument, std::string(what) + " must be 1 to 256 characters");
  }
  if (std::any_of(name.begin(), name.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    throw Error(Errc::invalid_argument, std::string(what) + " must not contain control characters");
  }
}

std::string encodeResolves(const std::vector<protocol::VersionRef>& resolves) {
  std::string out;
  out.reserve(resolves.size() * 24);
  for (const auto& r : resolves) {
    for (int i = 0; i < 8; ++i) {
      out.push_back(static_cast<char>((r.hlc >> (8 * i)) & 0xff));
    }
    out.append(reinterpret_cast<const char*>(r.deviceId.data()), r.deviceId.size());
  }
  return out;
}

std::vector<protocol::VersionRef> decodeResolves(std::span<const unsigned char> b) {
  if (b.size() % 24 != 0) {
    throw Error(Errc::corrupt, "a stored change is damaged");
  }
  std::vector<protocol::VersionRef> out(b.size() / 24);
  for (std::size_t k = 0; k < out.size(); ++k) {
    const unsigned char* p = b.data() + k * 24;
    std::uint64_t hlc = 0;
    for (int i = 0; i < 8; ++i) {
      hlc |= std::uint64_t{p[i]} << (8 * i);
    }
    out[k].hlc = hlc;
    std::copy(p + 8, p + 24, out[k].deviceId.begin());
  }
  return out;
}

/// A change read by a statement selecting audit::kRowColumns (seq first).
protocol::Change changeFromRow(const sql::Statement& st) {
  protocol::Change c;
  c.changeId = uuidColumn(st, 1);
  c.recordId = uuidColumn(st, 2);
  c.recordType = std::string(st.columnText(3));
  c.field = std::string(st.columnText(4));
  std::string_view value = text(st.columnBlob(5));
  sync::Change carrier;
  carrier.value = sync::decodeValue(value);
  c.value = toWire(carrier).value;
  c.hlc = static_cast<std::uint64_t>(st.columnInt(6));
  c.deviceId = uuidColumn(st, 7);
  c.baseHlc = static_cast<std::uint64_t>(st.columnInt(8));
  c.baseDeviceId = uuidColumn(st, 9);
  c.resolves = decodeResolves(st.columnBlob(10));
  return c;
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
    db.exec("PRAGMA busy_timeout = 10000");
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
    } else if (version == 1) {
      // Pulls read a team's changes through an index instead of joining every
      // change after the cursor with its record.
      db.exec("ALTER TABLE changes ADD COLUMN owner_team TEXT NOT NULL DEFAULT '';"
              "UPDATE changes SET owner_team ="
              " (SELECT owner_team FROM records r WHERE r.record_id = changes.record_id);"
              "CREATE INDEX IF NOT EXISTS changes_by_team ON changes(owner_team, seq);");
    }
    db.exec(audit::kSchema);
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
    db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
    tx.commit();
  }

  /// Appends inside the caller's write transaction.
  void appendAudit(AuditEntry& entry) {
    if (entry.kind != AuditKind::push && entry.kind != AuditKind::baseline) {
      entry.rowsHash = audit::RowsHash().finish();
    }
    audit::append(statements, audit::Signer{keys.auditSigningKey, keys.auditPublicKey}, entry);
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

  /// Recounts the fields in conflict of each record (includes delete-vs-edit).
  void updateConflictCounts(const std::set<std::array<std::uint8_t, 16>>& touched) {
    for (const auto& id : touched) {
      RecordView view;
      view.recordId.bytes = id;
      loadFields(view);
      auto setConflicts = statements.use("UPDATE records SET conflicts = ?2 WHERE record_id = ?1");
      setConflicts->bindBlob(1, blob(id))
          .bind(2, static_cast<std::int64_t>(view.conflictFields.size()));
      setConflicts->run();
    }
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
    sql::Statement st(db, "SELECT record_type, owner_team, updated_seq FROM records"
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
    loadFields(view);
    return view;
  }

  void loadFields(RecordView& view) {
    auto st = statements.use("SELECT field, state FROM field_states WHERE record_id = ?1");
    st->bindBlob(1, blob(view.recordId.bytes));
    while (st->step()) {
      view.state.fields.emplace(std::string(st->columnText(0)),
                                decodeFieldState(text(st->columnBlob(1))));
    }
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
    std::map<std::array<std::uint8_t, 16>, sync::FieldState> states;
    sql::Statement changes(db, "SELECT " + std::string(audit::kRowColumns) +
                                   " FROM changes WHERE record_type = ?1 AND field = ?2"
                                   " ORDER BY seq");
    changes.bind(1, p.recordType).bind(2, p.field);
    while (changes.step()) {
      const protocol::Change c = changeFromRow(changes);
      (void)sync::merge(states[c.recordId], toSync(c), p.policy, false);
    }
    sql::Statement save(db, "INSERT INTO field_states(record_id, field, state, in_conflict)"
                            " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(record_id, field) DO UPDATE"
                            " SET state = excluded.state, in_conflict = excluded.in_conflict");
    std::set<std::array<std::uint8_t, 16>> touched;
    for (const auto& [id, state] : states) {
      const std::string encoded = encodeFieldState(state);
      save.reset();
      save.bindBlob(1, blob(id))
          .bind(2, p.field)
          .bindBlob(3, blob(encoded))
          .bind(4, std::int64_t{state.hasConflict() ? 1 : 0});
      save.run();
      touched.insert(id);
    }
    impl_->updateConflictCounts(touched);
    impl_->context.log().info("merge policy of {}.{} is now {}: {} record(s) re-merged",
                              p.recordType, p.field, sync::mergePolicyName(p.policy),
                              touched.size());
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

  auto seen = impl_->statements.use("SELECT 1 FROM changes WHERE change_id = ?1");
  auto findRecord =
      impl_->statements.use("SELECT record_type, owner_team FROM records WHERE record_id = ?1");
  auto insertRecord =
      impl_->statements.use("INSERT INTO records(record_id, record_type, owner_team,"
                            " created_seq, updated_seq) VALUES (?1, ?2, ?3, 0, 0)");
  auto loadState =
      impl_->statements.use("SELECT state FROM field_states WHERE record_id = ?1 AND field = ?2");
  auto policyOf = impl_->statements.use("SELECT policy FROM field_policies WHERE record_type = ?1"
                                        " AND field = ?2");
  auto insertChange = impl_->statements.use(
      "INSERT INTO changes(change_id, record_id, record_type, field, value, hlc, device_id,"
      " base_hlc, base_device_id, resolves, received_ms, merge_outcome, owner_team)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
  auto saveState =
      impl_->statements.use("INSERT INTO field_states(record_id, field, state, in_conflict)"
                            " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(record_id, field) DO UPDATE"
                            " SET state = excluded.state, in_conflict = excluded.in_conflict");
  auto touchRecord =
      impl_->statements.use("UPDATE records SET updated_seq = ?2,"
                            " created_seq = CASE created_seq WHEN 0 THEN ?2 ELSE created_seq END"
                            " WHERE record_id = ?1");

  std::vector<std::int64_t> storedSeqs; // parallel to out.results; 0 = not stored
  storedSeqs.reserve(changes.size());
  audit::RowsHash rowsHash;
  const std::uint64_t skewLimitMs =
      static_cast<std::uint64_t>(std::max<std::int64_t>(context.nowMs, 0)) +
      static_cast<std::uint64_t>(context.maxSkew.count());
  std::set<std::array<std::uint8_t, 16>> touched;

  for (const protocol::Change& change : changes) {
    protocol::ChangeResult result{change.changeId, protocol::ChangeOutcome::applied, Errc::ok};
    auto reject = [&](Errc reason) {
      result.outcome = protocol::ChangeOutcome::rejected;
      result.reason = reason;
      ++out.rejected;
      out.results.push_back(result);
      storedSeqs.push_back(0);
    };

    seen->reset();
    seen->bindBlob(1, blob(change.changeId));
    if (seen->step()) {
      result.outcome = protocol::ChangeOutcome::duplicate;
      ++out.duplicates;
      out.results.push_back(result);
      storedSeqs.push_back(0);
      continue;
    }
    // A device pushes what it wrote; anything else would let it speak for another.
    if (change.deviceId != context.device.deviceId) {
      reject(Errc::auth_failed);
      continue;
    }
    findRecord->reset();
    findRecord->bindBlob(1, blob(change.recordId));
    bool newRecord = false;
    std::string ownerTeam;
    if (findRecord->step()) {
      const std::string_view owner = findRecord->columnText(1);
      ownerTeam = std::string(owner);
      if (std::find(context.worker.teams.begin(), context.worker.teams.end(), owner) ==
          context.worker.teams.end()) {
        reject(Errc::out_of_scope);
        continue;
      }
      if (findRecord->columnText(0) != change.recordType) {
        reject(Errc::validation);
        continue;
      }
    } else {
      if (context.worker.teams.empty()) {
        reject(Errc::out_of_scope);
        continue;
      }
      newRecord = true;
      ownerTeam = context.worker.teams.front();
    }
    if (sync::Hlc{change.hlc}.physicalMs() > skewLimitMs) {
      reject(Errc::clock_skew);
      continue;
    }

    sync::FieldState state;
    loadState->reset();
    loadState->bindBlob(1, blob(change.recordId)).bind(2, change.field);
    if (loadState->step()) {
      state = decodeFieldState(text(loadState->columnBlob(0)));
    }
    sync::MergePolicy policy = sync::MergePolicy::lww;
    policyOf->reset();
    policyOf->bind(1, change.recordType).bind(2, change.field);
    if (policyOf->step()) {
      policy = sync::parseMergePolicy(policyOf->columnText(0)).value_or(sync::MergePolicy::lww);
    }
    // The server does not know which records are signed (the signature is a field
    // like any other to it): frozen is decided on the devices.
    const sync::Change syncChange = toSync(change);
    const sync::MergeOutcome merged = sync::merge(state, syncChange, policy, false);
    switch (merged) {
    case sync::MergeOutcome::duplicate:
      result.outcome = protocol::ChangeOutcome::duplicate;
      ++out.duplicates;
      out.results.push_back(result);
      storedSeqs.push_back(0);
      continue;
    case sync::MergeOutcome::rejected:
      reject(Errc::validation);
      continue;
    case sync::MergeOutcome::won:
    case sync::MergeOutcome::lost:
      result.outcome = protocol::ChangeOutcome::conflict;
      result.reason = Errc::conflict;
      ++out.conflicts;
      break;
    case sync::MergeOutcome::fastForward:
    case sync::MergeOutcome::superseded:
    case sync::MergeOutcome::appended:
      ++out.applied;
      break;
    }

    if (newRecord) {
      insertRecord->reset();
      insertRecord->bindBlob(1, blob(change.recordId))
          .bind(2, change.recordType)
          .bind(3, context.worker.teams.front());
      insertRecord->run();
    }
    std::string value;
    sync::encodeValue(syncChange.value, value);
    const std::string resolves = encodeResolves(change.resolves);
    audit::ChangeRow row;
    row.changeId = blob(change.changeId);
    row.recordId = blob(change.recordId);
    row.recordType = change.recordType;
    row.field = change.field;
    row.value = blob(value);
    row.hlc = static_cast<std::int64_t>(change.hlc);
    row.deviceId = blob(change.deviceId);
    row.baseHlc = static_cast<std::int64_t>(change.baseHlc);
    row.baseDeviceId = blob(change.baseDeviceId);
    row.resolves = blob(resolves);
    row.receivedMs = context.nowMs;
    row.mergeOutcome = sync::mergeOutcomeName(merged);
    insertChange->reset();
    insertChange->bindBlob(1, row.changeId)
        .bindBlob(2, row.recordId)
        .bind(3, row.recordType)
        .bind(4, row.field)
        .bindBlob(5, row.value)
        .bind(6, row.hlc)
        .bindBlob(7, row.deviceId)
        .bind(8, row.baseHlc)
        .bindBlob(9, row.baseDeviceId)
        .bindBlob(10, row.resolves)
        .bind(11, row.receivedMs)
        .bind(12, row.mergeOutcome)
        .bind(13, ownerTeam);
    insertChange->run();
    const std::int64_t seq = db.lastInsertRowid();
    row.seq = seq;
    rowsHash.add(row);

    const std::string encoded = encodeFieldState(state);
    saveState->reset();
    saveState->bindBlob(1, blob(change.recordId))
        .bind(2, change.field)
        .bindBlob(3, blob(encoded))
        .bind(4, std::int64_t{state.hasConflict() ? 1 : 0});
    saveState->run();
    touchRecord->reset();
    touchRecord->bindBlob(1, blob(change.recordId)).bind(2, seq);
    touchRecord->run();
    touched.insert(change.recordId);
    out.results.push_back(result);
    storedSeqs.push_back(seq);
  }

  // The conflict count of each touched record, for listing (includes delete-vs-edit).
  impl_->updateConflictCounts(touched);

  // The batch's audit entry, in the same transaction: what the device was told,
  // change by change, and a hash of every row stored.
  AuditEntry entry;
  entry.atMs = context.nowMs;
  entry.kind = AuditKind::push;
  entry.actor = context.worker.id;
  entry.device = context.device.deviceId;
  entry.changes.reserve(out.results.size());
  for (std::size_t i = 0; i < out.results.size(); ++i) {
    entry.changes.push_back({out.results[i].changeId, out.results[i].outcome,
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
  impl_->appendAudit(entry);
  return out;
}

protocol::PullReply SqliteServerStore::pull(const Worker& worker, const protocol::Uuid& requester,
                                            std::uint64_t cursor, std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, protocol::limits::kPullLimit);
  sql::Database& db = impl_->db;
  // One read transaction: the rows and the last sequence number agree.
  sql::Transaction tx(db, false);
  // One index range scan per team of the worker (from the team's first change after
  // the cursor, in sequence order), merged by sequence number: a pull reads only the
  // changes it returns, however many other teams wrote meanwhile. Changes the
  // requesting device pushed itself are left out (it has them).
  const std::vector<std::string> names = impl_->teamsOf(worker.id);
  std::vector<sql::Statement> teams;
  teams.reserve(names.size());
  std::vector<bool> pending;
  for (const std::string& team : names) {
    teams.emplace_back(db, "SELECT " + std::string(audit::kRowColumns) +
                               " FROM changes WHERE owner_team = ?1 AND seq > ?2"
                               " AND device_id <> ?4 ORDER BY seq LIMIT ?3");
    teams.back()
        .bind(1, team)
        .bind(2, static_cast<std::int64_t>(std::min<std::uint64_t>(cursor, INT64_MAX)))
        .bind(3, std::int64_t{limit} + kWriteTail + 1)
        .bindBlob(4, blob(requester));
    pending.push_back(teams.back().step());
  }
  protocol::PullReply reply;
  const std::size_t maxChanges =
      std::min<std::size_t>(std::size_t{limit} + kWriteTail, protocol::limits::kChanges);
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
    if (reply.changes.size() >= limit || bytes > kPullReplyBudget) {
      // A reply never ends inside one write (the changes one device made to one
      // record at one time arrive together), so a device never shows half a
      // record; past the tail allowance it does end.
      const protocol::Change& last = reply.changes.back();
      const bool sameWrite = reply.changes.size() < maxChanges &&
                             uuidColumn(st, 2) == last.recordId &&
                             static_cast<std::uint64_t>(st.columnInt(6)) == last.hlc &&
                             uuidColumn(st, 7) == last.deviceId;
      if (!sameWrite) {
        reply.more = true;
        break;
      }
    }
    lastSeq = static_cast<std::uint64_t>(st.columnInt(0));
    bytes += st.columnBlob(5).size() + 128;
    reply.changes.push_back(changeFromRow(st));
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

DeviceScope SqliteServerStore::pendingCommands(const protocol::DeviceRecord& device) {
  DeviceScope scope;
  sql::Transaction tx(impl_->db, false); // the teams and the records agree
  scope.teams = impl_->teamsOf(device.workerId);
  scope.recorded = impl_->isRecordedScope(device.deviceId, scope.teams);
  sql::Statement st(
      impl_->db, "SELECT r.record_id FROM records r JOIN device_scopes s"
                 " ON s.team = r.owner_team AND s.device_id = ?1"
                 " WHERE r.owner_team NOT IN (SELECT team FROM worker_teams WHERE worker_id = ?2)"
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
  return static_cast<std::uint64_t>(impl_->db.queryInt("SELECT IFNULL(MAX(seq), 0) FROM changes"));
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
  sql::Statement st(impl_->db, "SELECT record_id, record_type, owner_team, updated_seq"
                               " FROM records ORDER BY record_id");
  while (st.step()) {
    RecordView view;
    view.recordId.bytes = uuidColumn(st, 0);
    view.recordType = std::string(st.columnText(1));
    view.ownerTeam = std::string(st.columnText(2));
    view.updatedSeq = st.columnInt(3);
    impl_->loadFields(view);
    visit(view);
  }
  tx.commit();
}

} // namespace outpost::server
