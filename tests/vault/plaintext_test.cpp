#include "vault_fixture.hpp"

#include <doctest/doctest.h>

#include <filesystem>

using namespace outpost;
using namespace outpost::test;

namespace {

const std::string kMarker = "MARKER-7f3a-child-disclosed";

/// Every file under the vault folder, checked for plaintext.
void requireNoPlaintext(const std::filesystem::path& dir) {
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) {
      continue;
    }
    ++files;
    const auto bytes = readFile(e.path());
    INFO("file: " << e.path().filename().string());
    CHECK_FALSE(contains(bytes, kMarker));
    CHECK_FALSE(contains(bytes, "SQLite format 3"));
    CHECK_FALSE(contains(bytes, "CREATE TABLE"));
    CHECK_FALSE(contains(bytes, "notes"));
    CHECK_FALSE(contains(bytes, "vault_state"));
  }
  CHECK(files > 0);
}

} // namespace

TEST_SUITE("vault.plaintext") {
  TEST_CASE("no file of the vault ever holds record text, schema text or the SQLite header") {
    VaultFixture f;
    auto v = f.create();
    requireNoPlaintext(f.dir);
    for (int tx = 0; tx < 20; ++tx) {
      addNotes(*v, tx * 50, 50, kMarker);
      // After each commit, with the WAL not yet checkpointed.
      requireNoPlaintext(f.dir);
    }
    CHECK(std::filesystem::exists(f.dir / "vault.db-wal"));
    CHECK_FALSE(std::filesystem::exists(f.dir / "vault.db-shm"));
    CHECK(countNotes(*v) == 1000);
    v.reset();
    requireNoPlaintext(f.dir);
  }

  TEST_CASE("data written survives lock and unlock, and is readable only after unlock") {
    VaultFixture f;
    {
      auto v = f.create();
      addNotes(*v, 0, 10, kMarker);
      v->lock();
      CHECK(v->isLocked());
      CHECK_THROWS_AS(countNotes(*v), Error);
      CHECK(v->unlock("2468").status == UnlockStatus::unlocked);
      CHECK(countNotes(*v) == 10);
    }
    auto v = f.openUnlocked();
    CHECK(countNotes(*v) == 10);
    std::string body;
    v->read([&](sql::Database& db) { body = db.queryText("SELECT body FROM notes WHERE id = 3"); });
    CHECK(body.starts_with(kMarker + " note 3"));
    requireNoPlaintext(f.dir);
  }

  TEST_CASE("a copy of the files taken while the vault is open holds no plaintext either") {
    VaultFixture f;
    auto v = f.create();
    addNotes(*v, 0, 200, kMarker);
    TempDir copy;
    std::filesystem::copy(f.dir, copy.path(), std::filesystem::copy_options::recursive);
    requireNoPlaintext(copy.path());
  }
}
