// outpostctl — administration of an Outpost server's data folder (docs/operations.md).
// Every command takes --data DIR; errors say what to do and change nothing.

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/server/audit.hpp>
#include <outpost/server/builtin_schema.hpp>
#include <outpost/server/keys.hpp>
#include <outpost/server/server.hpp>
#include <outpost/server/sqlite_store.hpp>
#include <outpost/sqlite.hpp>
#include <outpost/sync/value.hpp>
#include <outpost/template.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <charconv>
#include <ctime>
#include <fstream>
#include <iostream>

namespace {

using namespace outpost;
using nlohmann::json;
namespace fs = std::filesystem;

struct Options {
  std::string dataDir;
  bool json = false;
};

std::string isoTime(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string isoTimeMs(std::int64_t ms) {
  return isoTime(std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)));
}

std::string hlcText(sync::Hlc hlc) {
  return isoTimeMs(static_cast<std::int64_t>(hlc.physicalMs())) + "+" +
         std::to_string(hlc.logical());
}

/// "24h", "30m", "7d", "90s", or plain seconds.
std::chrono::seconds parseDuration(const std::string& text) {
  if (text.empty()) {
    throw Error(Errc::invalid_argument, "the ttl is empty; use e.g. 24h, 30m or 7d");
  }
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  std::int64_t scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else if (unit == "d") {
    scale = 86400;
  }
  if (ec != std::errc() || scale == 0 || n <= 0 || n > 366 * 86400) {
    throw Error(Errc::invalid_argument,
                "'" + text + "' is not a duration; use e.g. 24h, 30m or 7d (at most a year)");
  }
  return std::chrono::seconds(n * scale);
}

/// The store of an initialised data folder; administrative actions are audited as
/// the account running the command.
struct Opened {
  server::ServerKeys keys;
  server::SqliteServerStore store;
  Opened(const Context& context, const fs::path& dir)
      : keys(server::ServerKeys::load(dir)), store(context, dir, keys) {
    store.setActor(server::administratorName());
  }
};

std::string hexText(std::span<const std::uint8_t> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (const std::uint8_t b : bytes) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

std::string uuidText(const protocol::Uuid& id) {
  sync::Uuid u;
  u.bytes = id;
  return u.toString();
}

/// A consistent copy of a live data folder: SQLite's online backup of server.db (one
/// snapshot, while the server keeps writing), then the keys. `dest` must not exist.
void backupFolder(const fs::path& dir, const fs::path& dest) {
  if (fs::exists(dest)) {
    throw Error(Errc::already_exists,
                "'" + dest.string() + "' already exists; give a new folder for the backup");
  }
  if (!fs::exists(server::SqliteServerStore::databasePath(dir))) {
    throw Error(Errc::not_found, "no server store in '" + dir.string() + "'");
  }
  fs::create_directories(dest);
  fs::permissions(dest, fs::perms::owner_all, fs::perm_options::replace);
  {
    sql::Database source(server::SqliteServerStore::databasePath(dir).string(),
                         SQLITE_OPEN_READWRITE); // read only; WAL readers need the -shm
    source.exec("PRAGMA busy_timeout = 10000");
    sql::Database copy(server::SqliteServerStore::databasePath(dest).string(),
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    sqlite3_backup* backup = sqlite3_backup_init(copy.handle(), "main", source.handle(), "main");
    if (backup == nullptr) {
      sql::fail(sqlite3_errcode(copy.handle()), copy.handle(), "starting the backup");
    }
    const int rc = sqlite3_backup_step(backup, -1); // all pages, from one read snapshot
    const int done = sqlite3_backup_finish(backup);
    if (rc != SQLITE_DONE || done != SQLITE_OK) {
      sql::fail(rc != SQLITE_DONE ? rc : done, copy.handle(), "copying the database");
    }
  }
  const fs::path keys = server::ServerKeys::keysDir(dir);
  const fs::path keysCopy = server::ServerKeys::keysDir(dest);
  fs::create_directories(keysCopy);
  fs::permissions(keysCopy, fs::perms::owner_all, fs::perm_options::replace);
  for (const auto& entry : fs::directory_iterator(keys)) {
    if (entry.is_regular_file() && entry.path().extension() == ".key") {
      const fs::path to = keysCopy / entry.path().filename();
      fs::copy_file(entry.path(), to);
      fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write,
                      fs::perm_options::replace);
    }
  }
}

json auditEntryJson(const server::AuditEntry& e) {
  json j = {{"seq", e.seq},
            {"time", isoTimeMs(e.atMs)},
            {"kind", server::auditKindName(e.kind)},
            {"actor", e.actor},
            {"detail", json::parse(e.detail, nullptr, false)},
            {"hash", hexText(e.hash)}};
  if (e.device != protocol::Uuid{}) {
    j["device"] = uuidText(e.device);
  }
  return j;
}

void print(const Options& o, const json& j, const std::string& text) {
  if (o.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << text;
  }
}

json valueJson(const sync::Value& v) { return json::parse(sync::toJson(v)); }

json versionJson(const sync::FieldVersion& v) {
  return {{"value", valueJson(v.value)},
          {"time", hlcText(v.hlc)},
          {"hlc", v.hlc.value},
          {"device", v.deviceId.toString()},
          {"change", v.changeId.toString()}};
}

/// A record as the central team sees it: current values, and competing ones.
json recordJson(const server::RecordView& r) {
  json fields = json::object();
  json conflicts = json::object();
  for (const auto& [name, state] : r.state.fields) {
    if (name.empty()) {
      continue; // the record itself: shown as "deleted"
    }
    if (!state.entries.empty()) {
      json entries = json::array();
      for (const auto& e : state.entries) {
        entries.push_back(valueJson(e.value));
      }
      fields[name] = entries;
    } else if (state.current) {
      fields[name] = valueJson(state.current->value);
    } else {
      fields[name] = nullptr;
    }
    if (state.hasConflict()) {
      json competing = json::array();
      if (state.current) {
        competing.push_back(versionJson(*state.current));
      }
      for (const auto& c : state.conflicts) {
        competing.push_back(versionJson(c));
      }
      conflicts[name] = competing;
    }
  }
  if (r.deleted) {
    for (const auto& [name, version] : sync::deletionConflicts(r.state)) {
      json& list = conflicts[name.empty() ? std::string("(record)") : name];
      if (!list.is_array()) {
        list = json::array();
      }
      json v = versionJson(version);
      v["editedAfterDeletion"] = true;
      list.push_back(v);
    }
  }
  return {{"id", r.recordId.toString()},
          {"type", r.recordType},
          {"team", r.ownerTeam},
          {"deleted", r.deleted},
          {"inConflict", !r.conflictFields.empty()},
          {"fields", fields},
          {"conflicts", conflicts}};
}

std::string csvCell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) {
    return s;
  }
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') {
      out += '"';
    }
    out += c;
  }
  return out + "\"";
}

/// A progress bar on stderr: for long exports when stderr is a terminal, or always
/// with --progress.
class Progress {
public:
  static constexpr std::int64_t kLongExport = 1000;
  Progress(std::int64_t total, bool force)
      : total_(total), show_(force || (isatty(STDERR_FILENO) != 0 && total >= kLongExport)) {}
  void tick() {
    ++done_;
    if (!show_) {
      return;
    }
    const auto percent = static_cast<int>(done_ * 100 / std::max<std::int64_t>(total_, 1));
    if (percent != last_) {
      last_ = percent;
      const int width = 30;
      const int filled = percent * width / 100;
      std::cerr << "\rexporting [" << std::string(static_cast<std::size_t>(filled), '#')
                << std::string(static_cast<std::size_t>(width - filled), ' ') << "] " << percent
                << "% (" << done_ << "/" << total_ << ")" << std::flush;
    }
  }
  ~Progress() {
    if (show_) {
      std::cerr << "\n";
    }
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

private:
  std::int64_t total_;
  std::int64_t done_ = 0;
  int last_ = -1;
  bool show_;
};

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"outpostctl: administer an Outpost server's data folder (docs/operations.md)"};
  app.require_subcommand(1);
  Options o;
  app.add_option("--data", o.dataDir, "The server's data folder")->required();
  app.add_flag("--json", o.json, "Machine-readable output");

  auto* init = app.add_subcommand("init", "Create the store and the server keys; print the key");
  std::string initListen = "127.0.0.1:7420";
  init->add_option("--listen", initListen, "The address devices reach the server at (HOST:PORT)")
      ->capture_default_str();

  auto* team = app.add_subcommand("team", "Teams (own records)");
  team->require_subcommand(1);
  auto* teamAdd = team->add_subcommand("add", "Add a team");
  std::string teamName;
  teamAdd->add_option("NAME", teamName, "The team's name")->required();
  auto* teamList = team->add_subcommand("list", "List teams");

  auto* worker = app.add_subcommand("worker", "Field workers");
  worker->require_subcommand(1);
  auto* workerAdd = worker->add_subcommand("add", "Add a worker to one or more teams");
  std::string workerId;
  std::vector<std::string> workerTeams;
  workerAdd->add_option("ID", workerId, "The worker's id")->required();
  workerAdd
      ->add_option("--team", workerTeams,
                   "A team the worker belongs to (repeat; the first owns new records)")
      ->required();
  auto* workerSetTeams = worker->add_subcommand(
      "set-teams", "Replace a worker's teams (records of teams left are purged from devices)");
  std::string setTeamsId;
  std::vector<std::string> setTeams;
  workerSetTeams->add_option("ID", setTeamsId, "The worker's id")->required();
  workerSetTeams->add_option("--team", setTeams, "A team (repeat; the first owns new records)")
      ->required();
  auto* workerList = worker->add_subcommand("list", "List workers and their teams");

  auto* enroll = app.add_subcommand("enroll", "Issue a one-time enrollment code for a worker");
  std::string enrollWorker;
  std::string ttlText = "24h";
  std::string enrollServer;
  enroll->add_option("WORKER", enrollWorker, "The worker whose device enrolls")->required();
  enroll->add_option("--ttl", ttlText, "How long the code is valid (e.g. 24h, 30m, 7d)")
      ->capture_default_str();
  enroll->add_option("--server", enrollServer,
                     "HOST:PORT the device connects to (default: init's --listen)");

  auto* devices = app.add_subcommand("devices", "List enrolled devices");
  auto* revoke = app.add_subcommand("revoke", "Revoke a device: its sessions are refused");
  std::string revokeId;
  revoke->add_option("DEVICE_ID", revokeId, "The device id (from 'devices')")->required();

  auto* conflicts = app.add_subcommand("conflicts", "Records with competing values");
  conflicts->require_subcommand(1);
  auto* conflictsList = conflicts->add_subcommand("list", "List records in conflict");
  auto* conflictsShow = conflicts->add_subcommand("show", "Show one record's competing values");
  std::string showId;
  conflictsShow->add_option("RECORD_ID", showId, "The record id")->required();

  auto* exportCmd =
      app.add_subcommand("export", "Export records as the central team sees them, with conflicts");
  std::string format = "json";
  std::string outPath;
  bool forceProgress = false;
  exportCmd->add_option("--format", format, "json or csv")
      ->check(CLI::IsMember({"json", "csv"}))
      ->capture_default_str();
  exportCmd->add_option("--out", outPath, "Write to FILE instead of standard output");
  exportCmd->add_flag("--progress", forceProgress,
                      "Show a progress bar on stderr even when it is not a terminal");

  auto* templateCmd = app.add_subcommand("template", "Assessment templates sent to the devices");
  templateCmd->require_subcommand(1);
  auto* templatePublish = templateCmd->add_subcommand(
      "publish", "Publish a template (a JSON document with status published and its "
                 "content_hash): every device gets it at its next sync");
  std::string templateFile;
  templatePublish->add_option("FILE", templateFile, "The template document")
      ->required()
      ->check(CLI::ExistingFile);
  auto* templateList = templateCmd->add_subcommand("list", "List published templates");

  auto* backup = app.add_subcommand(
      "backup", "Copy the data folder consistently while the server runs, then verify the copy");
  std::string backupDest;
  backup->add_option("DEST", backupDest, "A new folder for the copy")->required();

  auto* audit = app.add_subcommand("audit", "The server's audit chain");
  audit->require_subcommand(1);
  auto* auditVerify = audit->add_subcommand(
      "verify", "Check the audit chain end to end and every stored write against it "
                "(exit 0 intact, 2 tampering found, 1 could not check)");
  auto* auditList = audit->add_subcommand("list", "Show audit entries");
  std::size_t auditLast = 20;
  std::int64_t auditAfter = -1;
  auditList->add_option("--last", auditLast, "How many: the newest N, or the first N after --after")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->capture_default_str();
  auditList->add_option("--after", auditAfter, "Entries after sequence number SEQ instead")
      ->check(CLI::NonNegativeNumber);

  CLI11_PARSE(app, argc, argv);

  auto logger = spdlog::stderr_color_mt("outpostctl");
  logger->set_level(spdlog::level::warn);
  try {
    const Context context(logger);
    const fs::path dir(o.dataDir);

    if (init->parsed()) {
      const auto listen = server::parseEndpoint(initListen); // validate before creating
      if (fs::exists(server::SqliteServerStore::databasePath(dir)) ||
          fs::exists(server::ServerKeys::keysDir(dir))) {
        throw Error(Errc::already_exists, "'" + dir.string() +
                                              "' already holds a server; init never overwrites "
                                              "it (devices pin its key)");
      }
      fs::create_directories(dir);
      fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
      const server::ServerKeys keys = server::ServerKeys::create(context, dir);
      server::SqliteServerStore store(context, dir, keys, true);
      store.setActor(server::administratorName());
      store.setSetting("listen", initListen);
      (void)store.setFieldPolicies(server::builtinFieldPolicies());
      const std::string key = protocol::toBase64Url(keys.staticKey.publicKey);
      const std::string auditKey = protocol::toBase64Url(keys.auditPublicKey);
      store.recordAudit(server::AuditKind::init, server::administratorName(), {},
                        json{{"serverKey", key}, {"auditKey", auditKey}}.dump());
      print(o,
            {{"dataDir", dir.string()},
             {"publicKey", key},
             {"auditKey", auditKey},
             {"listen", initListen}},
            "initialised " + dir.string() + "\nserver public key: " + key +
                "\naudit signing key: " + auditKey + " (note it outside this folder)" +
                "\ndevices will connect to " + listen.address().to_string() + ":" +
                std::to_string(listen.port()) + "\n");
      return 0;
    }

    if (backup->parsed()) {
      // Keys first: a folder without them is not a server's (and load() adds a
      // missing audit key before anything is copied).
      const server::ServerKeys sourceKeys = server::ServerKeys::load(dir);
      (void)sourceKeys;
      backupFolder(dir, backupDest);
      const server::ServerKeys keys = server::ServerKeys::load(backupDest);
      server::SqliteServerStore copy(context, backupDest, keys);
      const server::AuditVerification v = copy.verifyAudit();
      print(o,
            {{"backup", backupDest},
             {"records", copy.recordCount()},
             {"lastSequence", copy.lastSequence()},
             {"auditIntact", v.intact},
             {"auditHeadSeq", v.headSeq},
             {"auditHeadHash", hexText(v.headHash)}},
            "backed up " + dir.string() + " to " + backupDest + ": " +
                std::to_string(copy.recordCount()) + " records, change log up to " +
                std::to_string(copy.lastSequence()) + "\naudit chain of the copy " +
                (v.intact ? "intact, head entry " + std::to_string(v.headSeq) + " hash " +
                                hexText(v.headHash)
                          : "BROKEN: " + v.problem) +
                "\n");
      return v.intact ? 0 : 2;
    }

    Opened opened(context, dir);
    server::ServerStore& store = opened.store;

    if (teamAdd->parsed()) {
      store.addTeam(teamName);
      print(o, {{"team", teamName}}, "added team " + teamName + "\n");
    } else if (teamList->parsed()) {
      const auto teams = store.teams();
      std::string text;
      for (const auto& t : teams) {
        text += t + "\n";
      }
      print(o, teams, text);
    } else if (workerAdd->parsed()) {
      store.addWorker(workerId, workerTeams);
      print(o, {{"worker", workerId}, {"teams", workerTeams}}, "added worker " + workerId + "\n");
    } else if (workerSetTeams->parsed()) {
      store.setWorkerTeams(setTeamsId, setTeams);
      print(o, {{"worker", setTeamsId}, {"teams", setTeams}},
            "worker " + setTeamsId +
                " now in the given teams; records of teams left are purged from their devices "
                "at the next sync\n");
    } else if (workerList->parsed()) {
      json j = json::array();
      std::string text;
      for (const auto& w : store.workers()) {
        j.push_back({{"worker", w.id}, {"teams", w.teams}});
        std::string teams;
        for (const auto& t : w.teams) {
          teams += (teams.empty() ? "" : ",") + t;
        }
        text += w.id + "\t" + teams + "\n";
      }
      print(o, j, text);
    } else if (enroll->parsed()) {
      const auto ttl = parseDuration(ttlText);
      const auto w = store.findWorker(enrollWorker);
      if (!w) {
        throw Error(Errc::not_found, "there is no worker '" + enrollWorker +
                                         "'; add it first with 'outpostctl worker add'");
      }
      if (enrollServer.empty()) {
        enrollServer = store.setting("listen").value_or("127.0.0.1:7420");
      }
      const auto endpoint = server::parseEndpoint(enrollServer);
      if (endpoint.port() == 0) {
        throw Error(Errc::invalid_argument,
                    "the server address has port 0; give the real one with --server HOST:PORT");
      }
      const protocol::IssuedCode code =
          store.issueEnrollmentCode(w->id, ttl, protocol::Clock::now());
      const std::string payload =
          protocol::formatEnrollmentPayload({endpoint.address().to_string(), endpoint.port(),
                                             opened.keys.staticKey.publicKey, code.code});
      print(o,
            {{"worker", w->id},
             {"team", w->teams.front()},
             {"code", code.code},
             {"expires", isoTime(code.expiresAt)},
             {"payload", payload}},
            "enrollment code for " + w->id + " (team " + w->teams.front() + "): " + code.code +
                "\nvalid until " + isoTime(code.expiresAt) + ", once\npayload: " + payload + "\n");
    } else if (devices->parsed()) {
      json j = json::array();
      std::string text;
      for (const auto& d : store.devices()) {
        sync::Uuid id;
        id.bytes = d.record.deviceId;
        j.push_back({{"device", id.toString()},
                     {"worker", d.record.workerId},
                     {"team", d.record.teamId},
                     {"revoked", d.record.revoked},
                     {"enrolled", isoTimeMs(d.enrolledMs)}});
        text += id.toString() + "\t" + d.record.workerId + "\t" + d.record.teamId + "\t" +
                isoTimeMs(d.enrolledMs) + (d.record.revoked ? "\trevoked" : "\tactive") + "\n";
      }
      print(o, j, text.empty() ? std::string("no devices enrolled\n") : text);
    } else if (revoke->parsed()) {
      const auto id = sync::Uuid::parse(revokeId);
      if (!id) {
        throw Error(Errc::invalid_argument, "'" + revokeId +
                                                "' is not a device id; copy one from "
                                                "'outpostctl devices'");
      }
      if (!store.revokeDevice(id->bytes)) {
        throw Error(Errc::not_found,
                    "there is no device " + revokeId + "; see 'outpostctl devices'");
      }
      print(o, {{"device", revokeId}, {"revoked", true}},
            "revoked " + revokeId + ": its sessions are refused from now on\n");
    } else if (templatePublish->parsed()) {
      std::ifstream in(templateFile, std::ios::binary);
      const std::string document((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) {
        throw Error(Errc::io, "cannot read '" + templateFile + "'");
      }
      const bool added = store.publishTemplate(document);
      const auto t = model::parseTemplate(document).loaded;
      const std::string name = t->id() + " version " + std::to_string(t->version());
      print(o, {{"template", t->id()}, {"version", t->version()}, {"published", added}},
            added ? "published " + name + ": devices get it at their next sync\n"
                  : name + " was already published with this content; nothing changed\n");
    } else if (templateList->parsed()) {
      json j = json::array();
      std::string text;
      for (const auto& t : store.publishedTemplates()) {
        j.push_back({{"template", t.id},
                     {"version", t.version},
                     {"publishedMs", t.publishedMs},
                     {"contentHash", t.contentHash}});
        text += t.id + "\t" + std::to_string(t.version) + "\t" + t.contentHash + "\n";
      }
      print(o, j, text.empty() ? std::string("no templates published\n") : text);
    } else if (conflictsList->parsed()) {
      json j = json::array();
      std::string text;
      for (const auto& c : store.conflicts()) {
        std::string fields;
        for (const auto& f : c.fields) {
          fields += (fields.empty() ? "" : ",") + (f.empty() ? std::string("(record)") : f);
        }
        j.push_back({{"record", c.recordId.toString()},
                     {"type", c.recordType},
                     {"team", c.ownerTeam},
                     {"fields", c.fields}});
        text +=
            c.recordId.toString() + "\t" + c.recordType + "\t" + c.ownerTeam + "\t" + fields + "\n";
      }
      print(o, j, text.empty() ? std::string("no conflicts\n") : text);
    } else if (conflictsShow->parsed()) {
      const auto id = sync::Uuid::parse(showId);
      if (!id) {
        throw Error(Errc::invalid_argument, "'" + showId + "' is not a record id");
      }
      const auto view = store.record(*id);
      if (!view) {
        throw Error(Errc::not_found, "there is no record " + showId);
      }
      store.recordAudit(server::AuditKind::recordView, server::administratorName(), {},
                        json{{"record", showId}, {"command", "conflicts show"}}.dump());
      const json r = recordJson(*view);
      std::string text = "record " + showId + " (" + view->recordType + ", team " +
                         view->ownerTeam + ")" + (view->deleted ? ", deleted" : "") + "\n";
      if (r["conflicts"].empty()) {
        text += "no conflicts\n";
      }
      for (const auto& [field, versions] : r["conflicts"].items()) {
        text += "  " + field + ":\n";
        bool first = true;
        for (const auto& v : versions) {
          text += std::string("    ") + (first ? "current  " : "competing") + " " +
                  v["value"].dump() + "  by device " + v["device"].get<std::string>() + " at " +
                  v["time"].get<std::string>() + "\n";
          first = false;
        }
      }
      print(o, r, text);
    } else if (exportCmd->parsed()) {
      std::ofstream file;
      if (!outPath.empty()) {
        file.open(outPath, std::ios::binary | std::ios::trunc);
        if (!file) {
          throw Error(Errc::io, "cannot write '" + outPath + "'; check the folder exists");
        }
      }
      std::ostream& out = outPath.empty() ? std::cout : file;
      const std::int64_t total = store.recordCount();
      Progress progress(total, forceProgress);
      if (format == "csv") {
        out << "record_id,record_type,owner_team,deleted,field,value,in_conflict,competing_"
               "values\n";
        store.forEachRecord([&](const server::RecordView& r) {
          const json j = recordJson(r);
          for (const auto& [field, value] : j["fields"].items()) {
            const bool inConflict = j["conflicts"].contains(field);
            out << csvCell(j["id"].get<std::string>()) << ',' << csvCell(r.recordType) << ','
                << csvCell(r.ownerTeam) << ',' << (r.deleted ? "true" : "false") << ','
                << csvCell(field) << ',' << csvCell(value.dump()) << ','
                << (inConflict ? "true" : "false") << ','
                << csvCell(inConflict ? j["conflicts"][field].dump() : std::string()) << '\n';
          }
          progress.tick();
        });
      } else {
        out << "{\"records\":[";
        bool first = true;
        store.forEachRecord([&](const server::RecordView& r) {
          out << (first ? "\n" : ",\n") << recordJson(r).dump();
          first = false;
          progress.tick();
        });
        out << "\n]}\n";
      }
      out.flush();
      if (!out) {
        throw Error(Errc::io, "writing the export failed; check the disk has space");
      }
      store.recordAudit(server::AuditKind::exportData, server::administratorName(), {},
                        json{{"format", format},
                             {"records", total},
                             {"to", outPath.empty() ? std::string("stdout") : outPath}}
                            .dump());
    } else if (auditVerify->parsed()) {
      const server::AuditVerification v = store.verifyAudit();
      const std::string auditKey = protocol::toBase64Url(opened.keys.auditPublicKey);
      json j = {{"intact", v.intact},
                {"entries", v.entries},
                {"pushes", v.pushes},
                {"changesChecked", v.changesChecked},
                {"signaturesChecked", v.signaturesChecked},
                {"headSeq", v.headSeq},
                {"headHash", hexText(v.headHash)},
                {"auditKey", auditKey}};
      std::string text;
      if (v.intact) {
        text = "audit chain intact: " + std::to_string(v.entries) + " entries (" +
               std::to_string(v.pushes) + " pushed batches), " + std::to_string(v.changesChecked) +
               " changes matched to their stored rows, " + std::to_string(v.signaturesChecked) +
               " signatures checked\nhead: entry " + std::to_string(v.headSeq) + " hash " +
               hexText(v.headHash) + "\naudit key: " + auditKey + "\n";
      } else {
        j["firstBadEntry"] = v.firstBadSeq;
        j["problem"] = v.problem;
        text = "audit chain BROKEN" +
               (v.firstBadSeq > 0 ? " at entry " + std::to_string(v.firstBadSeq) : std::string()) +
               ": " + v.problem + "\n" + std::to_string(v.entries) +
               " entries before it verified; restore the data folder from a backup that "
               "verifies and investigate who had access\n";
      }
      if (o.json) {
        std::cout << j.dump(2) << "\n";
      } else {
        (v.intact ? std::cout : std::cerr) << text;
      }
      return v.intact ? 0 : 2;
    } else if (auditList->parsed()) {
      const auto entries = auditAfter >= 0 ? store.auditEntries(auditAfter, auditLast)
                                           : store.lastAuditEntries(auditLast);
      json j = json::array();
      std::string text;
      for (const auto& e : entries) {
        j.push_back(auditEntryJson(e));
        text += std::to_string(e.seq) + "\t" + isoTimeMs(e.atMs) + "\t" +
                std::string(server::auditKindName(e.kind)) + "\t" + e.actor + "\t" +
                (e.device == protocol::Uuid{} ? std::string("-") : uuidText(e.device)) + "\t" +
                e.detail + "\n";
      }
      print(o, j, text.empty() ? std::string("no audit entries\n") : text);
    }
    return 0;
  } catch (const Error& e) {
    std::cerr << "outpostctl: " << e.message() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "outpostctl: " << e.what() << "\n";
    return 1;
  }
}
