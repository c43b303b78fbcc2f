#include "outpost/vault.hpp"

#include "key_file.hpp"
#include "page_aead.hpp"
#include "page_table.hpp"
#include "vfs.hpp"

#include <outpost/error.hpp>
#include <outpost/platform/files.hpp>

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unistd.h>

namespace outpost {

namespace fs = std::filesystem;
using vault::DatabaseId;
using vault::KeyFile;
using vault::PageKeys;

namespace {

constexpr const char* kKeyFileName = "vault.key";
constexpr const char* kDatabaseName = "vault.db";
constexpr const char* kShreddedMarker = "vault.shredded";

const platform::SystemClock kSystemClock;

std::string hexId(const DatabaseId& id) {
  char hex[vault::kDatabaseIdBytes * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, id.data(), id.size());
  return hex;
}

/// The seal helpers an option asks for: -1 (any negative) is one fewer than the
/// cores, at most 3; more than 8 is 8.
unsigned sealHelpers(int option) {
  if (option >= 0) {
    return std::min(static_cast<unsigned>(option), 8u);
  }
  const unsigned cores = std::thread::hardware_concurrency();
  return cores > 1 ? std::min(cores - 1, 3u) : 0u;
}

void touchFile(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

} // namespace

struct Vault::Impl {
  Context& context;
  fs::path dir;
  platform::KeyStore& keyStore;
  VaultOptions options;
  const platform::Clock& clock;
  KeyFile keyFile;

  mutable std::recursive_mutex mutex;
  // Present only while unlocked. Destruction order: db before vfs.
  std::unique_ptr<vault::EncryptingVfs> vfs;
  std::unique_ptr<sql::Database> db;
  /// Counts a commit (made at the first write; finalised before `db` closes).
  std::unique_ptr<sql::Statement> countCommit;
  SecretBytes sealKey;
  std::uint64_t commits = 0;
  std::uint64_t lastSealed = 0;
  std::chrono::steady_clock::time_point lastActivity;
  std::map<std::uint64_t, std::function<void()>> lockObservers;
  std::uint64_t nextObserverId = 1;
  // VFSes of connections that could not close at once because statements were
  // still prepared on them (SQLite closes such a connection when the last one is
  // finalised, and its files call into the VFS until then): kept until the Vault
  // is destroyed.
  std::vector<std::unique_ptr<vault::EncryptingVfs>> leaked;

  Impl(Context& ctx, fs::path d, platform::KeyStore& ks, VaultOptions opts)
      : context(ctx), dir(std::move(d)), keyStore(ks), options(opts),
        clock(opts.clock != nullptr ? *opts.clock : kSystemClock) {}

  [[nodiscard]] std::string item(const char* what) const {
    return "vault-" + hexId(keyFile.databaseId) + "-" + what;
  }
  [[nodiscard]] fs::path dbPath() const { return dir / kDatabaseName; }

  // --- counters in the key store ------------------------------------------------

  unsigned wrongAttempts() {
    const auto v = keyStore.load(item("attempts"));
    if (!v || v->size() != 4) {
      return 0;
    }
    return static_cast<unsigned>(v->data()[0]) | (static_cast<unsigned>(v->data()[1]) << 8) |
           (static_cast<unsigned>(v->data()[2]) << 16) |
           (static_cast<unsigned>(v->data()[3]) << 24);
  }
  void setWrongAttempts(unsigned n) {
    const std::array<unsigned char, 4> v = {
        static_cast<unsigned char>(n), static_cast<unsigned char>(n >> 8),
        static_cast<unsigned char>(n >> 16), static_cast<unsigned char>(n >> 24)};
    keyStore.store(item("attempts"), v);
  }

  /// The commit counter, MACed with a subkey of the database key so that the key
  /// store item cannot be forged without it.
  void sealCounter() {
    std::array<unsigned char, 8 + crypto_auth_BYTES> v{};
    for (int i = 0; i < 8; ++i) {
      v[static_cast<std::size_t>(i)] = static_cast<unsigned char>(commits >> (8 * i));
    }
    crypto_auth(v.data() + 8, v.data(), 8, sealKey.data());
    keyStore.store(item("commits"), v);
    lastSealed = commits;
  }
  std::optional<std::uint64_t> sealedCounter() {
    const auto v = keyStore.load(item("commits"));
    if (!v) {
      return std::nullopt;
    }
    if (v->size() != 8 + crypto_auth_BYTES ||
        crypto_auth_verify(v->data() + 8, v->data(), 8, sealKey.data()) != 0) {
      throw Error(Errc::tampered, "the sealed commit counter in the key store does not verify");
    }
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) {
      n = (n << 8) | v->data()[i];
    }
    return n;
  }

  // --- the database connection ----------------------------------------------------

  void openDatabase(const SecretBytes& databaseKey, bool create) {
    vfs = std::make_unique<vault::EncryptingVfs>(
        PageKeys::derive(databaseKey.bytes(), keyFile.databaseId), options.baseVfs,
        options.walFrameCache, options.durableCommits, sealHelpers(options.sealHelpers));
    sealKey = vault::deriveSubkey(databaseKey.bytes(), vault::kCounterSealSubkey);
    if (!create && !fs::exists(dbPath())) {
      closeDatabase();
      throw Error(Errc::corrupt, "the vault database file is missing from " + dir.string());
    }
    try {
      const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) |
                        SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
      db = std::make_unique<sql::Database>(dbPath().string(), flags, vfs->name());
      // Exclusive locking before anything touches the file: the WAL index then
      // lives in heap memory and no -shm file is ever created.
      db->exec("PRAGMA locking_mode=EXCLUSIVE");
      int reserve = static_cast<int>(vault::kReserveBytes);
      if (create) {
        db->exec("PRAGMA page_size=4096");
        if (sqlite3_file_control(db->handle(), "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve) !=
            SQLITE_OK) {
          throw Error(Errc::internal, "cannot reserve page bytes for nonce and tag");
        }
      }
      if (db->queryText("PRAGMA journal_mode=WAL") != "wal") {
        throw Error(Errc::internal, "the vault could not switch to WAL mode");
      }
      db->exec(std::string("PRAGMA synchronous=") + (options.durableCommits ? "FULL" : "NORMAL") +
               "; PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0; PRAGMA cell_size_check=ON;"
               " PRAGMA cache_size=-" +
               std::to_string(options.cacheKiB) +
               "; PRAGMA wal_autocheckpoint=" + std::to_string(options.walAutoCheckpointPages));
      if (create) {
        sql::Transaction tx(*db);
        db->exec("CREATE TABLE vault_state(id INTEGER PRIMARY KEY CHECK (id = 1),"
                 " commits INTEGER NOT NULL);"
                 "INSERT INTO vault_state VALUES (1, 0);");
        tx.commit();
      }
      reserve = -1;
      sqlite3_file_control(db->handle(), "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
      if (reserve != static_cast<int>(vault::kReserveBytes)) {
        throw Error(Errc::corrupt, "the vault database has the wrong page layout");
      }
      commits = static_cast<std::uint64_t>(db->queryInt("SELECT commits FROM vault_state"));
    } catch (const Error& e) {
      const bool walTampered = vfs->walTamperDetected();
      closeDatabase();
      if (walTampered) {
        throw Error(Errc::tampered, "the vault's write-ahead log was altered outside Outpost");
      }
      if (e.code() == Errc::io) {
        throw Error(Errc::io, "cannot open the vault database: " + e.message());
      }
      throw;
    }
  }

  void closeDatabase() noexcept {
    if (db) {
      for (auto& [id, onLock] : lockObservers) {
        try {
          onLock();
        } catch (const std::exception& e) {
          context.log().error("vault: a lock observer failed: {}", e.what());
        }
      }
      countCommit.reset();
      sqlite3_stmt* open = sqlite3_next_stmt(db->handle(), nullptr);
      const std::string firstOpen = open != nullptr ? sqlite3_sql(open) : "";
      if (!db->tryClose()) {
        // Closing now would leave SQLite a zombie connection whose files still
        // call into this VFS: keep the VFS alive instead of freeing it under it.
        // (The SQL text names tables, never record contents.)
        context.log().error("vault: statements outlive the lock (first: {}); keys stay in "
                            "memory until the vault is destroyed",
                            firstOpen);
        leaked.push_back(std::move(vfs));
      }
    }
    db.reset();
    vfs.reset();
    sealKey.reset();
  }

  void requireUnlocked() {
    if (!db) {
      throw Error(Errc::locked, "the vault is locked; unlock it with the worker's PIN");
    }
    if (options.autoLockAfter.count() > 0 &&
        clock.monotonic() - lastActivity > options.autoLockAfter) {
      lockNow();
      throw Error(Errc::locked, "the vault locked itself after inactivity; unlock it again");
    }
    lastActivity = clock.monotonic();
  }

  void lockNow() noexcept {
    if (db && commits != lastSealed) {
      try {
        sealCounter();
      } catch (const std::exception& e) {
        context.log().warn("vault: could not seal the commit counter at lock: {}", e.what());
      }
    }
    closeDatabase();
  }

  /// Destroys the key material; `why` is logged.
  void shred(std::string_view why = "wrong-PIN limit reached") {
    platform::destroyFile(dir / kKeyFileName);
    touchFile(dir / kShreddedMarker);
    keyStore.erase(item("device"));
    keyStore.erase(item("attempts"));
    keyStore.erase(item("commits"));
    context.log().warn("vault: {}; key material destroyed", why);
  }

  /// Counts the attempt first (so killing the app mid-attempt still counts), then
  /// tries the PIN. The database key on success.
  std::optional<SecretBytes> tryPin(std::string_view pin, UnlockResult& result) {
    if (!fs::exists(dir / kKeyFileName)) {
      result = {UnlockStatus::shredded, 0};
      return std::nullopt;
    }
    const unsigned before = wrongAttempts();
    if (before >= options.maxWrongPins) {
      shred();
      result = {UnlockStatus::shredded, 0};
      return std::nullopt;
    }
    const auto device = keyStore.load(item("device"));
    if (!device) {
      // Without the device secret no PIN can ever unwrap the key (e.g. the
      // platform key store was cleared): say so instead of counting down.
      shred();
      result = {UnlockStatus::shredded, 0};
      return std::nullopt;
    }
    setWrongAttempts(before + 1);
    std::optional<SecretBytes> key = keyFile.unwrap(pin, device->bytes());
    if (!key) {
      const unsigned left = options.maxWrongPins - (before + 1);
      if (left == 0) {
        shred();
        result = {UnlockStatus::shredded, 0};
      } else {
        result = {UnlockStatus::wrongPin, left};
      }
      return std::nullopt;
    }
    setWrongAttempts(0);
    result = {UnlockStatus::unlocked, options.maxWrongPins};
    return key;
  }
};

Vault::Vault(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Vault::~Vault() {
  if (impl_) {
    impl_->lockNow();
  }
}

std::uint64_t Vault::addLockObserver(std::function<void()> onLock) {
  std::lock_guard guard(impl_->mutex);
  const std::uint64_t id = impl_->nextObserverId++;
  impl_->lockObservers.emplace(id, std::move(onLock));
  return id;
}

void Vault::removeLockObserver(std::uint64_t id) noexcept {
  std::lock_guard guard(impl_->mutex);
  impl_->lockObservers.erase(id);
}

bool Vault::exists(const fs::path& dir) { return fs::exists(dir / kKeyFileName); }

std::string_view Vault::pageCipherImplementation() noexcept {
  return vault::aead::implementation();
}

std::unique_ptr<Vault> Vault::create(Context& context, const fs::path& dir, std::string_view pin,
                                     platform::KeyStore& keyStore, VaultOptions options) {
  if (pin.empty()) {
    throw Error(Errc::invalid_argument, "the PIN must not be empty");
  }
  if (options.maxWrongPins == 0) {
    throw Error(Errc::invalid_argument, "maxWrongPins must be at least 1");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw Error(Errc::io, "cannot create the vault folder " + dir.string() + ": " + ec.message());
  }
  if (fs::exists(dir / kKeyFileName) || fs::exists(dir / kDatabaseName)) {
    throw Error(Errc::already_exists,
                "a vault already exists in " + dir.string() + "; open it, or wipe it first");
  }
  fs::remove(dir / kShreddedMarker, ec);

  auto impl = std::make_unique<Impl>(context, dir, keyStore, options);
  DatabaseId id{};
  randombytes_buf(id.data(), id.size());
  SecretBytes databaseKey(vault::kKeyBytes);
  crypto_kdf_keygen(databaseKey.data());
  SecretBytes deviceSecret(vault::kKeyBytes);
  randombytes_buf(deviceSecret.data(), deviceSecret.size());

  impl->keyFile = KeyFile::wrap(id, databaseKey.bytes(), pin, deviceSecret.bytes(),
                                options.argonOpsLimit, options.argonMemLimitBytes);
  keyStore.store(impl->item("device"), deviceSecret.bytes());
  impl->keyFile.save(dir / kKeyFileName);
  impl->setWrongAttempts(0);
  impl->openDatabase(databaseKey, true);
  impl->sealCounter();
  impl->lastActivity = impl->clock.monotonic();
  return std::unique_ptr<Vault>(new Vault(std::move(impl)));
}

std::unique_ptr<Vault> Vault::open(Context& context, const fs::path& dir,
                                   platform::KeyStore& keyStore, VaultOptions options) {
  if (!fs::exists(dir / kKeyFileName)) {
    if (fs::exists(dir / kShreddedMarker)) {
      throw Error(Errc::shredded,
                  "the vault in " + dir.string() + " was shredded; its data cannot be recovered");
    }
    throw Error(Errc::not_found, "no vault in " + dir.string() + "; create one first");
  }
  auto impl = std::make_unique<Impl>(context, dir, keyStore, options);
  impl->keyFile = KeyFile::load(dir / kKeyFileName);
  return std::unique_ptr<Vault>(new Vault(std::move(impl)));
}

UnlockResult Vault::unlock(std::string_view pin) {
  std::lock_guard guard(impl_->mutex);
  if (impl_->db) {
    return {UnlockStatus::unlocked, impl_->options.maxWrongPins};
  }
  UnlockResult result;
  const auto key = impl_->tryPin(pin, result);
  if (!key) {
    return result;
  }
  impl_->openDatabase(*key, false);
  try {
    const auto sealed = impl_->sealedCounter();
    if (sealed && impl_->commits < *sealed) {
      throw Error(Errc::rollback, "the vault holds " + std::to_string(impl_->commits) +
                                      " commits but " + std::to_string(*sealed) +
                                      " were sealed: an older copy was put back");
    }
  } catch (...) {
    impl_->closeDatabase();
    throw;
  }
  impl_->lastSealed = impl_->commits;
  impl_->lastActivity = impl_->clock.monotonic();
  return result;
}

void Vault::lock() noexcept {
  std::lock_guard guard(impl_->mutex);
  impl_->lockNow();
}

bool Vault::isLocked() const {
  std::lock_guard guard(impl_->mutex);
  return !impl_->db;
}

UnlockResult Vault::changePin(std::string_view oldPin, std::string_view newPin) {
  if (newPin.empty()) {
    throw Error(Errc::invalid_argument, "the new PIN must not be empty");
  }
  std::lock_guard guard(impl_->mutex);
  UnlockResult result;
  const auto key = impl_->tryPin(oldPin, result);
  if (!key) {
    return result;
  }
  const auto device = impl_->keyStore.load(impl_->item("device"));
  if (!device) {
    throw Error(Errc::shredded, "the device secret is gone; the vault cannot be re-keyed");
  }
  KeyFile next = KeyFile::wrap(impl_->keyFile.databaseId, key->bytes(), newPin, device->bytes(),
                               impl_->options.argonOpsLimit, impl_->options.argonMemLimitBytes);
  next.save(impl_->dir / kKeyFileName);
  impl_->keyFile = next;
  return result;
}

void Vault::wipe() {
  std::lock_guard guard(impl_->mutex);
  impl_->closeDatabase();
  impl_->shred("wiped");
  std::error_code ec;
  for (const char* suffix :
       {"", "-wal", "-journal", "-shm", vault::kSlotSuffixes[0], vault::kSlotSuffixes[1]}) {
    fs::remove(impl_->dir / (std::string(kDatabaseName) + suffix), ec);
  }
}

void Vault::write(const std::function<void(sql::Database&)>& work) {
  std::lock_guard guard(impl_->mutex);
  impl_->requireUnlocked();
  {
    sql::Transaction tx(*impl_->db);
    work(*impl_->db);
    if (!impl_->countCommit) {
      impl_->countCommit = std::make_unique<sql::Statement>(
          *impl_->db, "UPDATE vault_state SET commits = commits + 1 WHERE id = 1");
    }
    try {
      impl_->countCommit->run();
    } catch (...) {
      impl_->countCommit->reset();
      throw;
    }
    impl_->countCommit->reset();
    tx.commit();
  }
  ++impl_->commits;
  if (impl_->options.sealEveryCommits > 0 &&
      impl_->commits - impl_->lastSealed >= impl_->options.sealEveryCommits) {
    try {
      impl_->sealCounter();
    } catch (const std::exception& e) {
      // The data is committed; a failed seal only weakens rollback detection.
      impl_->context.log().warn("vault: could not seal the commit counter: {}", e.what());
    }
  }
}

void Vault::read(const std::function<void(sql::Database&)>& work) {
  std::lock_guard guard(impl_->mutex);
  impl_->requireUnlocked();
  work(*impl_->db);
}

bool Vault::checkAutoLock() {
  std::lock_guard guard(impl_->mutex);
  if (impl_->db && impl_->options.autoLockAfter.count() > 0 &&
      impl_->clock.monotonic() - impl_->lastActivity > impl_->options.autoLockAfter) {
    impl_->lockNow();
  }
  return !impl_->db;
}

std::uint64_t Vault::commitCount() {
  std::lock_guard guard(impl_->mutex);
  impl_->requireUnlocked();
  return impl_->commits;
}

const fs::path& Vault::directory() const noexcept { return impl_->dir; }

fs::path Vault::databasePath() const { return impl_->dbPath(); }

} // namespace outpost
