#include "vault_store.hpp"

#include "sql_store.hpp"

#include <outpost/error.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/vault.hpp>

#include <chrono>

namespace outpost::bench {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPin = "bench-pin-1234";

/// The W1 schema in the encrypted vault with its shipped defaults (page cache,
/// WAL frame cache) except synchronous=NORMAL, which WORKLOADS.md fixes for W1.
/// Unlock uses the vault's phone-class Argon2id parameters and is reported as
/// unlock_ms.
class VaultW1Store final : public SqlW1Store {
public:
  explicit VaultW1Store(int cacheKiB) : cacheKiB_(cacheKiB) {}

  [[nodiscard]] bool encrypted() const override { return true; }
  [[nodiscard]] fs::path databaseFile() const override { return dir() / "vault" / "vault.db"; }
  [[nodiscard]] fs::path walFile() const override { return dir() / "vault" / "vault.db-wal"; }

protected:
  sql::Database& connect(bool create, std::optional<double>& unlockMs) override {
    VaultOptions options;
    options.durableCommits = false;
    if (cacheKiB_ > 0) {
      options.cacheKiB = cacheKiB_;
    }
    options.autoLockAfter = std::chrono::milliseconds(0);
    keyStore_ = std::make_unique<platform::FileKeyStore>(dir() / "keystore");
    if (create) {
      vault_ = Vault::create(context_, dir() / "vault", kPin, *keyStore_, options);
    } else {
      const auto start = std::chrono::steady_clock::now();
      vault_ = Vault::open(context_, dir() / "vault", *keyStore_, options);
      const auto result = vault_->unlock(kPin);
      if (result.status != UnlockStatus::unlocked) {
        throw Error(Errc::wrong_pin, "bench vault did not unlock");
      }
      unlockMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count();
    }
    sql::Database* db = nullptr;
    vault_->read([&](sql::Database& d) { db = &d; });
    return *db;
  }

  void disconnect() override { vault_.reset(); }

  void inTransaction(const std::function<void()>& work) override {
    vault_->write([&](sql::Database&) { work(); });
  }

  void removeFiles() override {
    std::error_code ec;
    fs::remove_all(dir() / "vault", ec);
    fs::remove_all(dir() / "keystore", ec);
  }

private:
  int cacheKiB_;
  Context context_;
  std::unique_ptr<platform::FileKeyStore> keyStore_;
  std::unique_ptr<Vault> vault_;
};

} // namespace

std::unique_ptr<W1Store> makeVaultStore(int cacheKiB) {
  return std::make_unique<VaultW1Store>(cacheKiB);
}

int defaultVaultCacheKiB() { return VaultOptions{}.cacheKiB; }

} // namespace outpost::bench
