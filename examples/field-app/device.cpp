#include "device.hpp"

#include <outpost/sync_client.hpp>

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/file.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

namespace outpost::field {

namespace {

constexpr std::string_view kSettingsSchema =
    "CREATE TABLE IF NOT EXISTS field_app_settings(key TEXT PRIMARY KEY, value TEXT NOT NULL)";

// The terminal's settings while echo is off, restored if the prompt is interrupted.
// A signal handler can only reach it through a global; it is set only around the
// prompt.
termios gSavedTerminal{};
volatile std::sig_atomic_t gEchoOff = 0;

extern "C" void restoreTerminalAndExit(int signal) {
  if (gEchoOff != 0) {
    tcsetattr(STDIN_FILENO, TCSANOW, &gSavedTerminal);
  }
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

/// Reads one line from the terminal with echo off, into guarded memory.
SecretBytes promptNoEcho(std::string_view prompt) {
  std::cerr << prompt << std::flush;
  termios noEcho{};
  const bool terminal = tcgetattr(STDIN_FILENO, &gSavedTerminal) == 0;
  if (terminal) {
    noEcho = gSavedTerminal;
    noEcho.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    gEchoOff = 1;
    std::signal(SIGINT, restoreTerminalAndExit);
    std::signal(SIGTERM, restoreTerminalAndExit);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &noEcho);
  }
  SecretBytes buffer(256);
  std::size_t n = 0;
  bool ended = false;
  for (;;) {
    char c = 0;
    const ssize_t got = ::read(STDIN_FILENO, &c, 1);
    if (got <= 0 || c == '\n' || c == '\r') {
      ended = got > 0;
      break;
    }
    if (n < buffer.size()) {
      buffer.data()[n++] = static_cast<unsigned char>(c);
    }
  }
  if (terminal) {
    tcsetattr(STDIN_FILENO, TCSANOW, &gSavedTerminal);
    gEchoOff = 0;
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
  }
  std::cerr << "\n";
  if (!ended && n == 0) {
    throw Failure(Errc::invalid_argument, "no PIN was typed (end of input)");
  }
  return SecretBytes::copyOf(buffer.bytes().first(n));
}

} // namespace

void DeviceFolder::requireVault() const {
  if (!Vault::exists(vaultDir())) {
    throw Failure(Errc::not_found, "there is no vault in '" + dir.string() +
                                       "'; create one with 'outpost-field --vault " + dir.string() +
                                       " init'");
  }
}

FolderLock::FolderLock(const DeviceFolder& folder, std::chrono::milliseconds wait) {
  fd_ = ::open(folder.lockFile().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    throw Failure(Errc::io, "cannot open '" + folder.lockFile().string() +
                                "'; check the folder exists and is writable");
  }
  const auto start = std::chrono::steady_clock::now();
  while (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    waited_ = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (waited_ >= wait) {
      ::close(fd_);
      fd_ = -1;
      throw Failure(Errc::busy, "another outpost-field command is using '" + folder.dir.string() +
                                    "'; wait for it to finish, then retry");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) {
    flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

bool FolderLock::heldElsewhere(const DeviceFolder& folder) {
  const int fd = ::open(folder.lockFile().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  const bool held = flock(fd, LOCK_SH | LOCK_NB) != 0;
  ::close(fd);
  return held;
}

bool pinAvailable() { return std::getenv("OUTPOST_PIN") != nullptr || isatty(STDIN_FILENO) != 0; }

SecretBytes readPin(std::string_view prompt) {
  if (const char* env = std::getenv("OUTPOST_PIN"); env != nullptr) {
    const std::string_view pin(env);
    if (pin.empty()) {
      throw Failure(Errc::invalid_argument, "OUTPOST_PIN is empty; set it to the worker's PIN");
    }
    return SecretBytes::copyOf(
        std::span(reinterpret_cast<const unsigned char*>(pin.data()), pin.size()));
  }
  if (isatty(STDIN_FILENO) == 0) {
    throw Failure(Errc::invalid_argument,
                  "no PIN: run the command at a terminal to type it, or set OUTPOST_PIN");
  }
  SecretBytes pin = promptNoEcho(prompt);
  if (pin.empty()) {
    throw Failure(Errc::invalid_argument, "the PIN is empty; type the worker's PIN");
  }
  return pin;
}

SecretBytes readNewPin() {
  const bool fromEnv = std::getenv("OUTPOST_PIN") != nullptr;
  SecretBytes pin = readPin("New PIN (at least 4 characters): ");
  if (pin.size() < 4) {
    throw Failure(Errc::invalid_argument, "the PIN is too short; choose at least 4 characters");
  }
  if (!fromEnv) {
    const SecretBytes again = readPin("The same PIN again: ");
    if (!pin.equals(again.bytes())) {
      throw Failure(Errc::invalid_argument,
                    "the two PINs differ; nothing was created, run init again");
    }
  }
  return pin;
}

std::optional<std::string> Settings::get(std::string_view key) {
  std::optional<std::string> value;
  vault_.read([&](sql::Database& db) {
    if (db.queryInt("SELECT count(*) FROM sqlite_schema WHERE name = 'field_app_settings'") == 0) {
      return;
    }
    sql::Statement st(db, "SELECT value FROM field_app_settings WHERE key = ?1");
    st.bind(1, key);
    if (st.step()) {
      value = std::string(st.columnText(0));
    }
  });
  return value;
}

void Settings::set(std::string_view key, std::string_view value) {
  vault_.write([&](sql::Database& db) {
    db.exec(kSettingsSchema);
    sql::Statement st(db, "INSERT OR REPLACE INTO field_app_settings(key, value) VALUES (?1, ?2)");
    st.bind(1, key).bind(2, value);
    st.run();
  });
}

void Settings::erase(std::string_view key) {
  vault_.write([&](sql::Database& db) {
    db.exec(kSettingsSchema);
    sql::Statement st(db, "DELETE FROM field_app_settings WHERE key = ?1");
    st.bind(1, key);
    st.run();
  });
}

Workspace::Workspace(Context& context, const DeviceFolder& folder, std::string_view pin)
    : context_(context), folder_(folder), templates_(model::TemplateCatalog::withBuiltins()) {
  folder.requireVault();
  keyStore_ = std::make_unique<platform::FileKeyStore>(folder.keysDir());
  vault_ = Vault::open(context, folder.vaultDir(), *keyStore_);
  unlockAgain(pin);
}

void Workspace::unlockAgain(std::string_view pin) {
  domain_.reset();
  records_.reset();
  const UnlockResult r = vault_->unlock(pin);
  if (r.status == UnlockStatus::wrongPin) {
    throw Failure(Errc::wrong_pin,
                  "wrong PIN; " + std::to_string(r.attemptsLeft) +
                      " attempts left before the vault destroys its key",
                  {{"attemptsLeft", r.attemptsLeft}});
  }
  if (r.status == UnlockStatus::shredded) {
    throw Failure(Errc::shredded,
                  "too many wrong PINs: the vault destroyed its key and its records cannot be "
                  "read any more; run wipe, then init and enroll the device again");
  }
  openStore();
}

void Workspace::openStore() {
  identity_ = loadDeviceIdentity(*vault_);
  for (const std::string& document : installedTemplates(*vault_)) {
    // A template the server sent that does not load stays out of the catalog;
    // assessments pinned to it say so when they need it.
    if (auto loaded = model::parseTemplate(document); loaded.loaded) {
      try {
        templates_.add(*loaded.loaded);
      } catch (const Error& e) {
        context_.log().warn("a template from the server was not added: {}", e.message());
      }
    }
  }
  model::RecordStoreOptions options;
  // Before enrollment nothing can be written (records need the device's team); reads
  // and views are attributed to the device as not yet enrolled.
  options.workerId = identity_ ? identity_->workerId : std::string("unenrolled");
  records_ = std::make_unique<model::RecordStore>(context_, *vault_, clock_, options);
  domain_ = std::make_unique<Domain>(*records_, templates_, clock_);
}

Workspace::~Workspace() {
  domain_.reset();
  if (records_) {
    try {
      records_->lock();
    } catch (const std::exception& e) {
      context_.log().warn("locking the vault: {}", e.what());
    }
  }
  records_.reset();
  vault_.reset();
}

void Workspace::abandon() noexcept {
  domain_.reset();
  records_.reset();
  vault_.reset();
}

const DeviceIdentity& Workspace::enrolled() const {
  if (!identity_) {
    throw Failure(Errc::invalid_argument,
                  "this device is not enrolled yet; run 'outpost-field --vault " +
                      folder_.dir.string() +
                      " enroll <payload>' with the payload from 'outpostctl enroll'");
  }
  return *identity_;
}

sg::Scope Workspace::scope(const std::string& localAuthority, const std::string& policeForceArea) {
  sg::Scope s;
  s.ownerTeam = enrolled().teamId;
  Settings st = settings();
  s.localAuthority =
      !localAuthority.empty() ? localAuthority : st.get(kLocalAuthority).value_or("");
  s.policeForceArea =
      !policeForceArea.empty() ? policeForceArea : st.get(kPoliceForceArea).value_or("");
  return s;
}

const model::Template& Workspace::templateOf(std::string_view id, std::int64_t version) const {
  const model::Template* t =
      version > 0 ? templates_.find(id, version) : templates_.latestPublished(id);
  if (t == nullptr) {
    throw Failure(Errc::not_found,
                  "template '" + std::string(id) +
                      (version > 0 ? "' version " + std::to_string(version) : std::string("'")) +
                      " is not on this device; the built-in one is cse-screening version 1, "
                      "others arrive with sync");
  }
  return *t;
}

model::Record Workspace::requireRecord(const sync::Uuid& id, std::string_view type,
                                       std::string_view what) {
  auto r = records_->get(id);
  if (!r || (!type.empty() && r->type != type)) {
    throw Failure(Errc::not_found, "there is no " + std::string(what) + " " + id.toString() +
                                       " on this device; check the id (list commands show them)");
  }
  return *r;
}

} // namespace outpost::field
