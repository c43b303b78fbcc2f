// The embedded server store on SQLite (WAL). One object = one connection.

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/server/sqlite_store.hpp>

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
  merge_outcome TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_record ON changes(record_id);
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
  sql::Database db;
  protocol::DeviceRegistry devices;
  protocol::EnrollmentRegistry enrollment;

  Impl(const Context& context, const fs::path& path, SecretBytes secret, int flags)
      : db(openAndMigrate(path, flags)), devices(db),
        enrollment(context, db, std::move(secret), devices) {}

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
    if (db.queryInt("PRAGMA user_version") == 0) {
      sql::Transaction tx(db);
      db.exec(kSchema);
      db.exec("PRAGMA user_version = 1");
      tx.commit();
    }
    return db;
  }

  std::vector<std::string> teamsOf(std::string_view workerId) {
    sql::Statement st(db, "SELECT team FROM worker_teams WHERE worker_id = ?1 ORDER BY position");
    st.bind(1, workerId);
    std::vector<std::string> out;
    while (st.step()) {
      out.emplace_back(st.columnText(0));
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
    sql::Statement st(db, "SELECT field, state FROM field_states WHERE record_id = ?1");
    st.bindBlob(1, blob(view.recordId.bytes));
    while (st.step()) {
      view.state.fields.emplace(std::string(st.columnText(0)),
                                decodeFieldState(text(st.columnBlob(1))));
    }
    view.deleted = sync::isDeleted(view.state);
    view.conflictFields = conflictFieldsOf(view.state);
  }
};

fs::path SqliteServerStore::databasePath(const fs::path& dataDir) { return dataDir / "server.db"; }

SqliteServerStore::SqliteServerStore(const Context& context, const fs::path& dataDir,
                                     SecretBytes enrollmentSecret, bool create) {
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
  impl_ = std::make_unique<Impl>(context, path, std::move(enrollmentSecret), flags);
}

SqliteServerStore::~SqliteServerStore() = default;

void SqliteServerStore::addTeam(std::string_view name) {
  checkName(name, "a team name");
  sql::Transaction tx(impl_->db);
  sql::Statement st(impl_->db, "INSERT INTO teams(name) VALUES (?1) ON CONFLICT DO NOTHING");
  st.bind(1, name);
  st.run();
  if (impl_->db.changes() == 0) {
    throw Error(Errc::already_exists, "team '" + std::string(name) + "' already exists");
  }
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
  tx.commit();
}

void SqliteServerStore::setWorkerTeams(std::string_view id, const std::vector<std::string>& teams) {
  if (teams.empty()) {
    throw Error(Errc::invalid_argument, "a worker needs at least one team (--team NAME)");
  }
  sql::Transaction tx(impl_->db);
  if (!findWorker(id)) {
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
  tx.commit();
}

std::optional<Worker> SqliteServerStore::findWorker(std::string_view id) {
  sql::Statement st(impl_->db, "SELECT 1 FROM workers WHERE id = ?1");
  st.bind(1, id);
  if (!st.step()) {
    return std::nullopt;
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

PushResult SqliteServerStore::push(const PushContext& context,
                                   const std::vector<protocol::Change>& changes) {
  sql::Database& db = impl_->db;
  PushResult out;
  out.results.reserve(changes.size());
  sql::Transaction tx(db);

  sql::Statement seen(db, "SELECT 1 FROM changes WHERE change_id = ?1");
  sql::Statement findRecord(db, "SELECT record_type, owner_team FROM records WHERE record_id = ?1");
  sql::Statement insertRecord(db, "INSERT INTO records(record_id, record_type, owner_team,"
                                  " created_seq, updated_seq) VALUES (?1, ?2, ?3, 0, 0)");
  sql::Statement loadState(db,
                           "SELECT state FROM field_states WHERE record_id = ?1 AND field = ?2");
  sql::Statement policyOf(db, "SELECT policy FROM field_policies WHERE record_type = ?1"
                              " AND field = ?2");
  sql::Statement insertChange(
      db, "INSERT INTO changes(change_id, record_id, record_type, field, value, hlc, device_id,"
          " base_hlc, base_device_id, resolves, received_ms, merge_outcome)"
          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
  sql::Statement saveState(db, "INSERT INTO field_states(record_id, field, state, in_conflict)"
                               " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(record_id, field) DO UPDATE"
                               " SET state = excluded.state, in_conflict = excluded.in_conflict");
  sql::Statement touchRecord(db,
                             "UPDATE records SET updated_seq = ?2,"
                             " created_seq = CASE created_seq WHEN 0 THEN ?2 ELSE created_seq END"
                             " WHERE record_id = ?1");

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
    };

    seen.reset();
    seen.bindBlob(1, blob(change.changeId));
    if (seen.step()) {
      result.outcome = protocol::ChangeOutcome::duplicate;
      ++out.duplicates;
      out.results.push_back(result);
      continue;
    }
    // A device pushes what it wrote; anything else would let it speak for another.
    if (change.deviceId != context.device.deviceId) {
      reject(Errc::auth_failed);
      continue;
    }
    findRecord.reset();
    findRecord.bindBlob(1, blob(change.recordId));
    bool newRecord = false;
    if (findRecord.step()) {
      const std::string_view owner = findRecord.columnText(1);
      if (std::find(context.worker.teams.begin(), context.worker.teams.end(), owner) ==
          context.worker.teams.end()) {
        reject(Errc::out_of_scope);
        continue;
      }
      if (findRecord.columnText(0) != change.recordType) {
        reject(Errc::validation);
        continue;
      }
    } else {
      if (context.worker.teams.empty()) {
        reject(Errc::out_of_scope);
        continue;
      }
      newRecord = true;
    }
    if (sync::Hlc{change.hlc}.physicalMs() > skewLimitMs) {
      reject(Errc::clock_skew);
      continue;
    }

    sync::FieldState state;
    loadState.reset();
    loadState.bindBlob(1, blob(change.recordId)).bind(2, change.field);
    if (loadState.step()) {
      state = decodeFieldState(text(loadState.columnBlob(0)));
    }
    sync::MergePolicy policy = sync::MergePolicy::lww;
    policyOf.reset();
    policyOf.bind(1, change.recordType).bind(2, change.field);
    if (policyOf.step()) {
      policy = sync::parseMergePolicy(policyOf.columnText(0)).value_or(sync::MergePolicy::lww);
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
      insertRecord.reset();
      insertRecord.bindBlob(1, blob(change.recordId))
          .bind(2, change.recordType)
          .bind(3, context.worker.teams.front());
      insertRecord.run();
    }
    std::string value;
    sync::encodeValue(syncChange.value, value);
    const std::string resolves = encodeResolves(change.resolves);
    insertChange.reset();
    insertChange.bindBlob(1, blob(change.changeId))
        .bindBlob(2, blob(change.recordId))
        .bind(3, change.recordType)
        .bind(4, change.field)
        .bindBlob(5, blob(value))
        .bind(6, static_cast<std::int64_t>(change.hlc))
        .bindBlob(7, blob(change.deviceId))
        .bind(8, static_cast<std::int64_t>(change.baseHlc))
        .bindBlob(9, blob(change.baseDeviceId))
        .bindBlob(10, blob(resolves))
        .bind(11, context.nowMs)
        .bind(12, sync::mergeOutcomeName(merged));
    insertChange.run();
    const std::int64_t seq = db.lastInsertRowid();

    const std::string encoded = encodeFieldState(state);
    saveState.reset();
    saveState.bindBlob(1, blob(change.recordId))
        .bind(2, change.field)
        .bindBlob(3, blob(encoded))
        .bind(4, std::int64_t{state.hasConflict() ? 1 : 0});
    saveState.run();
    touchRecord.reset();
    touchRecord.bindBlob(1, blob(change.recordId)).bind(2, seq);
    touchRecord.run();
    touched.insert(change.recordId);
    out.results.push_back(result);
  }

  // The conflict count of each touched record, for listing (includes delete-vs-edit).
  sql::Statement setConflicts(db, "UPDATE records SET conflicts = ?2 WHERE record_id = ?1");
  for (const auto& id : touched) {
    RecordView view;
    view.recordId.bytes = id;
    impl_->loadFields(view);
    setConflicts.reset();
    setConflicts.bindBlob(1, blob(id))
        .bind(2, static_cast<std::int64_t>(view.conflictFields.size()));
    setConflicts.run();
  }
  tx.commit();
  return out;
}

protocol::PullReply SqliteServerStore::pull(const Worker& worker, const protocol::Uuid& requester,
                                            std::uint64_t cursor, std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, protocol::limits::kPullLimit);
  sql::Database& db = impl_->db;
  // One read transaction: the rows and the last sequence number agree.
  sql::Transaction tx(db, false);
  sql::Statement st(
      db, "SELECT c.seq, c.change_id, c.record_id, c.record_type, c.field, c.value, c.hlc,"
          " c.device_id, c.base_hlc, c.base_device_id, c.resolves"
          " FROM changes c JOIN records r ON r.record_id = c.record_id"
          " WHERE c.seq > ?1 AND c.device_id <> ?4 AND r.owner_team IN"
          "  (SELECT team FROM worker_teams WHERE worker_id = ?2)"
          " ORDER BY c.seq LIMIT ?3");
  st.bind(1, static_cast<std::int64_t>(std::min<std::uint64_t>(cursor, INT64_MAX)))
      .bind(2, worker.id)
      .bind(3, std::int64_t{limit} + kWriteTail + 1)
      .bindBlob(4, blob(requester));
  protocol::PullReply reply;
  const std::size_t maxChanges =
      std::min<std::size_t>(std::size_t{limit} + kWriteTail, protocol::limits::kChanges);
  std::size_t bytes = 0;
  std::uint64_t lastSeq = cursor;
  while (st.step()) {
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
    protocol::Change c;
    lastSeq = static_cast<std::uint64_t>(st.columnInt(0));
    c.changeId = uuidColumn(st, 1);
    c.recordId = uuidColumn(st, 2);
    c.recordType = std::string(st.columnText(3));
    c.field = std::string(st.columnText(4));
    std::string_view value = text(st.columnBlob(5));
    bytes += value.size() + 128;
    sync::Change carrier;
    carrier.value = sync::decodeValue(value);
    c.value = toWire(carrier).value;
    c.hlc = static_cast<std::uint64_t>(st.columnInt(6));
    c.deviceId = uuidColumn(st, 7);
    c.baseHlc = static_cast<std::uint64_t>(st.columnInt(8));
    c.baseDeviceId = uuidColumn(st, 9);
    c.resolves = decodeResolves(st.columnBlob(10));
    reply.changes.push_back(std::move(c));
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
