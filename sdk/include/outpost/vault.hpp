#pragma once
/// \file
/// The device vault: the encrypted SQLite store that everything on a worker's
/// device is written to. See docs/security-model.md for what it protects.
///
/// Key hierarchy: a random 32-byte database key (DEK) encrypts every page (see
/// the VFS); the DEK is stored only wrapped (XChaCha20-Poly1305) by a key derived
/// from the worker's PIN with Argon2id and combined with a device secret from the
/// platform key store. Unlocked keys live in guarded memory and are wiped on lock.

#include "outpost/export.h"

#include <outpost/context.hpp>
#include <outpost/platform/clock.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/sqlite.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>

namespace outpost {

struct VaultOptions {
  /// Argon2id cost for the PIN: 3 passes over 64 MiB (about 0.3–0.6 s on a
  /// mid-range phone). Stored with the wrapped key, so a vault keeps the
  /// parameters it was created (or last re-keyed) with.
  std::uint64_t argonOpsLimit = 3;
  std::size_t argonMemLimitBytes = std::size_t{64} << 20;
  /// Consecutive wrong PINs after which the wrapped key is destroyed.
  unsigned maxWrongPins = 10;
  /// Lock after this long without use; zero disables.
  std::chrono::milliseconds autoLockAfter = std::chrono::minutes(5);
  /// Seal the commit counter in the key store every N commits (and at lock).
  unsigned sealEveryCommits = 64;
  /// SQLite page cache per connection, in KiB (filled only as pages are read). A
  /// miss costs a page's decryption as well as its read, so the vault keeps
  /// sixteen times SQLite's default: enough for the index pages of ~100k records
  /// to stay in memory while their records are read (docs/vault.md).
  int cacheKiB = 32768;
  /// Checkpoint the WAL into the database file after this many pages (about
  /// 16 MiB of WAL). Four times SQLite's default: a page changed again before the
  /// checkpoint is copied once, and a checkpoint's sync is paid a quarter as
  /// often; each checkpoint takes longer (docs/vault.md).
  int walAutoCheckpointPages = 4000;
  /// WAL frames kept in memory after writing (8 KiB each, so up to 16 MiB) so that
  /// checkpoints and re-reads need no decryption. Wiped at lock.
  std::size_t walFrameCache = 2048;
  /// Threads that seal a commit's WAL pages beside the committing thread, started
  /// at the first commit that can use them. -1 (any negative): one fewer than the
  /// cores, at most 3; 0: the committing thread seals alone; at most 8.
  int sealHelpers = -1;
  /// `PRAGMA synchronous=FULL` (every commit is durable when it returns). NORMAL
  /// is faster but a power loss can undo the last commits.
  bool durableCommits = true;
  /// The SQLite VFS under the encrypting one (nullptr: the OS default). Tests put
  /// a fault-injecting VFS here.
  const char* baseVfs = nullptr;
  /// Time source for auto-lock (nullptr: the system clock).
  const platform::Clock* clock = nullptr;
};

/// What an unlock attempt came to. A wrong PIN is an expected outcome, not an error.
enum class UnlockStatus { unlocked, wrongPin, shredded };

struct UnlockResult {
  UnlockStatus status = UnlockStatus::wrongPin;
  unsigned attemptsLeft = 0; ///< before the key is destroyed
};

/// An encrypted store in a folder. Thread-safe: every method may be called from
/// any thread; database work is serialised (one connection, exclusive locking).
class OUTPOST_API Vault {
public:
  /// Creates a new vault in `dir` (created if needed; must not hold a vault),
  /// protected by `pin`. Returns it unlocked. Throws Error{already_exists},
  /// Error{invalid_argument} for an empty PIN, Error{io|disk_full}.
  static std::unique_ptr<Vault> create(Context& context, const std::filesystem::path& dir,
                                       std::string_view pin, platform::KeyStore& keyStore,
                                       VaultOptions options = {});

  /// Opens the vault in `dir`, locked. Throws Error{not_found} if there is none,
  /// Error{shredded} if its key was destroyed.
  static std::unique_ptr<Vault> open(Context& context, const std::filesystem::path& dir,
                                     platform::KeyStore& keyStore, VaultOptions options = {});

  /// True if `dir` holds a vault key file.
  [[nodiscard]] static bool exists(const std::filesystem::path& dir);

  /// The library that computes the ChaCha20-Poly1305 step of every page seal
  /// (XChaCha20-Poly1305) in this process: "openssl" or "libsodium". Both give the
  /// same bytes; see docs/security-model.md.
  [[nodiscard]] static std::string_view pageCipherImplementation() noexcept;

  ~Vault();
  Vault(const Vault&) = delete;
  Vault& operator=(const Vault&) = delete;

  /// Tries `pin`. A wrong PIN counts towards `maxWrongPins`; reaching it destroys
  /// the wrapped key (crypto-shred) and returns `shredded`. Throws
  /// Error{tampered|corrupt} if the files were altered, Error{rollback} if an
  /// older copy of the vault was put back.
  [[nodiscard]] UnlockResult unlock(std::string_view pin);

  /// Closes the database and wipes every key from memory. Idempotent.
  void lock() noexcept;
  [[nodiscard]] bool isLocked() const;

  /// Re-wraps the database key under `newPin` (no re-encryption of data). A wrong
  /// `oldPin` counts like a failed unlock. Throws Error{invalid_argument} for an
  /// empty new PIN.
  [[nodiscard]] UnlockResult changePin(std::string_view oldPin, std::string_view newPin);

  /// Destroys the key material (key file and device secret) and deletes the
  /// vault's files. The vault is unusable afterwards.
  void wipe();

  /// Runs `work` in one write transaction (BEGIN IMMEDIATE ... COMMIT) that also
  /// advances the commit counter; rolls back if `work` throws. Throws
  /// Error{locked} when locked.
  void write(const std::function<void(sql::Database&)>& work);

  /// Runs `work` with the connection for reading. Throws Error{locked} when locked.
  void read(const std::function<void(sql::Database&)>& work);

  /// Locks if the vault has been idle for longer than `autoLockAfter`; returns
  /// whether it is locked now. Apps call it from a timer; every access checks too.
  bool checkAutoLock();

  /// Registers `onLock`, called whenever the vault locks (explicitly, by
  /// auto-lock, by wipe or on destruction), under the vault's lock and before the
  /// connection closes: release every statement prepared on the connection there.
  /// A statement that outlives the connection keeps it open and is a bug; the vault
  /// then keeps its keys until it is destroyed and logs an error. Returns an id
  /// for `removeLockObserver`.
  std::uint64_t addLockObserver(std::function<void()> onLock);
  void removeLockObserver(std::uint64_t id) noexcept;

  /// Commits made since the vault was created.
  [[nodiscard]] std::uint64_t commitCount();

  [[nodiscard]] const std::filesystem::path& directory() const noexcept;
  [[nodiscard]] std::filesystem::path databasePath() const;

  struct Impl;

private:
  explicit Vault(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace outpost
