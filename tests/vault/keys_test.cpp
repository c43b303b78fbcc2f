#include "../journal/manual_clock.hpp"
#include "vault/page_aead.hpp"
#include "vault_fixture.hpp"

#include <doctest/doctest.h>

#include <array>
#include <filesystem>
#include <future>
#include <string_view>
#include <thread>

using namespace outpost;
using namespace outpost::test;
namespace fs = std::filesystem;

TEST_SUITE("vault.keys") {
  TEST_CASE("a wrong PIN is an expected outcome that counts down, and the right one resets it") {
    VaultFixture f;
    VaultOptions o = fastOptions();
    o.maxWrongPins = 5;
    f.create(o).reset();
    auto v = f.open(o);
    auto r = v->unlock("0000");
    CHECK(r.status == UnlockStatus::wrongPin);
    CHECK(r.attemptsLeft == 4);
    r = v->unlock("1111");
    CHECK(r.status == UnlockStatus::wrongPin);
    CHECK(r.attemptsLeft == 3);
    CHECK(v->isLocked());
    CHECK(v->unlock("2468").status == UnlockStatus::unlocked);
    v->lock();
    r = v->unlock("0000");
    CHECK(r.attemptsLeft == 4); // the count started again
  }

  TEST_CASE("the wrong-PIN count survives reopening the vault") {
    VaultFixture f;
    VaultOptions o = fastOptions();
    o.maxWrongPins = 3;
    f.create(o).reset();
    CHECK(f.open(o)->unlock("0000").attemptsLeft == 2);
    CHECK(f.open(o)->unlock("0000").attemptsLeft == 1);
    CHECK(f.open(o)->unlock("0000").status == UnlockStatus::shredded);
  }

  TEST_CASE("reaching the limit destroys the key: the data is unrecoverable even with the PIN") {
    VaultFixture f;
    VaultOptions o = fastOptions();
    o.maxWrongPins = 3;
    {
      auto v = f.create(o);
      addNotes(*v, 0, 10, "shred-me");
    }
    const auto keyFileBefore = readFile(f.dir / "vault.key");
    auto v = f.open(o);
    CHECK(v->unlock("1").status == UnlockStatus::wrongPin);
    CHECK(v->unlock("2").status == UnlockStatus::wrongPin);
    CHECK(v->unlock("3").status == UnlockStatus::shredded);
    CHECK(v->unlock("2468").status == UnlockStatus::shredded);
    CHECK_FALSE(fs::exists(f.dir / "vault.key"));
    try {
      (void)f.open(o);
      FAIL("a shredded vault opened");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::shredded);
    }
    // Even an attacker who kept a copy of the key file cannot unwrap it: the
    // device secret it also needs is gone from the key store.
    writeFile(f.dir / "vault.key", keyFileBefore);
    auto again = f.open(o);
    CHECK(again->unlock("2468").status != UnlockStatus::unlocked);
  }

  TEST_CASE("a cleared key store means the key is gone, not a wrong PIN") {
    VaultFixture f;
    f.create().reset();
    for (const auto& e : fs::directory_iterator(f.tmp / "keystore")) {
      if (e.path().filename().string().ends_with("-device.key")) {
        fs::remove(e.path());
      }
    }
    CHECK(f.open()->unlock("2468").status == UnlockStatus::shredded);
  }

  TEST_CASE("a missing database file is reported as corrupt") {
    VaultFixture f;
    f.create().reset();
    fs::remove(f.dir / "vault.db");
    try {
      (void)f.open()->unlock("2468");
      FAIL("unlocked without a database file");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::corrupt);
    }
  }

  TEST_CASE("changing the PIN re-wraps the key without re-encrypting the data") {
    VaultFixture f;
    {
      auto v = f.create();
      addNotes(*v, 0, 40, "pin-change");
    }
    const auto dbBefore = readFile(f.dir / "vault.db");
    {
      auto v = f.open();
      CHECK(v->changePin("9999", "1357").status == UnlockStatus::wrongPin);
      CHECK(v->changePin("2468", "1357").status == UnlockStatus::unlocked);
      CHECK_THROWS_AS((void)v->changePin("1357", ""), Error);
    }
    CHECK(readFile(f.dir / "vault.db") == dbBefore); // no page was rewritten
    auto v = f.open();
    CHECK(v->unlock("2468").status == UnlockStatus::wrongPin);
    CHECK(v->unlock("1357").status == UnlockStatus::unlocked);
    CHECK(countNotes(*v) == 40);
  }

  TEST_CASE("the vault locks itself after inactivity") {
    VaultFixture f;
    ManualClock clock;
    VaultOptions o = fastOptions();
    o.clock = &clock;
    o.autoLockAfter = std::chrono::minutes(5);
    auto v = f.create(o);
    addNotes(*v, 0, 5, "idle");
    clock.advance(std::chrono::minutes(4));
    CHECK(countNotes(*v) == 5); // use resets the timer
    clock.advance(std::chrono::minutes(4));
    CHECK_FALSE(v->checkAutoLock());
    clock.advance(std::chrono::minutes(2));
    CHECK(v->checkAutoLock());
    CHECK(v->isLocked());
    CHECK(v->unlock("2468").status == UnlockStatus::unlocked);
    clock.advance(std::chrono::minutes(6));
    try {
      (void)countNotes(*v);
      FAIL("an idle vault served a read");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::locked);
    }
  }

  TEST_CASE("lock observers release prepared statements before every kind of lock") {
    VaultFixture f;
    ManualClock clock;
    VaultOptions o = fastOptions();
    o.clock = &clock;
    auto v = f.create(o);
    addNotes(*v, 0, 5, "observer");
    std::unique_ptr<sql::Statement> cached;
    int released = 0;
    const auto id = v->addLockObserver([&] {
      cached.reset();
      ++released;
    });
    v->read([&](sql::Database& db) {
      cached = std::make_unique<sql::Statement>(db, "SELECT count(*) FROM notes");
    });
    clock.advance(std::chrono::minutes(10));
    CHECK(v->checkAutoLock()); // auto-lock: the observer ran before the close
    CHECK(released == 1);
    CHECK_FALSE(cached);
    CHECK(v->unlock("2468").status == UnlockStatus::unlocked);
    v->removeLockObserver(id);
    v->lock();
    CHECK(released == 1);
  }

  TEST_CASE("a statement that outlives the lock does not crash the process") {
    VaultFixture f;
    auto v = f.create();
    addNotes(*v, 0, 5, "leak");
    std::unique_ptr<sql::Statement> forgotten;
    v->read([&](sql::Database& db) {
      forgotten = std::make_unique<sql::Statement>(db, "SELECT count(*) FROM notes");
    });
    v->lock();
    CHECK(v->isLocked());
    forgotten.reset(); // finalised after the lock: the connection was kept for it
    CHECK(v->unlock("2468").status == UnlockStatus::unlocked);
    CHECK(countNotes(*v) == 5);
  }

  TEST_CASE("no page's key stays in a libcrypto context once the vault locks") {
    if (vault::aead::implementation() != std::string_view("openssl")) {
      MESSAGE("pages are sealed by libsodium alone here: no libcrypto context to check");
      return;
    }
    VaultFixture f;
    auto v = f.create(fastOptions());
    addNotes(*v, 0, 50, "forget-me");

    // Another thread's context holds its last message too, until the lock.
    std::promise<void> sealed;
    std::promise<void> locked;
    std::thread other([&, lockedDone = locked.get_future()] {
      const std::array<unsigned char, 32> key{1};
      const std::array<unsigned char, 24> nonce{2};
      const std::array<unsigned char, 64> plain{3};
      std::array<unsigned char, 64> out{};
      std::array<unsigned char, 16> tag{};
      vault::aead::seal(key, nonce, {}, plain, out.data(), tag.data());
      sealed.set_value();
      lockedDone.wait();
    });
    sealed.get_future().wait();
    CHECK(vault::aead::testing::contextsHoldingMessage() >= 2);
    v->lock();
    CHECK(vault::aead::testing::contextsHoldingMessage() == 0);
    locked.set_value();
    other.join();

    // The contexts still serve the next unlock, through libcrypto (not the
    // libsodium fallback a broken context would fall to).
    REQUIRE(v->unlock("2468").status == UnlockStatus::unlocked);
    const auto before = vault::aead::testing::libcryptoMessages();
    CHECK(countNotes(*v) == 50);
    CHECK(vault::aead::testing::libcryptoMessages() > before);
    CHECK(vault::aead::testing::contextsHoldingMessage() >= 1);
    v.reset(); // closing forgets too
    CHECK(vault::aead::testing::contextsHoldingMessage() == 0);
  }

  TEST_CASE("wipe destroys the key material and the files") {
    VaultFixture f;
    auto v = f.create();
    addNotes(*v, 0, 5, "wipe");
    v->wipe();
    CHECK(v->isLocked());
    CHECK_FALSE(fs::exists(f.dir / "vault.key"));
    CHECK_FALSE(fs::exists(f.dir / "vault.db"));
    CHECK_FALSE(fs::exists(f.dir / "vault.db-wal"));
    CHECK_FALSE(fs::exists(f.dir / "vault.db-pages0"));
    CHECK_FALSE(fs::exists(f.dir / "vault.db-pages1"));
    CHECK(v->unlock("2468").status == UnlockStatus::shredded);
    CHECK_THROWS_AS((void)f.open(), Error);
    // A new vault can be created in the same place.
    auto fresh = f.create();
    CHECK(fresh->commitCount() == 0);
  }

  TEST_CASE("bad input changes nothing: empty PIN, existing vault, no vault, damaged key file") {
    VaultFixture f;
    CHECK_THROWS_AS(f.create(fastOptions(), ""), Error);
    CHECK_FALSE(Vault::exists(f.dir));
    try {
      (void)f.open();
      FAIL("opened a vault that does not exist");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::not_found);
    }
    f.create().reset();
    try {
      (void)f.create();
      FAIL("created over an existing vault");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::already_exists);
    }
    auto key = readFile(f.dir / "vault.key");
    key[0] ^= 0xff;
    writeFile(f.dir / "vault.key", key);
    try {
      (void)f.open();
      FAIL("a damaged key file was accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::corrupt);
    }
  }

  TEST_CASE("the commit counter advances once per write transaction and not on rollback") {
    VaultFixture f;
    auto v = f.create();
    CHECK(v->commitCount() == 0);
    addNotes(*v, 0, 3, "count");
    addNotes(*v, 10, 3, "count");
    CHECK(v->commitCount() == 2);
    CHECK_THROWS((v->write([](sql::Database& db) {
      db.exec("INSERT INTO notes(id, body) VALUES (999, 'x')");
      throw Error(Errc::validation, "the app rejected this");
    })));
    CHECK(v->commitCount() == 2);
    CHECK(countNotes(*v) == 6);
  }
}
