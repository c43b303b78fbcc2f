// Crash, I/O error and disk-full tests: faults are injected *below* the
// encrypting VFS, so the vault's own code sees exactly what SQLite would.

#include "fault_vfs.hpp"
#include "vault_fixture.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace outpost;
using namespace outpost::test;

namespace {

const std::string kMarker = "crash-marker";
constexpr int kTransactions = 6;

VaultOptions faultOptions() {
  VaultOptions o = fastOptions();
  o.baseVfs = FaultVfs::kName;
  o.walAutoCheckpointPages = 8; // checkpoints happen inside the scenario
  o.durableCommits = true;
  o.autoLockAfter = std::chrono::milliseconds(0);
  return o;
}

int firstId(int tx) { return tx * 10000; }
int smallRows(int tx) { return 10 + tx * 9; }

/// What one crash scenario writes: how many transactions, how many rows each.
struct Scenario {
  VaultOptions options = faultOptions();
  int transactions = kTransactions;
  int (*rowsIn)(int tx) = smallRows;
};

struct Outcome {
  std::set<int> committed; // transactions whose write() returned
  int inFlight = -1;       // the transaction that failed, if any
  std::uint64_t operationsBeforeClose = 0;
  std::uint64_t writesBeforeClose = 0;
};

/// T0 is committed before faults are armed; the others run with the fault armed.
Outcome runScenario(VaultFixture& f, FaultVfs& fault, std::uint64_t crashAt,
                    const Scenario& scenario = {}) {
  auto v = f.create(scenario.options);
  addNotes(*v, firstId(0), scenario.rowsIn(0), kMarker);
  Outcome out;
  out.committed.insert(0);
  fault.crashAtOperation(crashAt);
  for (int tx = 1; tx <= scenario.transactions; ++tx) {
    try {
      addNotes(*v, firstId(tx), scenario.rowsIn(tx), kMarker);
      out.committed.insert(tx);
    } catch (const Error&) {
      out.inFlight = tx;
      break;
    }
  }
  out.operationsBeforeClose = fault.operations();
  out.writesBeforeClose = fault.writes();
  v.reset(); // closes: checkpoint and WAL removal may crash too
  return out;
}

/// Opens the vault after the crash and checks it against the outcome.
void verifyAfterCrash(VaultFixture& f, const Outcome& out, const Scenario& scenario = {}) {
  VaultOptions o = fastOptions();
  auto v = f.open(o);
  REQUIRE(v->unlock("2468").status == UnlockStatus::unlocked);
  std::string integrity;
  std::set<int> present;
  v->read([&](sql::Database& db) {
    integrity = db.queryText("PRAGMA integrity_check");
    sql::Statement st(db, "SELECT id FROM notes");
    while (st.step()) {
      present.insert(static_cast<int>(st.columnInt(0)));
    }
  });
  CHECK(integrity == "ok");
  // What a power loss left on disk holds no plaintext either.
  for (const auto& e : std::filesystem::directory_iterator(f.dir)) {
    const auto bytes = readFile(e.path());
    CHECK_FALSE(contains(bytes, kMarker));
    CHECK_FALSE(contains(bytes, "SQLite format 3"));
  }
  for (int tx = 0; tx <= scenario.transactions; ++tx) {
    const int rowsIn = scenario.rowsIn(tx);
    int found = 0;
    for (int i = firstId(tx); i < firstId(tx) + rowsIn; ++i) {
      found += present.contains(i) ? 1 : 0;
    }
    INFO("transaction " << tx);
    if (out.committed.contains(tx)) {
      CHECK(found == rowsIn); // committed: all there
    } else if (tx == out.inFlight) {
      // A commit cut by power loss may or may not have reached the disk, but
      // never partly.
      CHECK((found == 0 || found == rowsIn));
    } else {
      CHECK(found == 0); // never started
    }
  }
}

struct CrashRuns {
  int runs = 0;
  int crashes = 0; // runs whose armed point was reached
};

/// Runs the scenario once per crash point 1..total under each power-loss policy,
/// and checks the vault after each crash.
CrashRuns crashAtEveryPoint(FaultVfs& fault, std::uint64_t total, const Scenario& scenario = {}) {
  CrashRuns r;
  for (const CrashPolicy policy : {CrashPolicy::dropUnsynced, CrashPolicy::keepAll,
                                   CrashPolicy::tearLast, CrashPolicy::randomSubset}) {
    for (std::uint64_t n = 1; n <= total; ++n) {
      CAPTURE(n);
      CAPTURE(static_cast<int>(policy));
      VaultFixture f;
      const Outcome out = runScenario(f, fault, n, scenario);
      r.crashes += fault.crashed() ? 1 : 0;
      fault.materialise(policy, static_cast<std::uint32_t>(n));
      verifyAfterCrash(f, out, scenario);
      ++r.runs;
    }
  }
  return r;
}

} // namespace

TEST_SUITE("vault.crash") {
  TEST_CASE("a crash at any write or sync loses no committed transaction and tears none") {
    const Context context;
    FaultVfs fault;
    std::uint64_t total = 0;
    {
      VaultFixture dry;
      fault.disarm();
      (void)runScenario(dry, fault, 0);
      total = fault.operations();
      fault.materialise(CrashPolicy::keepAll);
    }
    REQUIRE(total > 20);
    const auto [runs, crashes] = crashAtEveryPoint(fault, total);
    MESSAGE("crash points: " << total << " per policy, runs: " << runs << ", crashed: " << crashes);
    CHECK(crashes >= runs - 8); // nearly every armed point is inside the scenario
  }

  TEST_CASE("a crash inside a commit of hundreds of pages loses no committed transaction") {
    // The middle commit writes ~300 WAL frames in one go: the vault seals them in
    // batches, on helper threads too, and writes each batch in several calls to
    // the file. A crash can cut any of those calls.
    const Context context;
    FaultVfs fault;
    Scenario big;
    big.options.cacheKiB = 8192;                // the whole commit reaches the WAL at once
    big.options.walAutoCheckpointPages = 10000; // and stays there until the vault closes
    big.options.sealHelpers = 2;
    big.transactions = 2;
    big.rowsIn = [](int tx) { return tx == 1 ? 3600 : 20; };
    std::uint64_t total = 0;
    std::uint64_t writes = 0;
    {
      VaultFixture dry;
      fault.disarm();
      const Outcome out = runScenario(dry, fault, 0, big);
      // Crash points: every write and sync of the two commits, and the first few
      // of the close (its checkpoint is the first test's ground).
      total = out.operationsBeforeClose + 4;
      writes = out.writesBeforeClose;
      fault.materialise(CrashPolicy::keepAll);
    }
    // ~300 frames went out in a dozen or so writes, not one write per frame.
    CHECK(writes >= 5);
    CHECK(writes < 30);
    const int runs = crashAtEveryPoint(fault, total, big).runs;
    MESSAGE("crash points: " << total << " per policy (" << writes << " writes), runs: " << runs);
  }

  TEST_CASE("with synchronous=NORMAL a commit's frames are in the file when it returns") {
    // The commit frame sends its batch out: a process that dies right after the
    // commit returned (every write so far kept, nothing after it) keeps it.
    const Context context;
    FaultVfs fault;
    VaultFixture f;
    VaultOptions o = faultOptions();
    o.durableCommits = false;
    o.walAutoCheckpointPages = 10000;
    auto v = f.create(o);
    addNotes(*v, 0, 20, kMarker);
    addNotes(*v, 100, 300, kMarker);
    fault.crashAtOperation(1); // the next write or sync (the close's) never happens
    v.reset();
    CHECK(fault.crashed());
    fault.materialise(CrashPolicy::keepAll);
    CHECK(countNotes(*f.openUnlocked()) == 320);
  }

  TEST_CASE("a failed write of held frames during a read loses none of them") {
    // Pages SQLite spills from a small cache wait in the batch; a read then
    // writes them out. If that write fails (disk full) the statement fails, but
    // the transaction goes on and commits: the held frames must reach the file
    // with the commit, not be dropped.
    const Context context;
    FaultVfs fault;
    for (const int before : {40, 600}) { // 600: the WAL is reused after a checkpoint
      CAPTURE(before);
      VaultFixture f;
      VaultOptions o = faultOptions();
      o.cacheKiB = 64;
      o.walAutoCheckpointPages = 10000;
      auto v = f.create(o);
      addNotes(*v, 0, before, kMarker);
      if (before > 100) {
        v->read([](sql::Database& db) { db.exec("PRAGMA wal_checkpoint(PASSIVE)"); });
      }
      bool statementFailed = false;
      v->write([&](sql::Database& db) {
        sql::Statement ins(db, "INSERT INTO notes(id, body) VALUES (?1, ?2)");
        for (int i = 10000; i < 10100; ++i) { // spills
          ins.bind(1, std::int64_t{i}).bind(2, kMarker + std::string(1000, 'y'));
          ins.run();
          ins.reset();
        }
        db.exec("CREATE TABLE copy(id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
        fault.diskFullFromWrite(1);
        try {
          db.exec("INSERT INTO copy(id, body) SELECT id, body FROM notes");
        } catch (const Error& e) {
          statementFailed = true;
          CHECK(e.code() == Errc::disk_full);
        }
        fault.disarm();
      });
      CHECK(statementFailed);
      std::string integrity;
      std::int64_t copied = -1;
      v->read([&](sql::Database& db) {
        integrity = db.queryText("PRAGMA integrity_check");
        copied = db.queryInt("SELECT count(*) FROM copy");
      });
      CHECK(integrity == "ok");
      CHECK(copied == 0);
      CHECK(countNotes(*v) == before + 100);
      v.reset();
      fault.materialise(CrashPolicy::keepAll);
      auto again = f.openUnlocked();
      CHECK(countNotes(*again) == before + 100);
      again->read([&](sql::Database& db) { integrity = db.queryText("PRAGMA integrity_check"); });
      CHECK(integrity == "ok");
    }
  }

  TEST_CASE("an I/O error at any write fails that transaction only and changes nothing else") {
    const Context context;
    FaultVfs fault;
    for (std::uint64_t n = 1; n <= 40; ++n) {
      CAPTURE(n);
      VaultFixture f;
      auto v = f.create(faultOptions());
      addNotes(*v, 0, 30, kMarker);
      fault.ioErrorAtWrite(n);
      bool failed = false;
      try {
        addNotes(*v, 1000, 30, kMarker);
      } catch (const Error& e) {
        failed = true;
        CHECK((e.code() == Errc::io || e.code() == Errc::tampered || e.code() == Errc::busy));
      }
      fault.disarm();
      // Whatever happened, the vault is consistent and all-or-nothing...
      std::int64_t rows = -1;
      try {
        rows = countNotes(*v);
      } catch (const Error&) {
        // ...and if the connection gave up, reopening recovers it.
        v.reset();
        v = f.openUnlocked(faultOptions());
        rows = countNotes(*v);
      }
      // All or nothing: a failed transaction left nothing, a successful one all.
      CHECK(rows == (failed ? 30 : 60));
      if (failed) {
        // The failed transaction can be retried.
        if (rows == 30) {
          addNotes(*v, 1000, 30, kMarker);
        }
        CHECK(countNotes(*v) == 60);
      }
      v.reset();
      fault.materialise(CrashPolicy::keepAll);
      auto again = f.openUnlocked();
      CHECK(countNotes(*again) == 60);
    }
  }

  TEST_CASE("disk full is reported as disk_full, keeps committed data, and writing resumes") {
    const Context context;
    FaultVfs fault;
    VaultFixture f;
    auto v = f.create(faultOptions());
    addNotes(*v, 0, 30, kMarker);
    fault.diskFullFromWrite(1);
    try {
      addNotes(*v, 1000, 200, kMarker);
      FAIL("a full disk accepted a transaction");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::disk_full);
      CHECK(std::string(e.what()).find("free some space") ==
            std::string::npos); // message, not advice
    }
    fault.disarm();
    CHECK(countNotes(*v) == 30);
    addNotes(*v, 1000, 200, kMarker);
    CHECK(countNotes(*v) == 230);
    v.reset();
    fault.materialise(CrashPolicy::keepAll);
    CHECK(countNotes(*f.openUnlocked()) == 230);
  }

  TEST_CASE("a page-table write that fails before a new WAL header, retried, then a crash: "
            "every commit is there") {
    FaultVfs fault;
    VaultFixture f;
    VaultOptions o = fastOptions();
    o.baseVfs = FaultVfs::kName;
    o.walAutoCheckpointPages = 100000;
    auto v = f.create(o);
    addNotes(*v, 0, 20, "a");
    // Every frame in the database file: the next transaction starts a new WAL
    // generation, whose header the page table must name first.
    v->read([](sql::Database& db) { db.exec("PRAGMA wal_checkpoint(PASSIVE)"); });
    fault.ioErrorAtWrite(1); // that naming: the first write of the transaction
    CHECK_THROWS_AS(addNotes(*v, 100, 5, "lost"), Error);
    fault.disarm();
    addNotes(*v, 200, 5, "kept"); // SQLite writes the same header again; committed
    fault.crashAtOperation(1);
    v.reset();
    fault.materialise(CrashPolicy::dropUnsynced);
    auto w = f.openUnlocked(o);
    CHECK(countNotes(*w) == 25);
  }
}
