// enroll, sync and conflicts: the device and the central server.

#include "commands.hpp"
#include "input.hpp"

#include <outpost/journal.hpp>
#include <outpost/sync_client.hpp>

#include <unistd.h>

#include <iostream>

namespace outpost::field {

namespace {

constexpr std::string_view kAppVersion = "outpost-field/0.1";

// ---------------------------------------------------------------------------
// Enrollment
// ---------------------------------------------------------------------------

struct EnrollOptions {
  std::string codeOrPayload;
  std::string server;
  std::string serverKey;
  std::string localAuthority;
  std::string policeForceArea;
  int timeoutSeconds = 30;
};

Result enroll(Env& env, const EnrollOptions& o) {
  std::string payload = o.codeOrPayload;
  if (payload.rfind("outpost-enroll:", 0) != 0) {
    // A code typed by hand: the server's address and key come separately.
    if (o.server.empty() || o.serverKey.empty()) {
      throw Failure(Errc::invalid_argument,
                    "'" + o.codeOrPayload +
                        "' is not an enrollment payload (outpost-enroll:v1:...); give the whole "
                        "payload that 'outpostctl enroll' printed, or the code with --server "
                        "HOST:PORT and --server-key KEY");
    }
    const auto colon = o.server.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      throw Failure(Errc::invalid_argument, "--server '" + o.server + "': give HOST:PORT");
    }
    payload = "outpost-enroll:v1:" + o.server + ":" + o.serverKey + ":" + o.codeOrPayload;
  }
  return withWorkspace(env, [&](Workspace& ws) {
    if (const auto& id = ws.identity()) {
      throw Failure(Errc::already_exists, "this device is already enrolled (device " +
                                              deviceIdText(*id) + ", worker " + id->workerId +
                                              "); to enroll it again, wipe it first");
    }
    const DeviceIdentity id = enrollDevice(env.context, ws.vault(), payload, kAppVersion,
                                           std::chrono::seconds(o.timeoutSeconds));
    // Making a sync client has the record store take the enrolled device id. Done now,
    // before anything is written, every journal entry carries that id from the start
    // (the SDK re-stamps records written earlier, but not the bases of pending journal
    // entries, which would then look concurrent to later edits at the first sync).
    { const SyncClient adopt(env.context, ws.vault(), ws.records(), ws.clock()); }
    Settings settings = ws.settings();
    if (!o.localAuthority.empty()) {
      settings.set(kLocalAuthority, o.localAuthority);
    }
    if (!o.policeForceArea.empty()) {
      settings.set(kPoliceForceArea, o.policeForceArea);
    }
    const std::string server = id.serverHost + ":" + std::to_string(id.serverPort);
    Result r;
    r.data = {{"device", deviceIdText(id)},
              {"worker", id.workerId},
              {"team", id.teamId},
              {"server", server}};
    r.text = "enrolled: device " + deviceIdText(id) + " of worker " + id.workerId + " (team " +
             id.teamId + ") with the server at " + server + " (its key is pinned)\n";
    if (!settings.get(kLocalAuthority) || !settings.get(kPoliceForceArea)) {
      r.text += "tip: new records need a local authority and police force area; give them "
                "with --local-authority and --police-force-area\n";
    }
    return r;
  });
}

// ---------------------------------------------------------------------------
// Sync
// ---------------------------------------------------------------------------

struct SyncCommandOptions {
  int timeoutSeconds = 30;
};

std::string_view phaseName(SyncPhase p) {
  switch (p) {
  case SyncPhase::connecting:
    return "connecting";
  case SyncPhase::commands:
    return "server commands";
  case SyncPhase::pushing:
    return "pushing";
  case SyncPhase::pulling:
    return "pulling";
  case SyncPhase::done:
    return "done";
  }
  return "syncing";
}

Result syncNow(Env& env, const SyncCommandOptions& o) {
  return withWorkspace(env, [&](Workspace& ws) {
    const DeviceIdentity& identity = ws.enrolled();
    const bool showProgress = !env.json || isatty(STDERR_FILENO) != 0;
    SyncOptions options;
    options.appVersion = std::string(kAppVersion);
    options.timeout = std::chrono::seconds(o.timeoutSeconds);
    std::optional<SyncPhase> lastPhase;
    options.onProgress = [&](const SyncProgress& p) {
      if (!showProgress) {
        return;
      }
      if (lastPhase != p.phase) {
        lastPhase = p.phase;
        std::cerr << "sync: " << phaseName(p.phase);
        if (p.phase == SyncPhase::connecting) {
          std::cerr << " to " << identity.serverHost << ":" << identity.serverPort;
        }
        std::cerr << "\n";
      }
      if (p.phase == SyncPhase::pushing || p.phase == SyncPhase::pulling) {
        std::cerr << "sync:   pushed " << p.changesPushed << " changes (" << p.writesPending
                  << " writes left), pulled " << p.changesPulled << " (" << p.recordsPulled
                  << " records), " << p.bytesUp << " B up, " << p.bytesDown << " B down\n";
      }
    };
    SyncReport report;
    {
      SyncClient client(env.context, ws.vault(), ws.records(), ws.clock(), options);
      try {
        report = client.sync();
      } catch (const Error& e) {
        if (e.code() == Errc::revoked) {
          ws.abandon(); // the SDK wiped the vault
          std::error_code ec;
          fs::remove_all(env.folder.vaultDir(), ec);
          fs::remove_all(env.folder.keysDir(), ec);
          throw Failure(Errc::revoked,
                        "the central team revoked this device: its vault has been wiped and "
                        "nothing of it can be read any more; ask for a new enrollment code, "
                        "then init and enroll",
                        {{"wiped", true}});
        }
        try {
          ws.settings().set(kLastSyncError, std::string(errcName(e.code())) + ": " + e.message());
        } catch (const Error&) {
          // The failure itself is what matters to the worker.
        }
        throw;
      }
    }
    Settings settings = ws.settings();
    settings.set(kLastSyncMs, std::to_string(report.finishedAtMs));
    settings.erase(kLastSyncError);
    model::RecordQuery q;
    q.syncState = model::SyncState::conflict;
    q.limit = 1000;
    const std::size_t inConflict = ws.records().queryIds(q).ids.size();
    json purged = json::array();
    std::size_t purgedRecords = 0;
    for (const DeletionReceipt& d : report.purged) {
      json ids = json::array();
      for (const auto& id : d.records) {
        ids.push_back(id.toString());
      }
      purgedRecords += d.records.size();
      purged.push_back({{"records", ids}, {"discardedChanges", d.discardedChanges}});
    }
    Result r;
    r.data = {{"pushed", report.changesPushed},
              {"writesAcknowledged", report.writesAcknowledged},
              {"rejected", report.changesRejected},
              {"pulled", report.changesPulled},
              {"recordsUpdated", report.recordsUpdated},
              {"newConflicts", report.newConflicts},
              {"recordsInConflict", inConflict},
              {"purged", purged},
              {"templatesInstalled", report.templatesInstalled},
              {"bytesUp", report.bytesUp},
              {"bytesDown", report.bytesDown},
              {"roundTrips", report.roundTrips},
              {"pendingChanges", ws.records().journal().pendingCount()},
              {"finishedAt", isoTime(report.finishedAtMs)}};
    r.text = "synced with " + identity.serverHost + ":" + std::to_string(identity.serverPort) +
             ": pushed " + std::to_string(report.changesPushed) + " changes, pulled " +
             std::to_string(report.changesPulled) + " (" + std::to_string(report.recordsUpdated) +
             " records), " + std::to_string(report.bytesUp) + " B up, " +
             std::to_string(report.bytesDown) + " B down\n";
    if (report.changesRejected > 0) {
      r.text += "changes the server refused: " + std::to_string(report.changesRejected) +
                " (see status)\n";
    }
    if (report.newConflicts > 0 || inConflict > 0) {
      r.text += "new competing values: " + std::to_string(report.newConflicts) +
                "; records in conflict: " + std::to_string(inConflict) +
                " (review them with 'conflicts list')\n";
    }
    if (purgedRecords > 0) {
      r.text += "records removed from this device (no longer in the worker's teams): " +
                std::to_string(purgedRecords) + "\n";
    }
    if (report.templatesInstalled > 0) {
      r.text += "templates installed: " + std::to_string(report.templatesInstalled) + "\n";
    }
    return r;
  });
}

// ---------------------------------------------------------------------------
// Conflicts
// ---------------------------------------------------------------------------

struct ConflictOptions {
  std::string record;
  std::string field;
  std::optional<std::size_t> take;
  std::string value;
  std::string text;
};

json versionJson(const sync::FieldVersion& v) {
  return {{"value", valueJson(v.value)},
          {"device", v.deviceId.toString()},
          {"time", isoTime(static_cast<std::int64_t>(v.hlc.physicalMs()))},
          {"hlc", v.hlc.value},
          {"change", v.changeId.toString()}};
}

std::string versionText(const sync::FieldVersion& v) {
  return valueText(v.value) + "   (device " + v.deviceId.toString() + ", " +
         isoTime(static_cast<std::int64_t>(v.hlc.physicalMs())) + ")";
}

Result conflictsList(Env& env, const ConflictOptions&) {
  return withWorkspace(env, [&](Workspace& ws) {
    model::RecordQuery q;
    q.syncState = model::SyncState::conflict;
    q.limit = 200;
    json list = json::array();
    Result r;
    for (;;) {
      const model::IdPage page = ws.records().queryIds(q);
      for (const sync::Uuid& id : page.ids) {
        const auto rec = ws.records().view(id); // the values are shown: audited
        const auto fields = ws.records().conflicts(id);
        if (!rec || fields.empty()) {
          continue;
        }
        json fj = json::array();
        r.text += rec->type + " " + id.toString() + "\n";
        for (const model::FieldConflict& f : fields) {
          json competing = json::array();
          r.text += "  " + f.field + ":\n    0) current    " + versionText(f.current) + "\n";
          for (std::size_t i = 0; i < f.competing.size(); ++i) {
            competing.push_back(versionJson(f.competing[i]));
            r.text += "    " + std::to_string(i + 1) + ") competing  " +
                      versionText(f.competing[i]) + "\n";
          }
          fj.push_back(
              {{"field", f.field}, {"current", versionJson(f.current)}, {"competing", competing}});
        }
        list.push_back({{"record", id.toString()}, {"type", rec->type}, {"fields", fj}});
      }
      if (!page.next) {
        break;
      }
      q.after = page.next;
    }
    if (list.empty()) {
      r.text = "no conflicts on this device\n";
    } else {
      r.text += "resolve one with 'conflicts resolve RECORD FIELD --take N' (0 keeps the current "
                "value) or --text/--value for a new one\n";
    }
    r.data = {{"conflicts", list}};
    return r;
  });
}

Result conflictsResolve(Env& env, const ConflictOptions& o) {
  const sync::Uuid id = parseId(o.record, "a record");
  const int given = (o.take ? 1 : 0) + (o.value.empty() ? 0 : 1) + (o.text.empty() ? 0 : 1);
  if (given != 1) {
    throw Failure(Errc::invalid_argument,
                  "say which value wins with exactly one of --take N (0 = current, 1.. = the "
                  "competing values of 'conflicts list'), --text TEXT or --value JSON");
  }
  std::optional<sync::Value> typed;
  if (!o.value.empty()) {
    try {
      typed = sync::valueFromJson(o.value);
    } catch (const Error&) {
      throw Failure(Errc::invalid_argument,
                    "--value '" + o.value +
                        "' is not a value in canonical JSON (e.g. \"text\", 12, true); for text "
                        "use --text");
    }
  } else if (!o.text.empty()) {
    typed = sync::Value{o.text};
  }
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(id, "", "record");
    const auto fields = ws.records().conflicts(id);
    const auto f = std::find_if(fields.begin(), fields.end(),
                                [&](const model::FieldConflict& c) { return c.field == o.field; });
    if (f == fields.end()) {
      throw Failure(Errc::invalid_argument, "field '" + o.field + "' of record " + o.record +
                                                " has no conflict; see 'conflicts list'");
    }
    sync::Value value;
    if (o.take) {
      if (*o.take > f->competing.size()) {
        throw Failure(Errc::invalid_argument, "--take " + std::to_string(*o.take) +
                                                  ": there are only " +
                                                  std::to_string(f->competing.size()) +
                                                  " competing values (0 keeps the current one)");
      }
      value = *o.take == 0 ? f->current.value : f->competing[*o.take - 1].value;
    } else {
      value = *typed;
    }
    ws.records().resolveConflict(id, o.field, value);
    const auto left = ws.records().conflicts(id);
    Result r;
    r.data = {{"record", id.toString()},
              {"field", o.field},
              {"value", valueJson(value)},
              {"fieldsStillInConflict", left.size()}};
    r.text = "resolved " + o.field + " of " + id.toString() + " to " + valueText(value) +
             "; the resolution syncs like any change\n";
    return r;
  });
}

} // namespace

void addSyncCommands(CLI::App& app, Action& action) {
  {
    auto o = std::make_shared<EnrollOptions>();
    auto* cmd = app.add_subcommand(
        "enroll", "Enroll this device with the payload (or code) from 'outpostctl enroll'");
    cmd->add_option("PAYLOAD", o->codeOrPayload,
                    "outpost-enroll:v1:HOST:PORT:KEY:CODE, or the code alone with --server and "
                    "--server-key")
        ->required();
    cmd->add_option("--server", o->server, "HOST:PORT of the server (with a bare code)");
    cmd->add_option("--server-key", o->serverKey, "The server's public key (with a bare code)");
    cmd->add_option("--local-authority", o->localAuthority,
                    "Default local authority of new records");
    cmd->add_option("--police-force-area", o->policeForceArea,
                    "Default police force area of new records");
    cmd->add_option("--timeout", o->timeoutSeconds, "Seconds to wait for the server")
        ->check(CLI::Range(1, 600))
        ->capture_default_str();
    onParsed(cmd, action, o, enroll);
  }
  {
    auto o = std::make_shared<SyncCommandOptions>();
    auto* cmd = app.add_subcommand("sync", "Push this device's changes and pull the team's");
    cmd->add_option("--timeout", o->timeoutSeconds, "Seconds for each network step")
        ->check(CLI::Range(1, 600))
        ->capture_default_str();
    onParsed(cmd, action, o, syncNow);
  }
  auto* conflicts = app.add_subcommand("conflicts", "Fields that colleagues changed concurrently");
  conflicts->require_subcommand(1);
  {
    auto o = std::make_shared<ConflictOptions>();
    auto* cmd = conflicts->add_subcommand("list", "Records with competing values");
    onParsed(cmd, action, o, conflictsList);
  }
  {
    auto o = std::make_shared<ConflictOptions>();
    auto* cmd = conflicts->add_subcommand("resolve", "Choose the value of a field in conflict");
    cmd->add_option("RECORD", o->record, "The record's id")->required();
    cmd->add_option("FIELD", o->field, "The field")->required();
    cmd->add_option("--take", o->take, "0 keeps the current value; N takes competing value N");
    cmd->add_option("--text", o->text, "A new text value");
    cmd->add_option("--value", o->value, "A new value in canonical JSON");
    onParsed(cmd, action, o, conflictsResolve);
  }
}

} // namespace outpost::field
