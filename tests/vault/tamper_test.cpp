// Tampering with the vault's files is reported as an error, never returned as
// data. Each test alters a copy of real vault files and opens it.

#include "vault_fixture.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <map>

using namespace outpost;
using namespace outpost::test;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kFrame = 24 + kPage;
constexpr std::size_t kWalHeader = 32;
const std::string kMarker = "tamper-marker";

/// Every note (id -> body) after an integrity check; throws Error on any failure.
std::map<std::int64_t, std::string> readAll(Vault& v) {
  std::map<std::int64_t, std::string> notes;
  v.read([&](sql::Database& db) {
    const std::string integrity = db.queryText("PRAGMA integrity_check");
    if (integrity != "ok") {
      throw Error(Errc::corrupt, "integrity_check: " + integrity);
    }
    sql::Statement st(db, "SELECT id, body FROM notes ORDER BY id");
    while (st.step()) {
      notes.emplace(st.columnInt(0), std::string(st.columnText(1)));
    }
  });
  return notes;
}

/// Opens the vault in `dir` and reads everything. The Error code, or ok with the
/// notes read.
struct OpenResult {
  bool failed = false;
  Errc code = Errc::ok;
  std::map<std::int64_t, std::string> notes;
};

OpenResult openAndReadAll(VaultFixture& f, const fs::path& dir, VaultOptions o = fastOptions()) {
  OpenResult r;
  try {
    auto v = Vault::open(f.context, dir, f.keyStore, o);
    const auto u = v->unlock("2468");
    REQUIRE(u.status == UnlockStatus::unlocked);
    r.notes = readAll(*v);
  } catch (const Error& e) {
    r.failed = true;
    r.code = e.code();
  }
  return r;
}

/// Opens the vault in `dir` and reads every note without an integrity check first,
/// so that an error comes from the page that fails, with its own code.
OpenResult openAndSelectAll(VaultFixture& f, const fs::path& dir) {
  OpenResult r;
  try {
    auto v = Vault::open(f.context, dir, f.keyStore, fastOptions());
    const auto u = v->unlock("2468");
    REQUIRE(u.status == UnlockStatus::unlocked);
    v->read([&](sql::Database& db) {
      sql::Statement st(db, "SELECT id, body FROM notes ORDER BY id");
      while (st.step()) {
        r.notes.emplace(st.columnInt(0), std::string(st.columnText(1)));
      }
    });
  } catch (const Error& e) {
    r.failed = true;
    r.code = e.code();
  }
  return r;
}

void copyDir(const fs::path& from, const fs::path& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
}

void requireReportedAsTampering(const OpenResult& r) {
  CHECK(r.failed);
  CHECK((r.code == Errc::tampered || r.code == Errc::corrupt));
}

} // namespace

TEST_SUITE("vault.tamper") {
  TEST_CASE("a flipped byte in any page of the database file is reported, never returned") {
    VaultFixture f;
    {
      auto v = f.create();
      for (int tx = 0; tx < 6; ++tx) {
        addNotes(*v, tx * 100, 60, kMarker);
      }
    } // closed: checkpointed, no WAL left
    const auto pristine = readFile(f.dir / "vault.db");
    REQUIRE(pristine.size() % kPage == 0);
    const std::size_t pages = pristine.size() / kPage;
    REQUIRE(pages > 20);
    const fs::path copy = f.tmp / "copy";
    copyDir(f.dir, copy);
    CHECK(openAndReadAll(f, copy).notes.size() == 360); // control: untouched copy reads

    int reported = 0;
    for (std::size_t p = 0; p < pages; ++p) {
      CAPTURE(p);
      auto bytes = pristine;
      // Vary the position: content, nonce and tag (the last 16 bytes of a
      // database page are an unused MAC slot that is never returned).
      const std::size_t at = p * kPage + (p * 977) % (kPage - 16);
      bytes[at] ^= 0x20;
      writeFile(copy / "vault.db", bytes);
      const auto r = openAndReadAll(f, copy);
      requireReportedAsTampering(r);
      reported += r.failed ? 1 : 0;
    }
    MESSAGE("database pages flipped: " << pages << ", reported: " << reported);
  }

  TEST_CASE("swapped, truncated or emptied database files are reported") {
    VaultFixture f;
    {
      auto v = f.create();
      for (int tx = 0; tx < 6; ++tx) {
        addNotes(*v, tx * 100, 60, kMarker);
      }
    }
    const auto pristine = readFile(f.dir / "vault.db");
    const fs::path copy = f.tmp / "copy";
    copyDir(f.dir, copy);

    SUBCASE("two pages swapped") {
      auto bytes = pristine;
      std::swap_ranges(bytes.begin() + 2 * kPage, bytes.begin() + 3 * kPage,
                       bytes.begin() + 5 * kPage);
      writeFile(copy / "vault.db", bytes);
      requireReportedAsTampering(openAndReadAll(f, copy));
    }
    SUBCASE("the last page cut off") {
      auto bytes = pristine;
      bytes.resize(bytes.size() - kPage);
      writeFile(copy / "vault.db", bytes);
      requireReportedAsTampering(openAndReadAll(f, copy));
    }
    SUBCASE("cut in the middle of a page") {
      auto bytes = pristine;
      bytes.resize(bytes.size() - 1000);
      writeFile(copy / "vault.db", bytes);
      requireReportedAsTampering(openAndReadAll(f, copy));
    }
    SUBCASE("emptied") {
      writeFile(copy / "vault.db", {});
      requireReportedAsTampering(openAndReadAll(f, copy));
    }
  }

  TEST_CASE("a flipped byte in any WAL frame is reported, except in the last transaction, "
            "which reads as the state before it") {
    VaultFixture f;
    VaultOptions o = fastOptions();
    o.walAutoCheckpointPages = 100000; // keep every frame in the WAL
    auto v = f.create(o);
    std::vector<std::uintmax_t> walSizeAfter;
    for (int tx = 0; tx < 8; ++tx) {
      addNotes(*v, tx * 100, 25, kMarker);
      walSizeAfter.push_back(fs::file_size(f.dir / "vault.db-wal"));
    }
    const fs::path image = f.tmp / "image";
    copyDir(f.dir, image); // what a crash (or a thief) would leave: an un-checkpointed WAL
    const auto wal = readFile(image / "vault.db-wal");
    const std::size_t frames = (wal.size() - kWalHeader) / kFrame;
    const std::size_t lastTxFirstFrame = (walSizeAfter[6] - kWalHeader) / kFrame + 1;
    REQUIRE(frames > 20);
    const auto before = openAndReadAll(f, image);
    REQUIRE_FALSE(before.failed);
    REQUIRE(before.notes.size() == 200);

    const fs::path copy = f.tmp / "copy";
    int reported = 0;
    int lastTx = 0;
    for (std::size_t j = 1; j <= frames; ++j) {
      CAPTURE(j);
      copyDir(image, copy);
      auto bytes = wal;
      bytes[kWalHeader + (j - 1) * kFrame + (j * 53) % kFrame] ^= 0x01;
      writeFile(copy / "vault.db-wal", bytes);
      const auto r = openAndReadAll(f, copy);
      if (j < lastTxFirstFrame) {
        requireReportedAsTampering(r);
        reported += r.failed ? 1 : 0;
      } else {
        // Indistinguishable from a crash during the last commit: either reported
        // or read as exactly the state before that commit.
        ++lastTx;
        if (!r.failed) {
          CHECK(r.notes.size() == 175);
          for (const auto& [id, body] : r.notes) {
            CHECK(before.notes.at(id) == body);
          }
        }
      }
    }
    MESSAGE("WAL frames flipped: " << frames << ", reported: " << reported
                                   << ", in the last transaction: " << lastTx);
  }

  TEST_CASE("swapped WAL frames and a frame replayed from an older WAL are reported") {
    VaultFixture f;
    VaultOptions o = fastOptions();
    o.walAutoCheckpointPages = 100000;
    auto v = f.create(o);
    for (int tx = 0; tx < 3; ++tx) {
      addNotes(*v, tx * 100, 25, kMarker);
    }
    const auto oldWal = readFile(f.dir / "vault.db-wal");
    // Checkpoint and restart: the next frames start a new generation at frame 1.
    v->read([](sql::Database& db) { db.exec("PRAGMA wal_checkpoint(RESTART)"); });
    for (int tx = 3; tx < 9; ++tx) {
      addNotes(*v, tx * 100, 25, kMarker);
    }
    const fs::path image = f.tmp / "image";
    copyDir(f.dir, image);
    const auto wal = readFile(image / "vault.db-wal");
    const fs::path copy = f.tmp / "copy";

    SUBCASE("two frames swapped") {
      copyDir(image, copy);
      auto bytes = wal;
      std::swap_ranges(bytes.begin() + kWalHeader, bytes.begin() + kWalHeader + kFrame,
                       bytes.begin() + kWalHeader + kFrame);
      writeFile(copy / "vault.db-wal", bytes);
      requireReportedAsTampering(openAndReadAll(f, copy));
    }
    SUBCASE("frame 1 of the previous generation put back") {
      copyDir(image, copy);
      auto bytes = wal;
      std::copy_n(oldWal.begin() + kWalHeader, kFrame, bytes.begin() + kWalHeader);
      writeFile(copy / "vault.db-wal", bytes);
      requireReportedAsTampering(openAndReadAll(f, copy));
    }
    SUBCASE("frames from another vault are not accepted") {
      VaultFixture other;
      auto w = other.create(o);
      addNotes(*w, 0, 25, kMarker);
      addNotes(*w, 100, 25, kMarker);
      addNotes(*w, 200, 25, kMarker);
      const auto foreign = readFile(other.dir / "vault.db-wal");
      copyDir(image, copy);
      auto bytes = wal;
      std::copy_n(foreign.begin() + kWalHeader, kFrame, bytes.begin() + kWalHeader);
      writeFile(copy / "vault.db-wal", bytes);
      requireReportedAsTampering(openAndReadAll(f, copy));
    }
  }

  TEST_CASE("an older copy of the whole vault put back is detected at unlock") {
    VaultFixture f;
    {
      auto v = f.create();
      addNotes(*v, 0, 20, kMarker);
    } // lock seals the commit counter
    const fs::path old = f.tmp / "old";
    copyDir(f.dir, old);
    {
      auto v = f.openUnlocked();
      addNotes(*v, 100, 20, kMarker);
      addNotes(*v, 200, 20, kMarker);
    }
    fs::remove_all(f.dir);
    copyDir(old, f.dir);
    auto v = f.open();
    try {
      (void)v->unlock("2468");
      FAIL("an older copy was accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::rollback);
    }
    CHECK(v->isLocked());
  }

  TEST_CASE("a page table removed, damaged or put back older is reported") {
    VaultFixture f;
    {
      auto v = f.create();
      addNotes(*v, 0, 60, kMarker);
    }
    const fs::path slots[] = {f.dir / "vault.db-pages0", f.dir / "vault.db-pages1"};
    const auto sequence = [](const std::vector<unsigned char>& b) {
      std::uint64_t s = 0;
      for (std::size_t i = 8; i < 16; ++i) {
        s = (s << 8) | b.at(i);
      }
      return s;
    };
    const auto slot0 = readFile(slots[0]);
    const auto slot1 = readFile(slots[1]);
    const std::size_t newest = sequence(slot1) > sequence(slot0) ? 1 : 0;
    const fs::path copy = f.dir.parent_path() / "table";
    {
      INFO("both slots removed");
      copyDir(f.dir, copy);
      fs::remove(copy / slots[0].filename());
      fs::remove(copy / slots[1].filename());
      requireReportedAsTampering(openAndReadAll(f, copy));
    }
    {
      INFO("a byte of the newest slot changed: the older one no longer matches the pages");
      copyDir(f.dir, copy);
      auto bytes = readFile(slots[newest]);
      bytes[bytes.size() / 2] ^= 0x01;
      writeFile(copy / slots[newest].filename(), bytes);
      requireReportedAsTampering(openAndReadAll(f, copy));
    }
    {
      INFO("the newest slot replaced by the older one");
      copyDir(f.dir, copy);
      writeFile(copy / slots[newest].filename(), readFile(slots[1 - newest]));
      requireReportedAsTampering(openAndReadAll(f, copy));
    }
    {
      INFO("control: the older slot damaged, the newest is used");
      copyDir(f.dir, copy);
      auto bytes = readFile(slots[1 - newest]);
      bytes[bytes.size() / 2] ^= 0x01;
      writeFile(copy / slots[1 - newest].filename(), bytes);
      CHECK(openAndReadAll(f, copy).notes.size() == 60);
    }
  }

  TEST_CASE("an older database file and page table put back under a newer WAL are reported") {
    VaultFixture f;
    {
      auto v = f.create();
      addNotes(*v, 0, 60, kMarker);
    } // closed: checkpointed, no WAL
    const fs::path older = f.dir.parent_path() / "older";
    copyDir(f.dir, older);
    const fs::path mixed = f.dir.parent_path() / "mixed";
    const fs::path control = f.dir.parent_path() / "control";
    {
      auto v = f.openUnlocked();
      v->write([](sql::Database& db) { db.exec("UPDATE notes SET body = 'changed'"); });
      // The database file and its table move on; the WAL starts a new generation.
      v->read([](sql::Database& db) { db.exec("PRAGMA wal_checkpoint(TRUNCATE)"); });
      addNotes(*v, 100, 5, "later");
      copyDir(f.dir, mixed); // taken while open: the WAL holds the last commits
      copyDir(f.dir, control);
    }
    REQUIRE(fs::file_size(mixed / "vault.db-wal") > 0);
    CHECK(openAndReadAll(f, control).notes.size() == 65); // the copy as taken reads
    for (const char* name : {"vault.db", "vault.db-pages0", "vault.db-pages1"}) {
      fs::copy_file(older / name, mixed / name, fs::copy_options::overwrite_existing);
    }
    // Without the check the 60 older notes would read back unchanged.
    requireReportedAsTampering(openAndReadAll(f, mixed));
  }

  TEST_CASE("a WAL of the previous generation put back replays nothing older") {
    VaultFixture f;
    VaultOptions o = fastOptions();
    o.walAutoCheckpointPages = 100000;
    auto v = f.create(o);
    addNotes(*v, 0, 10, "older-body");
    // A restarted generation (SQLite keeps a restarted WAL's salts when it finds
    // it empty, unlike the first one's).
    v->read([](sql::Database& db) { db.exec("PRAGMA wal_checkpoint(PASSIVE)"); });
    addNotes(*v, 10, 10, "older-body");
    const fs::path firstWal = f.dir.parent_path() / "first-wal";
    copyDir(f.dir, firstWal); // the app killed here: its WAL holds the notes
    v->read([](sql::Database& db) { db.exec("PRAGMA wal_checkpoint(PASSIVE)"); });
    v->write([](sql::Database& db) { db.exec("UPDATE notes SET body = 'newer-body'"); });
    v->read([](sql::Database& db) { db.exec("PRAGMA wal_checkpoint(PASSIVE)"); });
    const fs::path later = f.dir.parent_path() / "later";
    copyDir(f.dir, later); // killed again: the table names both generations
    const fs::path keys = f.dir.parent_path() / "keystore";
    const fs::path keysThen = f.dir.parent_path() / "keystore-later";
    copyDir(keys, keysThen);
    v.reset(); // a killed app would not have sealed the counter at lock
    copyDir(keysThen, keys);
    copyDir(later, f.dir);
    fs::copy_file(firstWal / "vault.db-wal", f.dir / "vault.db-wal",
                  fs::copy_options::overwrite_existing);
    {
      auto w = f.openUnlocked(o); // nothing is lost that the database file does not hold
      const auto notes = readAll(*w);
      REQUIRE(notes.size() == 20);
      for (const auto& [id, body] : notes) {
        CHECK(body == "newer-body");
      }
      // The next commit starts a generation of its own: the old WAL's frames can
      // never become the current generation's.
      addNotes(*w, 100, 1, "next");
      const auto wal = readFile(f.dir / "vault.db-wal");
      const auto old = readFile(firstWal / "vault.db-wal");
      REQUIRE(wal.size() >= 24);
      CHECK_FALSE(std::equal(wal.begin() + 16, wal.begin() + 24, old.begin() + 16));
    }
  }

  TEST_CASE("a page-table slot far larger than any table is not read") {
    VaultFixture f;
    {
      auto v = f.create();
      addNotes(*v, 0, 5, kMarker);
    }
    fs::resize_file(f.dir / "vault.db-pages0", std::uintmax_t{1} << 40); // sparse
    fs::resize_file(f.dir / "vault.db-pages1", std::uintmax_t{1} << 40);
    const OpenResult r = openAndSelectAll(f, f.dir); // an Error, nothing else, escapes
    CHECK(r.failed);
    CHECK(r.code == Errc::tampered);
  }

  TEST_CASE("an older version of one database page put back is reported") {
    VaultFixture f;
    {
      auto v = f.create();
      addNotes(*v, 0, 60, kMarker);
    }
    const auto older = readFile(f.dir / "vault.db");
    {
      auto v = f.openUnlocked();
      v->write([](sql::Database& db) { db.exec("UPDATE notes SET body = 'changed'"); });
    }
    const auto newer = readFile(f.dir / "vault.db");
    REQUIRE(fs::exists(f.dir / "vault.db-pages0"));
    REQUIRE(fs::exists(f.dir / "vault.db-pages1"));
    const fs::path copy = f.dir.parent_path() / "replayed";
    int changed = 0;
    for (std::size_t p = 0; p < std::min(older.size(), newer.size()) / kPage; ++p) {
      if (std::equal(older.begin() + static_cast<std::ptrdiff_t>(p * kPage),
                     older.begin() + static_cast<std::ptrdiff_t>((p + 1) * kPage),
                     newer.begin() + static_cast<std::ptrdiff_t>(p * kPage))) {
        continue; // not rewritten since: nothing to replay
      }
      CAPTURE(p);
      ++changed;
      copyDir(f.dir, copy);
      auto bytes = newer;
      std::copy_n(older.begin() + static_cast<std::ptrdiff_t>(p * kPage), kPage,
                  bytes.begin() + static_cast<std::ptrdiff_t>(p * kPage));
      writeFile(copy / "vault.db", bytes);
      requireReportedAsTampering(openAndReadAll(f, copy));
      // Reported by the page table itself, not by SQLite's structural checks.
      copyDir(f.dir, copy);
      writeFile(copy / "vault.db", bytes);
      const OpenResult direct = openAndSelectAll(f, copy);
      CHECK(direct.failed);
      CHECK(direct.code == Errc::tampered);
    }
    MESSAGE("database pages replayed: " << changed);
    CHECK(changed >= 2);
    copyDir(f.dir, copy);
    CHECK(openAndReadAll(f, copy).notes.size() == 60); // control: the current pages read
  }
}
