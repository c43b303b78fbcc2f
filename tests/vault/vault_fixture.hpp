#pragma once
// A vault in a temp folder with a fast Argon2id setting, for tests.

#include "../support/temp_dir.hpp"

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/vault.hpp>

#include <sodium.h>

#include <memory>
#include <string>

namespace outpost::test {

inline VaultOptions fastOptions() {
  VaultOptions o;
  o.argonOpsLimit = crypto_pwhash_OPSLIMIT_MIN;
  o.argonMemLimitBytes = crypto_pwhash_MEMLIMIT_MIN;
  o.cacheKiB = 64; // small cache: reads really go to the files
  return o;
}

struct VaultFixture {
  Context context;
  TempDir tmp;
  std::filesystem::path dir = tmp / "vault";
  platform::FileKeyStore keyStore{tmp / "keystore"};

  std::unique_ptr<Vault> create(VaultOptions o = fastOptions(), const std::string& pin = "2468") {
    return Vault::create(context, dir, pin, keyStore, o);
  }
  std::unique_ptr<Vault> open(VaultOptions o = fastOptions()) {
    return Vault::open(context, dir, keyStore, o);
  }
  /// Opens and unlocks with `pin`; fails the test if that does not unlock.
  std::unique_ptr<Vault> openUnlocked(VaultOptions o = fastOptions(),
                                      const std::string& pin = "2468") {
    auto v = open(o);
    const auto r = v->unlock(pin);
    if (r.status != UnlockStatus::unlocked) {
      throw std::runtime_error("unlock failed");
    }
    return v;
  }
};

/// Inserts `count` notes containing `marker` in one transaction.
inline void addNotes(Vault& v, int first, int count, const std::string& marker) {
  v.write([&](sql::Database& db) {
    db.exec("CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    sql::Statement ins(db, "INSERT INTO notes(id, body) VALUES (?1, ?2)");
    for (int i = first; i < first + count; ++i) {
      ins.bind(1, std::int64_t{i})
          .bind(2, marker + " note " + std::to_string(i) + std::string(300, 'x'));
      ins.run();
      ins.reset();
    }
  });
}

inline std::int64_t countNotes(Vault& v) {
  std::int64_t n = -1;
  v.read([&](sql::Database& db) { n = db.queryInt("SELECT count(*) FROM notes"); });
  return n;
}

} // namespace outpost::test
