// The rollback journal: the vault itself runs in WAL mode, but the encrypting VFS
// also seals page images in a rollback journal (and masks their checksums), so a
// database used in rollback mode through it keeps no plaintext and recovers from
// a hot journal after a crash.

#include "../support/temp_dir.hpp"
#include "fault_vfs.hpp"
#include "vault/vfs.hpp"

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/sqlite.hpp>

#include <doctest/doctest.h>

using namespace outpost;
using namespace outpost::test;

namespace {

vault::PageKeys keys() {
  std::array<unsigned char, 32> dek{};
  dek.fill(0x42);
  vault::DatabaseId id{};
  id.fill(0x11);
  return vault::PageKeys::derive(dek, id);
}

std::unique_ptr<sql::Database> openRollbackMode(const vault::EncryptingVfs& vfs,
                                                const std::string& path) {
  auto db =
      std::make_unique<sql::Database>(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs.name());
  int reserve = static_cast<int>(vault::kReserveBytes);
  sqlite3_file_control(db->handle(), "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
  db->exec("PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL; PRAGMA cache_size=10");
  return db;
}

std::string bodies(sql::Database& db) {
  return db.queryText("SELECT group_concat(body, '|') FROM (SELECT body FROM t ORDER BY id)");
}

} // namespace

TEST_SUITE("vault.journal") {
  TEST_CASE("rollback-journal page images are sealed and a hot journal rolls back after a crash") {
    const Context context;
    FaultVfs fault;
    std::uint64_t total = 0;
    int recovered = 0;
    for (std::uint64_t crashAt = 0;; ++crashAt) {
      TempDir tmp;
      const std::string path = (tmp / "j.db").string();
      std::string before;
      {
        vault::EncryptingVfs vfs(keys(), FaultVfs::kName);
        auto db = openRollbackMode(vfs, path);
        db->exec("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)");
        {
          sql::Transaction tx(*db);
          for (int i = 0; i < 60; ++i) {
            db->exec("INSERT INTO t(body) VALUES ('original-" + std::to_string(i) +
                     std::string(200, 'o') + "')");
          }
          tx.commit();
        }
        before = bodies(*db);
        fault.crashAtOperation(crashAt);
        try {
          sql::Transaction tx(*db);
          db->exec("UPDATE t SET body = 'changed-' || id || printf('%.200c', 'c')");
          if (crashAt == 0) {
            // While the transaction is open the journal holds the old pages: sealed.
            const auto journal = readFile(path + "-journal");
            CHECK(journal.size() > 4096);
            CHECK_FALSE(contains(journal, "original-"));
            CHECK_FALSE(contains(journal, "SQLite format 3"));
          }
          tx.commit();
        } catch (const Error&) {
        }
        if (crashAt == 0) {
          total = fault.operations();
        }
      }
      const bool crashed = fault.crashed();
      fault.materialise(CrashPolicy::keepAll);
      {
        vault::EncryptingVfs vfs(keys(), nullptr);
        auto db = openRollbackMode(vfs, path);
        CHECK(db->queryText("PRAGMA integrity_check") == "ok");
        const std::string after = bodies(*db);
        // One of the two states, whole: every row original, or every row changed.
        const auto count = [&](const std::string& word) {
          std::size_t n = 0;
          for (auto at = after.find(word); at != std::string::npos; at = after.find(word, at + 1)) {
            ++n;
          }
          return n;
        };
        CHECK(((after == before && count("changed-") == 0) ||
               (count("changed-") == 60 && count("original-") == 0)));
        if (crashed && after == before) {
          ++recovered;
        }
      }
      if (crashAt > 0 && crashAt >= total) {
        break;
      }
    }
    MESSAGE("journal crash points: " << total << ", rolled back from a hot journal: " << recovered);
    CHECK(recovered > 0);
  }
}
