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

void runOne(const W1Runner& runner, const std::string& id, const W1Options& options,
            std::span<const Record> records, std::span<const std::string> payloads,
            Report& report) {
  const auto n = static_cast<std::uint32_t>(records.size());
  auto store = runner.make(options);
  const fs::path dir = options.dir / runner.name;
  report.info(id, runner.description);
  if (runner.name == "vault" || runner.name == "sdk") {
    const int kib = options.vaultCacheKiB > 0 ? options.vaultCacheKiB : defaultVaultCacheKiB();
    report.info(id, "page cache " + std::to_string(kib) + " KiB");
  }

  // 0. schema
  store->create(dir);

  // 1. insert in transactions of 100
  std::vector<double> txMs;
  txMs.reserve(records.size() / kBatch + 1);
  const auto insertStart = Clock::now();
  for (std::size_t at = 0; at < records.size(); at += kBatch) {
    const std::size_t len = std::min(kBatch, records.size() - at);
    const auto t = Clock::now();
    store->insert(records.subspan(at, len), payloads.subspan(at, len));
    txMs.push_back(msSince(t));
  }
  const double insertS = msSince(insertStart) / 1000.0;
  report.result(id, "insert_total_s", insertS, "s");
  report.result(id, "insert_rec_per_s", static_cast<double>(n) / insertS, "rec/s");
  report.result(id, "insert_tx_p50_ms", percentile(txMs, 50), "ms");
  report.result(id, "insert_tx_p99_ms", percentile(txMs, 99), "ms");
  report.result(id, "insert_tx_max_ms", *std::max_element(txMs.begin(), txMs.end()), "ms");
  store->close();

  // 2. open
  const OpenTimes open = store->open();
  report.result(id, "open_ms", open.openMs, "ms");
  if (open.unlockMs) {
    report.result(id, "unlock_ms", *open.unlockMs, "ms");
  }

  // 3. point reads
  Stream readStream = derivedStream(kReadTag);
  std::vector<double> readUs;
  readUs.reserve(kReads);
  int readMismatches = 0;
  const auto readStart = Clock::now();
  for (int k = 0; k < kReads; ++k) {
    const std::uint32_t idx = readStream.next() % n;
    const auto t = Clock::now();
    const auto payload = store->read(records[idx].id);
    readUs.push_back(msSince(t) * 1000.0);
    if (!payload || *payload != payloads[idx]) {
      ++readMismatches;
    }
  }
  const double readMs = msSince(readStart);
  report.result(id, "read_total_ms", readMs, "ms");
  report.result(id, "read_per_s", kReads / (readMs / 1000.0), "reads/s");
  report.result(id, "read_p50_us", percentile(readUs, 50), "us");
  report.result(id, "read_p99_us", percentile(readUs, 99), "us");
  report.check(id, "read_payloads_match", readMismatches == 0,
               std::to_string(readMismatches) + " of " + std::to_string(kReads) + " differ");

  // 4. queries; expected answers come from the generated records themselves.
  const std::uint32_t subjects = subjectCount(n);
  std::vector<std::uint32_t> expectedHigh(subjects, 0);
  for (const Record& r : records) {
    if (r.riskLevel == "high") {
      ++expectedHigh[std::stoul(r.subjectId.substr(5))];
    }
  }
  const std::uint32_t probe = 42 % subjects;
  auto t = Clock::now();
  const auto one = store->highRiskIds(subjectName(probe));
  report.result(id, "query_one_subject_us", msSince(t) * 1000.0, "us");
  report.check(id, "query_one_subject_count", one.size() == expectedHigh[probe],
               "got " + std::to_string(one.size()) + ", expected " +
                   std::to_string(expectedHigh[probe]));

  Stream queryStream = derivedStream(kQueryTag);
  std::vector<double> queryUs;
  queryUs.reserve(kQueries);
  std::size_t hits = 0;
  std::size_t expectedHits = 0;
  for (int k = 0; k < kQueries; ++k) {
    const std::uint32_t subject = queryStream.next() % subjects;
    t = Clock::now();
    hits += store->highRiskIds(subjectName(subject)).size();
    queryUs.push_back(msSince(t) * 1000.0);
    expectedHits += expectedHigh[subject];
  }
  double sum = 0;
  for (const double us : queryUs) {
    sum += us;
  }
  report.result(id, "query_mean_us", sum / kQueries, "us");
  report.result(id, "query_p99_us", percentile(queryUs, 99), "us");
  report.check(id, "query_hits", hits == expectedHits,
               "got " + std::to_string(hits) + ", expected " + std::to_string(expectedHits));
  if (n == 100000) {
    // WORKLOADS.md pins these for the reference set.
    report.check(id, "reference_counts", expectedHigh[42] == 2 && expectedHits == 2013,
                 "subj-000042 " + std::to_string(expectedHigh[42]) + " (2), all " +
                     std::to_string(expectedHits) + " (2013)");
  }

  // 5. size and plaintext
  store->checkpointAndClose();
  const auto dbBytes = fs::file_size(store->databaseFile());
  const auto walBytes = fs::exists(store->walFile()) ? fs::file_size(store->walFile()) : 0;
  report.result(id, "db_file_bytes", static_cast<double>(dbBytes), "B");
  report.result(id, "db_bytes_per_record", static_cast<double>(dbBytes) / n, "B/rec");
  report.result(id, "wal_file_bytes_after_close", static_cast<double>(walBytes), "B");
  // Every file the store keeps beside its database (the vault's page table too).
  std::uintmax_t storeBytes = 0;
  for (const auto& entry : fs::directory_iterator(store->databaseFile().parent_path())) {
    if (entry.is_regular_file()) {
      storeBytes += entry.file_size();
    }
  }
  report.result(id, "store_bytes_per_record", static_cast<double>(storeBytes) / n, "B/rec");

  // Every file under the runner's folder, sub-folders too (a vault lives in one).
  // Markers: the first record's id (in W1 payloads) and its subject id (a field
  // of every store, the SDK's too).
  const std::vector<std::string> markers = {records.front().id, records.front().subjectId};
  int files = 0;
  int headers = 0;
  int withMarker = 0;
  int schemas = 0;
  bool scannedDatabase = false;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) {
      continue;
    }
    ++files;
    scannedDatabase = scannedDatabase || entry.path() == store->databaseFile();
    const FileScan scan = scanFile(entry.path(), markers);
    headers += scan.startsWithSqliteHeader ? 1 : 0;
    withMarker += scan.containsMarker ? 1 : 0;
    schemas += scan.containsSchema ? 1 : 0;
  }
  report.check(id, "files_scanned", scannedDatabase,
               std::to_string(files) + " file(s), the database among them");
  if (store->encrypted()) {
    report.check(id, "no_sqlite_header", headers == 0, std::to_string(headers) + " file(s)");
    report.check(id, "no_marker_in_files", withMarker == 0,
                 std::to_string(withMarker) + " file(s)");
    report.check(id, "no_schema_in_files", schemas == 0, std::to_string(schemas) + " file(s)");
  } else {
    // The plain ceiling stores plaintext; saying so shows the scan itself works.
    report.info(id, std::string("plaintext_visible ") + (withMarker > 0 ? "yes" : "no") +
                        " (unencrypted reference)");
  }
  fs::remove_all(dir);
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

bool runW1(const W1Options& options, Report& report) {
  std::vector<const W1Runner*> selected;
  for (const W1Runner& r : w1Runners()) {
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
  for (unsigned k = 1; k <= options.rounds; ++k) {
    for (std::size_t r = 0; r < selected.size(); ++r) {
      const std::string id = "w1." + selected[r]->name +
                             (options.rounds > 1 ? ".round" + std::to_string(k) : std::string());
      const std::size_t first = report.results().size();
      runOne(*selected[r], id, options, records, payloads, report);
      const auto& all = report.results();
      rounds[r].emplace_back(all.begin() + static_cast<std::ptrdiff_t>(first), all.end());
    }
  }
  if (options.rounds > 1) {
    report.info("w1", "the median of " + std::to_string(options.rounds) +
                          " rounds; each round runs every runner, one after another");
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
  // Ratios to plain SQLite, taken within each round (the same machine, minutes
  // apart), then their median.
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
