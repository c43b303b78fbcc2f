// init, unlock, lock, status, wipe and audit verify: the vault's life on the device.

#include "commands.hpp"

#include <outpost/audit.hpp>
#include <outpost/journal.hpp>

#include <unistd.h>

#include <iostream>

namespace outpost::field {

namespace {

/// How many records match (all pages).
std::size_t countRecords(model::RecordStore& records, model::RecordQuery q) {
  q.limit = 500;
  std::size_t n = 0;
  for (;;) {
    const model::IdPage page = records.queryIds(q);
    n += page.ids.size();
    if (!page.next) {
      return n;
    }
    q.after = page.next;
  }
}

template <typename PageOf>
std::size_t countPages(PageOf pageOf) {
  std::size_t n = 0;
  std::optional<std::string> after;
  for (;;) {
    const model::IdPage page = pageOf(after);
    n += page.ids.size();
    if (!page.next) {
      return n;
    }
    after = page.next;
  }
}

struct InitOptions {
  std::string localAuthority;
  std::string policeForceArea;
};

Result init(Env& env, const InitOptions& o) {
  if (Vault::exists(env.folder.vaultDir())) {
    throw Failure(Errc::already_exists,
                  "'" + env.folder.dir.string() +
                      "' already holds a vault; use it, or run wipe first to start again");
  }
  const SecretBytes pin = readNewPin();
  fs::create_directories(env.folder.dir);
  fs::permissions(env.folder.dir, fs::perms::owner_all, fs::perm_options::replace);
  const FolderLock lock(env.folder, kLockWait);
  platform::FileKeyStore keyStore(env.folder.keysDir());
  auto vault = Vault::create(env.context, env.folder.vaultDir(), pinText(pin), keyStore);
  Settings settings(*vault);
  if (!o.localAuthority.empty()) {
    settings.set(kLocalAuthority, o.localAuthority);
  }
  if (!o.policeForceArea.empty()) {
    settings.set(kPoliceForceArea, o.policeForceArea);
  }
  vault->lock();
  Result r;
  r.data = {{"vault", env.folder.dir.string()},
            {"created", true},
            {"localAuthority", o.localAuthority},
            {"policeForceArea", o.policeForceArea}};
  r.text = "created an encrypted vault in " + env.folder.dir.string() +
           "\nnext: enroll this device with the payload from 'outpostctl enroll':\n"
           "  outpost-field --vault " +
           env.folder.dir.string() + " enroll outpost-enroll:v1:...\n";
  return r;
}

Result unlock(Env& env) {
  env.folder.requireVault();
  const FolderLock lock(env.folder, kLockWait);
  const SecretBytes pin = readPin("PIN: ");
  Workspace ws(env.context, env.folder, pinText(pin));
  Result r;
  r.data = {{"pinCorrect", true}, {"locked", true}};
  r.text = "PIN correct. The vault is locked again: each outpost-field command unlocks it with\n"
           "the PIN for its own run and locks it (wiping the keys from memory) before it exits.\n";
  return r;
}

Result lock(Env& env) {
  env.folder.requireVault();
  const bool wasInUse = FolderLock::heldElsewhere(env.folder);
  const FolderLock held(env.folder, std::chrono::minutes(5));
  Result r;
  r.data = {{"locked", true}, {"waitedForCommand", wasInUse}, {"waitedMs", held.waited().count()}};
  r.text = std::string(wasInUse ? "waited for the running command to finish; " : "") +
           "the vault is locked: no outpost-field command holds its keys (each command locks it "
           "before it exits)\n";
  return r;
}

Result status(Env& env) {
  env.folder.requireVault();
  const bool inUse = FolderLock::heldElsewhere(env.folder);
  Result r;
  r.data = {{"vault", env.folder.dir.string()}, {"locked", !inUse}, {"inUse", inUse}};
  r.text = "vault " + env.folder.dir.string() + ": " +
           (inUse ? "unlocked by a running outpost-field command\n"
                  : "locked (between commands it always is)\n");
  if (!pinAvailable()) {
    r.data["details"] = false;
    r.text += "give the PIN (at a terminal or in OUTPOST_PIN) to see what is in it\n";
    return r;
  }
  const FolderLock held(env.folder, kLockWait);
  const SecretBytes pin = readPin("PIN: ");
  Workspace ws(env.context, env.folder, pinText(pin));
  model::RecordStore& records = ws.records();
  Settings settings = ws.settings();
  const std::int64_t now = ws.clock().unixMillis();

  r.data["details"] = true;
  if (const auto& id = ws.identity()) {
    r.data["enrolled"] = true;
    r.data["device"] = deviceIdText(*id);
    r.data["worker"] = id->workerId;
    r.data["team"] = id->teamId;
    r.data["server"] = id->serverHost + ":" + std::to_string(id->serverPort);
    r.text += "enrolled: device " + deviceIdText(*id) + ", worker " + id->workerId + ", team " +
              id->teamId + ", server " + id->serverHost + ":" + std::to_string(id->serverPort) +
              "\n";
  } else {
    r.data["enrolled"] = false;
    r.text += "not enrolled yet (enroll with the payload from 'outpostctl enroll')\n";
  }
  const std::int64_t pending = records.journal().pendingCount();
  r.data["pendingChanges"] = pending;
  const auto lastSync = settings.get(kLastSyncMs);
  r.data["lastSync"] = lastSync ? json(isoTime(std::stoll(*lastSync))) : json(nullptr);
  const auto lastError = settings.get(kLastSyncError);
  r.data["lastSyncError"] = lastError ? json(*lastError) : json(nullptr);
  r.text += "writes waiting to sync: " + std::to_string(pending) + "\n";
  r.text += "last sync: " + (lastSync ? isoTime(std::stoll(*lastSync)) : std::string("never")) +
            (lastError ? " (the latest attempt failed: " + *lastError + ")" : std::string()) + "\n";

  model::RecordQuery inConflict;
  inConflict.syncState = model::SyncState::conflict;
  const std::size_t conflicts = countRecords(records, inConflict);
  model::RecordQuery rejected;
  rejected.syncState = model::SyncState::rejected;
  const std::size_t rejectedCount = countRecords(records, rejected);
  r.data["conflicts"] = conflicts;
  r.data["rejected"] = rejectedCount;
  r.text += "records in conflict: " + std::to_string(conflicts) +
            (conflicts > 0 ? " (see 'conflicts list')" : "") + "\n";
  if (rejectedCount > 0) {
    r.text += "records the server refused: " + std::to_string(rejectedCount) + "\n";
  }

  Domain& d = ws.domain();
  const std::size_t reviews = countPages(
      [&](std::optional<std::string> after) { return d.assessments.reviewsDue(now, 500, after); });
  const std::size_t interviews = countPages(
      [&](std::optional<std::string> after) { return d.missing.overdueInterviews(500, after); });
  r.data["overdueReviews"] = reviews;
  r.data["overdueInterviews"] = interviews;
  r.text += "assessment reviews overdue: " + std::to_string(reviews) + "\n";
  r.text += "return-home interviews overdue (past 72 h): " + std::to_string(interviews) +
            (interviews > 0 ? " (see 'missing overdue')" : "") + "\n";

  json counts = json::object();
  std::string countText;
  for (const std::string& type : records.schema().typeNames()) {
    model::RecordQuery q;
    q.type = type;
    if (const std::size_t n = countRecords(records, q); n > 0) {
      counts[type] = n;
      countText += (countText.empty() ? "" : ", ") + std::to_string(n) + " " + type;
    }
  }
  r.data["records"] = counts;
  r.text += "records: " + (countText.empty() ? std::string("none") : countText) + "\n";
  r.data["auditEvents"] = records.audit().size();
  return r;
}

struct WipeOptions {
  bool yes = false;
};

Result wipe(Env& env, const WipeOptions& o) {
  env.folder.requireVault();
  if (!o.yes) {
    if (isatty(STDIN_FILENO) == 0) {
      throw Failure(Errc::invalid_argument,
                    "wipe destroys every record on this device that has not synced; confirm "
                    "with --yes");
    }
    std::cerr << "This destroys the vault's key and files: records not yet synced are lost.\n"
                 "Type 'wipe' to confirm: "
              << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "wipe") {
      throw Failure(Errc::cancelled, "not confirmed; nothing was wiped");
    }
  }
  const FolderLock lock(env.folder, kLockWait);
  platform::FileKeyStore keyStore(env.folder.keysDir());
  std::unique_ptr<Vault> vault;
  try {
    vault = Vault::open(env.context, env.folder.vaultDir(), keyStore);
  } catch (const Error& e) {
    if (e.code() != Errc::shredded) {
      throw;
    }
  }
  if (vault) {
    vault->wipe();
  }
  // Whatever is left (all of it when the key was already destroyed after too many
  // wrong PINs): the vault's files and this device's key store items.
  std::error_code ec;
  fs::remove_all(env.folder.vaultDir(), ec);
  fs::remove_all(env.folder.keysDir(), ec);
  Result r;
  r.data = {{"wiped", true}, {"vault", env.folder.dir.string()}};
  r.text = "wiped: the vault's key and files are destroyed. To use this device again: init, "
           "then enroll with a new code\n";
  return r;
}

Result auditVerify(Workspace& ws) {
  const model::AuditVerification v = ws.records().audit().verify();
  Result r;
  r.data = {{"intact", v.intact},
            {"eventsChecked", v.eventsChecked},
            {"signaturesChecked", v.signaturesChecked},
            {"firstBadSeq", v.firstBadSeq ? json(*v.firstBadSeq) : json(nullptr)},
            {"problem", v.problem}};
  if (!v.intact) {
    throw Failure(Errc::tampered,
                  "the device's audit chain does not verify at event " +
                      std::to_string(v.firstBadSeq.value_or(0)) + ": " + v.problem +
                      "; do not trust this device, report it to the central team",
                  r.data);
  }
  r.text = "the device's audit chain is intact: " + std::to_string(v.eventsChecked) + " events, " +
           std::to_string(v.signaturesChecked) + " Ed25519 checkpoint signatures checked\n";
  return r;
}

} // namespace

void addVaultCommands(CLI::App& app, Action& action) {
  auto initOptions = std::make_shared<InitOptions>();
  auto* initCmd = app.add_subcommand(
      "init", "Create the device's encrypted vault (the PIN is asked twice at a terminal)");
  initCmd->add_option("--local-authority", initOptions->localAuthority,
                      "Default local authority of new records");
  initCmd->add_option("--police-force-area", initOptions->policeForceArea,
                      "Default police force area of new records");
  initCmd->callback([&action, initOptions] {
    action = [initOptions](Env& env) { return init(env, *initOptions); };
  });

  app.add_subcommand("unlock", "Check the PIN (each command unlocks the vault for its own run)")
      ->callback([&action] { action = [](Env& env) { return unlock(env); }; });
  app.add_subcommand("lock", "Wait until no command holds the vault's keys, and say so")
      ->callback([&action] { action = [](Env& env) { return lock(env); }; });
  app.add_subcommand("status", "Locked?, enrollment, changes to sync, last sync, conflicts, "
                               "overdue reviews and return-home interviews")
      ->callback([&action] { action = [](Env& env) { return status(env); }; });

  auto wipeOptions = std::make_shared<WipeOptions>();
  auto* wipeCmd =
      app.add_subcommand("wipe", "Destroy the vault's key and files (records not synced are lost)");
  wipeCmd->add_flag("--yes", wipeOptions->yes, "Do not ask for confirmation");
  wipeCmd->callback([&action, wipeOptions] {
    action = [wipeOptions](Env& env) { return wipe(env, *wipeOptions); };
  });

  auto* audit = app.add_subcommand("audit", "The device's audit trail");
  audit->require_subcommand(1);
  audit->add_subcommand("verify", "Check the hash chain and the checkpoint signatures")
      ->callback([&action] { action = unlocked(auditVerify); });
}

} // namespace outpost::field
