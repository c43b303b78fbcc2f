#pragma once
// One device folder (--vault DIR) and one command's use of it: the lock that keeps
// commands on a device one at a time, the worker's PIN, and the unlocked vault with
// its record store and the typed safeguarding API.
//
//   DIR/vault/       the encrypted vault: records, journal, audit trail, the device's
//                    identity (keys from enrollment) and this app's settings
//   DIR/keys/        the platform key store (on Linux a development file store, 0600)
//   DIR/field.lock   held (flock) by the command that has the vault open
//
// Nothing else is written next to the vault: the app's settings (local authority,
// police force area, the last sync) live in a table inside the vault, encrypted.

#include "output.hpp"

#include <outpost/context.hpp>
#include <outpost/device_identity.hpp>
#include <outpost/platform/clock.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/records.hpp>
#include <outpost/safeguarding.hpp>
#include <outpost/secret.hpp>
#include <outpost/template.hpp>
#include <outpost/vault.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace outpost::field {

namespace fs = std::filesystem;
namespace sg = outpost::safeguarding;

/// The paths of a device folder.
struct DeviceFolder {
  fs::path dir;
  [[nodiscard]] fs::path vaultDir() const { return dir / "vault"; }
  [[nodiscard]] fs::path keysDir() const { return dir / "keys"; }
  [[nodiscard]] fs::path lockFile() const { return dir / "field.lock"; }
  /// Throws Failure{not_found} saying to run init when there is no vault.
  void requireVault() const;
};

/// An exclusive lock (flock) on the device folder, held by one command for its whole
/// run, so that two commands never have the vault open at once. Released on
/// destruction (and by the kernel if the process dies).
class FolderLock {
public:
  /// Waits up to `wait` for another command to finish; then throws Failure{busy}.
  FolderLock(const DeviceFolder& folder, std::chrono::milliseconds wait);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  /// True when another process holds the lock now (it has the vault open).
  [[nodiscard]] static bool heldElsewhere(const DeviceFolder& folder);
  /// How long the constructor waited.
  [[nodiscard]] std::chrono::milliseconds waited() const noexcept { return waited_; }

private:
  int fd_ = -1;
  std::chrono::milliseconds waited_{0};
};

/// True when a PIN can be had: OUTPOST_PIN is set or standard input is a terminal.
[[nodiscard]] bool pinAvailable();

/// The worker's PIN from OUTPOST_PIN, else typed at a no-echo prompt (on stderr) when
/// standard input is a terminal. Kept in guarded memory. Throws Failure{invalid_argument}
/// when there is neither, or the PIN is empty.
[[nodiscard]] SecretBytes readPin(std::string_view prompt);

/// A new PIN: OUTPOST_PIN, or typed twice at the terminal (both must match, at least
/// 4 characters).
[[nodiscard]] SecretBytes readNewPin();

[[nodiscard]] inline std::string_view pinText(const SecretBytes& pin) {
  return {reinterpret_cast<const char*>(pin.data()), pin.size()};
}

/// The app's settings, in a table inside the (unlocked) vault.
class Settings {
public:
  explicit Settings(Vault& vault) noexcept : vault_(vault) {}
  [[nodiscard]] std::optional<std::string> get(std::string_view key);
  void set(std::string_view key, std::string_view value);
  void erase(std::string_view key);

private:
  Vault& vault_;
};

/// The typed safeguarding API over one record store.
struct Domain {
  Domain(model::RecordStore& records, const model::TemplateCatalog& templates,
         const platform::Clock& clock)
      : children(records), assessments(records, templates, clock), notes(records, clock),
        missing(records, clock), sharing(records, clock), concerns(records),
        referrals(records, clock) {}
  sg::Children children;
  sg::Assessments assessments;
  sg::ContactNotes notes;
  sg::MissingEpisodes missing;
  sg::SharingDecisions sharing;
  sg::Concerns concerns;
  sg::Referrals referrals;
};

/// One command's unlocked vault: the record store, the device identity, templates
/// and the typed API. Locks the vault (wiping its keys) on destruction. Owns, in
/// order of destruction: the typed API, the record store, the vault.
class Workspace {
public:
  /// Opens the vault of `folder` and unlocks it with `pin`. Throws
  /// Failure{not_found} (no vault: run init), Failure{wrong_pin} (attempts left in
  /// the message and details), Failure{shredded}.
  Workspace(Context& context, const DeviceFolder& folder, std::string_view pin);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  /// After the vault locked itself (inactivity during an interactive walk): unlock
  /// it again and make a new record store.
  void unlockAgain(std::string_view pin);

  [[nodiscard]] Context& context() noexcept { return context_; }
  [[nodiscard]] Vault& vault() noexcept { return *vault_; }
  [[nodiscard]] model::RecordStore& records() noexcept { return *records_; }
  [[nodiscard]] Domain& domain() noexcept { return *domain_; }
  [[nodiscard]] Settings settings() noexcept { return Settings{*vault_}; }
  [[nodiscard]] const platform::Clock& clock() const noexcept { return clock_; }
  [[nodiscard]] const model::TemplateCatalog& templates() const noexcept { return templates_; }
  [[nodiscard]] const std::optional<DeviceIdentity>& identity() const noexcept { return identity_; }
  /// The enrolled identity; throws Failure{invalid_argument} saying how to enroll.
  [[nodiscard]] const DeviceIdentity& enrolled() const;
  /// The scope of a new record: the device's team, and the local authority and
  /// police force area given (or the defaults saved at init/enroll). Throws
  /// Failure{invalid_argument} when the device is not enrolled.
  [[nodiscard]] sg::Scope scope(const std::string& localAuthority,
                                const std::string& policeForceArea);
  /// The template an assessment uses; throws Failure{not_found}.
  [[nodiscard]] const model::Template& templateOf(std::string_view id, std::int64_t version) const;
  /// The record, which must be of `type` (or one of the types if `type` is empty);
  /// throws Failure{not_found} naming what was looked for.
  model::Record requireRecord(const sync::Uuid& id, std::string_view type, std::string_view what);
  /// Drops the store and the vault without locking them (the vault was wiped).
  void abandon() noexcept;

private:
  void openStore();

  Context& context_;
  DeviceFolder folder_;
  platform::SystemClock clock_;
  std::unique_ptr<platform::FileKeyStore> keyStore_;
  std::unique_ptr<Vault> vault_;
  std::optional<DeviceIdentity> identity_;
  model::TemplateCatalog templates_;
  std::unique_ptr<model::RecordStore> records_;
  std::unique_ptr<Domain> domain_;
};

/// The device id that enrollment assigned, as text.
[[nodiscard]] inline std::string deviceIdText(const DeviceIdentity& identity) {
  sync::Uuid id;
  id.bytes = identity.deviceId;
  return id.toString();
}

/// Settings keys.
inline constexpr std::string_view kLocalAuthority = "local_authority";
inline constexpr std::string_view kPoliceForceArea = "police_force_area";
inline constexpr std::string_view kLastSyncMs = "last_sync_ms";
inline constexpr std::string_view kLastSyncReport = "last_sync_report";
inline constexpr std::string_view kLastSyncError = "last_sync_error";

} // namespace outpost::field
