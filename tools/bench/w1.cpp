#include "w1.hpp"

#include "sdk_store.hpp"
#include "sql_store.hpp"
#include "vault_store.hpp"

#include <outpost/vault.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <numeric>

#include <fcntl.h>
#include <unistd.h>

namespace outpost::bench {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

constexpr std::size_t kBatch = 100;
constexpr int kReads = 10000;
constexpr int kQueries = 1000;
/// Runners in turns read and query this many at a time (a few milliseconds), so
/// that what else the machine does falls on every runner alike. (Turns of 1000
/// reads gave the same median ratios with a wider spread: docs/benchmarks.md.)
constexpr int kReadChunk = 250;
constexpr int kQueryChunk = 50;

/// What a file of a store shows: SQLite's header, any of the markers, schema text.
struct FileScan {
  bool startsWithSqliteHeader = false;
  bool containsMarker = false;
  bool containsSchema = false;
};

FileScan scanFile(const fs::path& file, const std::vector<std::string>& markers) {
  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  FileScan scan;
  scan.startsWithSqliteHeader = bytes.starts_with(std::string_view("SQLite format 3", 15));
  const auto contains = [&](std::string_view needle) {
    return std::search(bytes.begin(), bytes.end(),
                       std::boyer_moore_horspool_searcher(needle.begin(), needle.end())) !=
           bytes.end();
  };
  scan.containsMarker = std::any_of(markers.begin(), markers.end(),
                                    [&](const std::string& m) { return contains(m); });
  scan.containsSchema = contains("CREATE TABLE");
  return scan;
}

/// The lines of one runner's round, held until the round ends: the runners' steps
/// may interleave, their lines print together.
class Lines {
public:
  void info(std::string id, std::string what) {
    lines_.push_back({Kind::info, std::move(id), std::move(what), 0, {}, true});
  }
  void result(std::string id, std::string metric, double value, std::string unit) {
    lines_.push_back(
        {Kind::result, std::move(id), std::move(metric), value, std::move(unit), true});
  }
  void check(std::string id, std::string what, bool ok, std::string detail = {}) {
    lines_.push_back({Kind::check, std::move(id), std::move(what), 0, std::move(detail), ok});
  }
  void printTo(Report& report) const {
    for (const Line& l : lines_) {
      switch (l.kind) {
      case Kind::info:
        report.info(l.id, l.text);
        break;
      case Kind::result:
        report.result(l.id, l.text, l.value, l.extra);
        break;
      case Kind::check:
        report.check(l.id, l.text, l.ok, l.extra);
        break;
      }
    }
  }

private:
  enum class Kind { info, result, check };
  struct Line {
    Kind kind;
    std::string id;
    std::string text; // info text, metric or check name
    double value;
    std::string extra; // unit or check detail
    bool ok;
  };
  std::vector<Line> lines_;
};

/// One runner's pass through W1's steps. The steps are methods so that a round can
/// run the runners one after another or interleave them step by step.
class W1Run {
public:
  W1Run(const W1Runner& runner, std::string id, const W1Options& options,
        std::span<const Record> records, std::span<const std::string> payloads)
      : runner_(runner), id_(std::move(id)), options_(options), records_(records),
        payloads_(payloads), n_(static_cast<std::uint32_t>(records.size())),
        dir_(options.dir / runner.name), store_(runner.make(options)) {}

  // 0. schema
  void create() {
    lines_.info(id_, runner_.description);
    if (runner_.name == "vault" || runner_.name == "sdk") {
      const int kib = options_.vaultCacheKiB > 0 ? options_.vaultCacheKiB : defaultVaultCacheKiB();
      lines_.info(id_, "page cache " + std::to_string(kib) + " KiB");
    }
    store_->create(dir_);
    txMs_.reserve(records_.size() / kBatch + 1);
  }

  // 1. one transaction of (up to) 100 records, from record `at`
  void insertBatch(std::size_t at) {
    const std::size_t len = std::min(kBatch, records_.size() - at);
    store_->stage(records_.subspan(at, len)); // untimed
    const auto t = Clock::now();
    store_->insert(records_.subspan(at, len), payloads_.subspan(at, len));
    txMs_.push_back(msSince(t));
  }

  /// After the last transaction, with no other runner's work in between. The insert
  /// time is that of the transactions, staging not included.
  void finishInserts() {
    const double insertS = std::accumulate(txMs_.begin(), txMs_.end(), 0.0) / 1000.0;
    lines_.result(id_, "insert_total_s", insertS, "s");
    lines_.result(id_, "insert_rec_per_s", static_cast<double>(n_) / insertS, "rec/s");
    lines_.result(id_, "insert_tx_p50_ms", percentile(txMs_, 50), "ms");
    lines_.result(id_, "insert_tx_p99_ms", percentile(txMs_, 99), "ms");
    lines_.result(id_, "insert_tx_max_ms", *std::max_element(txMs_.begin(), txMs_.end()), "ms");
    store_->close();
  }

  /// Writes the store's files to disk (syncfs of their file system; untimed), so
  /// that the kernel's write-back of them does not compete with what runs next.
  void flushFiles() const {
    const int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      (void)::syncfs(fd);
      ::close(fd);
    }
  }

  // 2. open
  void open() {
    const OpenTimes open = store_->open();
    lines_.result(id_, "open_ms", open.openMs, "ms");
    if (open.unlockMs) {
      lines_.result(id_, "unlock_ms", *open.unlockMs, "ms");
    }
    readUs_.reserve(kReads);
  }

  // 3. the next `count` point reads
  void reads(int count) {
    const auto start = Clock::now();
    for (int k = 0; k < count; ++k) {
      const std::uint32_t idx = readStream_.next() % n_;
      const auto t = Clock::now();
      const bool matches = store_->readMatches(records_[idx], payloads_[idx]);
      readUs_.push_back(msSince(t) * 1000.0);
      if (!matches) {
        ++readMismatches_;
      }
    }
    readMs_ += msSince(start);
  }

  void finishReads() {
    lines_.result(id_, "read_total_ms", readMs_, "ms");
    lines_.result(id_, "read_per_s", kReads / (readMs_ / 1000.0), "reads/s");
    lines_.result(id_, "read_p50_us", percentile(readUs_, 50), "us");
    lines_.result(id_, "read_p99_us", percentile(readUs_, 99), "us");
    lines_.check(id_, "read_payloads_match", readMismatches_ == 0 && readUs_.size() == kReads,
                 std::to_string(readMismatches_) + " of " + std::to_string(readUs_.size()) +
                     " differ");
  }

  // 4. queries; expected answers come from the generated records themselves.
  void startQueries() {
    subjects_ = subjectCount(n_);
    expectedHigh_.assign(subjects_, 0);
    for (const Record& r : records_) {
      if (r.riskLevel == "high") {
        ++expectedHigh_[std::stoul(r.subjectId.substr(5))];
      }
    }
    const std::uint32_t probe = 42 % subjects_;
    const auto t = Clock::now();
    const auto one = store_->highRiskIds(subjectName(probe));
    lines_.result(id_, "query_one_subject_us", msSince(t) * 1000.0, "us");
    lines_.check(id_, "query_one_subject_count", one.size() == expectedHigh_[probe],
                 "got " + std::to_string(one.size()) + ", expected " +
                     std::to_string(expectedHigh_[probe]));
    queryUs_.reserve(kQueries);
  }

  /// The next `count` subject queries.
  void queries(int count) {
    for (int k = 0; k < count; ++k) {
      const std::uint32_t subject = queryStream_.next() % subjects_;
      const auto t = Clock::now();
      hits_ += store_->highRiskIds(subjectName(subject)).size();
      queryUs_.push_back(msSince(t) * 1000.0);
      expectedHits_ += expectedHigh_[subject];
    }
  }

  void finishQueries() {
    double sum = 0;
    for (const double us : queryUs_) {
      sum += us;
    }
    lines_.result(id_, "query_mean_us", sum / kQueries, "us");
    lines_.result(id_, "query_p99_us", percentile(queryUs_, 99), "us");
    lines_.check(id_, "query_hits", hits_ == expectedHits_ && queryUs_.size() == kQueries,
                 "got " + std::to_string(hits_) + ", expected " + std::to_string(expectedHits_));
    if (n_ == 100000) {
      // WORKLOADS.md pins these for the reference set.
      lines_.check(id_, "reference_counts", expectedHigh_[42] == 2 && expectedHits_ == 2013,
                   "subj-000042 " + std::to_string(expectedHigh_[42]) + " (2), all " +
                       std::to_string(expectedHits_) + " (2013)");
    }
  }

  // 5. size and plaintext
  void sizeAndPlaintext() {
    store_->checkpointAndClose();
    const auto dbBytes = fs::file_size(store_->databaseFile());
    const auto walBytes = fs::exists(store_->walFile()) ? fs::file_size(store_->walFile()) : 0;
    lines_.result(id_, "db_file_bytes", static_cast<double>(dbBytes), "B");
    lines_.result(id_, "db_bytes_per_record", static_cast<double>(dbBytes) / n_, "B/rec");
    lines_.result(id_, "wal_file_bytes_after_close", static_cast<double>(walBytes), "B");
    // Every file the store keeps beside its database (the vault's page table too).
    std::uintmax_t storeBytes = 0;
    for (const auto& entry : fs::directory_iterator(store_->databaseFile().parent_path())) {
      if (entry.is_regular_file()) {
        storeBytes += entry.file_size();
      }
    }
    lines_.result(id_, "store_bytes_per_record", static_cast<double>(storeBytes) / n_, "B/rec");

    // Every file under the runner's folder, sub-folders too (a vault lives in one).
    // Markers: the first record's id (in W1 payloads) and its subject id (a field
    // of every store, the SDK's too).
    const std::vector<std::string> markers = {records_.front().id, records_.front().subjectId};
    int files = 0;
    int headers = 0;
    int withMarker = 0;
    int schemas = 0;
    bool scannedDatabase = false;
    for (const auto& entry : fs::recursive_directory_iterator(dir_)) {
      if (!entry.is_regular_file()) {
        continue;
      }
      ++files;
      scannedDatabase = scannedDatabase || entry.path() == store_->databaseFile();
      const FileScan scan = scanFile(entry.path(), markers);
      headers += scan.startsWithSqliteHeader ? 1 : 0;
      withMarker += scan.containsMarker ? 1 : 0;
      schemas += scan.containsSchema ? 1 : 0;
    }
    lines_.check(id_, "files_scanned", scannedDatabase,
                 std::to_string(files) + " file(s), the database among them");
    if (store_->encrypted()) {
      lines_.check(id_, "no_sqlite_header", headers == 0, std::to_string(headers) + " file(s)");
      lines_.check(id_, "no_marker_in_files", withMarker == 0,
                   std::to_string(withMarker) + " file(s)");
      lines_.check(id_, "no_schema_in_files", schemas == 0, std::to_string(schemas) + " file(s)");
    } else {
      // The plain ceiling stores plaintext; saying so shows the scan itself works.
      lines_.info(id_, std::string("plaintext_visible ") + (withMarker > 0 ? "yes" : "no") +
                           " (unencrypted reference)");
    }
    store_.reset();
    fs::remove_all(dir_);
  }

  [[nodiscard]] const Lines& lines() const noexcept { return lines_; }

private:
  const W1Runner& runner_;
  std::string id_;
  const W1Options& options_;
  std::span<const Record> records_;
  std::span<const std::string> payloads_;
  std::uint32_t n_;
  fs::path dir_;
  std::unique_ptr<W1Store> store_;
  Lines lines_;

  std::vector<double> txMs_;
  Stream readStream_ = derivedStream(kReadTag);
  std::vector<double> readUs_;
  double readMs_ = 0;
  int readMismatches_ = 0;
  std::uint32_t subjects_ = 0;
  std::vector<std::uint32_t> expectedHigh_;
  Stream queryStream_ = derivedStream(kQueryTag);
  std::vector<double> queryUs_;
  std::size_t hits_ = 0;
  std::size_t expectedHits_ = 0;
};

/// Steps 0 and 1 for one runner: its store, then all its transactions.
void createAndInsert(W1Run& run, std::size_t records) {
  run.create();
  for (std::size_t at = 0; at < records; at += kBatch) {
    run.insertBatch(at);
  }
  run.finishInserts();
}

/// Every step of W1 for one runner after another.
void runSequentially(std::span<const std::unique_ptr<W1Run>> runs, std::size_t records) {
  for (const auto& run : runs) {
    createAndInsert(*run, records);
    run->open();
    run->reads(kReads);
    run->finishReads();
    run->startQueries();
    run->queries(kQueries);
    run->finishQueries();
    run->sizeAndPlaintext();
  }
}

/// W1 with the runners' reads and queries in turns. Each runner inserts alone, one
/// after another: its transactions then compete with no other runner's writes (nor
/// with the kernel writing back another store's files: the file system is flushed,
/// untimed, once a runner's inserts are done). Then every store is opened and the
/// runners take turns, every 250 reads and every 50 queries (the first one
/// rotating), so that whatever else the machine does in a given second falls on
/// all of them alike.
void runInTurns(std::span<const std::unique_ptr<W1Run>> runs, std::size_t records) {
  const auto inTurn = [&](std::size_t step, const std::function<void(W1Run&)>& work) {
    for (std::size_t i = 0; i < runs.size(); ++i) {
      work(*runs[(step + i) % runs.size()]);
    }
  };
  for (const auto& run : runs) {
    createAndInsert(*run, records);
    run->flushFiles();
  }
  std::size_t step = 0;
  // `total` calls of `work`, `chunk` per runner per turn.
  const auto inChunks = [&](int total, int chunk, void (W1Run::*work)(int)) {
    for (int done = 0; done < total; done += chunk) {
      const int count = std::min(chunk, total - done);
      inTurn(step++, [work, count](W1Run& r) { (r.*work)(count); });
    }
  };
  inTurn(0, [](W1Run& r) { r.open(); });
  inChunks(kReads, kReadChunk, &W1Run::reads);
  inTurn(0, [](W1Run& r) {
    r.finishReads();
    r.startQueries();
  });
  inChunks(kQueries, kQueryChunk, &W1Run::queries);
  inTurn(0, [](W1Run& r) {
    r.finishQueries();
    r.sizeAndPlaintext();
  });
}

} // namespace

const std::vector<W1Runner>& w1Runners() {
  static const std::vector<W1Runner> runners = {
      {"sqlite", "plain SQLite, WAL, synchronous=NORMAL, page cache 2000 KiB (the ceiling)",
       [](const W1Options&) { return makePlainSqliteStore(); }},
      {"vault", "encrypted vault (XChaCha20-Poly1305 pages), WAL, synchronous=NORMAL",
       [](const W1Options& o) { return makeVaultStore(o.vaultCacheKiB); }},
      {"sdk", "the W1 records through the public record API (vault, journal, audit)",
       [](const W1Options& o) { return makeSdkStore(o.vaultCacheKiB); }},
      {"sqlite_vault_settings",
       "plain SQLite with the vault's page cache and checkpoint interval (not encrypted)",
       [](const W1Options&) { return makePlainSqliteStore(true); }, false},
  };
  return runners;
}

bool runW1(const W1Options& options, Report& report) { return runW1(w1Runners(), options, report); }

bool runW1(std::span<const W1Runner> runners, const W1Options& options, Report& report) {
  std::vector<const W1Runner*> selected;
  for (const W1Runner& r : runners) {
    if ((options.only.empty() && r.inDefaultRun) ||
        std::find(options.only.begin(), options.only.end(), r.name) != options.only.end()) {
      selected.push_back(&r);
    }
  }

  report.info("w1", "records " + std::to_string(options.records) + " batch " +
                        std::to_string(kBatch) + " sqlite " + sqlite3_libversion());
  report.info("w1", "vault pages: XChaCha20-Poly1305, its ChaCha20-Poly1305 by " +
                        std::string(Vault::pageCipherImplementation()));
  std::vector<Record> records;
  std::vector<std::string> payloads;
  records.reserve(options.records);
  payloads.reserve(options.records);
  for (std::uint32_t i = 0; i < options.records; ++i) {
    records.push_back(generate(i, options.records));
    payloads.push_back(records.back().json());
  }
  // rounds[r][k]: the RESULT lines of runner r in round k.
  std::vector<std::vector<std::vector<Report::Result>>> rounds(selected.size());
  report.info("w1", options.sequential
                        ? "each round runs every runner, one after another"
                        : "each round: every runner inserts alone, one after another; then "
                          "they take turns, every " +
                              std::to_string(kReadChunk) + " reads and " +
                              std::to_string(kQueryChunk) + " queries");
  for (unsigned k = 1; k <= options.rounds; ++k) {
    std::vector<std::unique_ptr<W1Run>> runs;
    for (const W1Runner* runner : selected) {
      const std::string id = "w1." + runner->name +
                             (options.rounds > 1 ? ".round" + std::to_string(k) : std::string());
      runs.push_back(std::make_unique<W1Run>(*runner, id, options, records, payloads));
    }
    if (options.sequential) {
      runSequentially(runs, records.size());
    } else {
      runInTurns(runs, records.size());
    }
    for (std::size_t r = 0; r < runs.size(); ++r) {
      const std::size_t first = report.results().size();
      runs[r]->lines().printTo(report);
      const auto& all = report.results();
      rounds[r].emplace_back(all.begin() + static_cast<std::ptrdiff_t>(first), all.end());
    }
  }
  if (options.rounds > 1) {
    report.info("w1", "the median of " + std::to_string(options.rounds) + " rounds");
    for (std::size_t r = 0; r < selected.size(); ++r) {
      for (const Report::Result& m : rounds[r].front()) {
        std::vector<double> values;
        for (const auto& round : rounds[r]) {
          if (const auto v = valueOf(round, m.metric)) {
            values.push_back(*v);
          }
        }
        report.result("w1." + selected[r]->name, m.metric, median(values), m.unit);
      }
    }
  }
  // Ratios to plain SQLite, taken within each round (the same machine, at the same
  // time when interleaved), then their median.
  const auto sqlite = std::find_if(selected.begin(), selected.end(),
                                   [](const W1Runner* r) { return r->name == "sqlite"; });
  if (sqlite != selected.end()) {
    const auto& reference = rounds[static_cast<std::size_t>(sqlite - selected.begin())];
    for (std::size_t r = 0; r < selected.size(); ++r) {
      if (selected[r] == *sqlite) {
        continue;
      }
      const std::string id = "w1." + selected[r]->name;
      for (const std::string_view metric :
           {"insert_rec_per_s", "read_per_s", "db_bytes_per_record", "store_bytes_per_record"}) {
        const std::vector<double> ratios = roundRatios(rounds[r], reference, metric);
        const std::string name = std::string(metric) + "_vs_sqlite";
        if (options.rounds > 1) {
          std::string each;
          for (const double x : ratios) {
            char text[16];
            std::snprintf(text, sizeof text, " %.3f", x);
            each += text;
          }
          report.info(id, name + " per round:" + each);
        }
        report.result(id, name, median(ratios), "x");
      }
    }
  }
  return report.allChecksPassed();
}

} // namespace outpost::bench
