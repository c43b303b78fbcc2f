#pragma once
/// \file
/// Workload W1 (bench/WORKLOADS.md): one driver that times the steps, and stores
/// ("runners") that implement them. A runner is a `W1Store`; adding one is adding a
/// class and a line in `w1Runners()`.

#include "generator.hpp"
#include "report.hpp"

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::bench {

/// What opening a store cost, in milliseconds.
struct OpenTimes {
  double openMs = 0;              ///< new connection, key/unlock, pragmas, one query
  std::optional<double> unlockMs; ///< the key derivation part, where there is one
};

/// One store under test. The driver calls, in order: create, stage and insert
/// (N/100 times each), close, open, read (10000 times), highRiskIds (1001 times),
/// checkpointAndClose.
class W1Store {
public:
  virtual ~W1Store() = default;

  /// Deletes old files in `dir`, opens a new store there and creates the schema.
  virtual void create(const std::filesystem::path& dir) = 0;
  /// Makes the runner's own input for the next `insert` from the generated records,
  /// untimed, as the plain runners' input (the JSON payloads) is made before timing.
  /// The SDK runner builds its typed record writes here.
  virtual void stage(std::span<const Record> batch) { (void)batch; }
  /// Inserts the records in one transaction (those of the last `stage`).
  virtual void insert(std::span<const Record> batch, std::span<const std::string> payloads) = 0;
  virtual void close() = 0;
  virtual OpenTimes open() = 0;
  /// The stored payload of record `id`, or nullopt.
  [[nodiscard]] virtual std::optional<std::string> read(std::string_view id) = 0;
  /// Reads `expected` by its id and checks what comes back against it: by default,
  /// that `read` gives `payload` byte for byte. A store that keeps the fields
  /// typed compares every one of them instead (w1.sdk), as strictly, without
  /// making W1's JSON to compare.
  [[nodiscard]] virtual bool readMatches(const Record& expected, const std::string& payload) {
    const auto got = read(expected.id);
    return got && *got == payload;
  }
  /// Ids of the subject's records with risk_level 'high', through the subject index.
  [[nodiscard]] virtual std::vector<std::string> highRiskIds(std::string_view subject) = 0;
  /// Checkpoints (TRUNCATE) and closes.
  virtual void checkpointAndClose() = 0;
  /// The main database file, for its size.
  [[nodiscard]] virtual std::filesystem::path databaseFile() const = 0;
  /// The write-ahead log file.
  [[nodiscard]] virtual std::filesystem::path walFile() const = 0;
  /// Whether the store claims to encrypt: then the plaintext CHECKs apply.
  [[nodiscard]] virtual bool encrypted() const = 0;
};

struct W1Options;

struct W1Runner {
  std::string name; ///< "sqlite" -> result id "w1.sqlite"
  std::string description;
  std::function<std::unique_ptr<W1Store>(const W1Options&)> make;
  /// False: runs only when `--only` names it.
  bool inDefaultRun = true;
};

/// Every W1 runner, in the order they run.
[[nodiscard]] const std::vector<W1Runner>& w1Runners();

struct W1Options {
  std::uint32_t records = 100000;
  std::vector<std::string> only; ///< empty: all runners
  std::filesystem::path dir;     ///< where stores are created (one sub-folder each)
  int vaultCacheKiB = 0;         ///< page cache of the vault runners; 0: the vault's default
  unsigned rounds = 1;           ///< runs of every selected runner; >1: medians are reported
  /// false (the default): within a round each runner inserts alone, one after
  /// another, then the runners take turns, a chunk of reads (then of queries) each;
  /// true: one runner's whole pass after another's.
  bool sequential = false;
};

/// Runs W1 for the selected runners (`rounds` times; in each round reading in turns,
/// or one after the other with `sequential`), printing
/// RESULT / INFO / CHECK lines to `report`, then each runner's ratios to `w1.sqlite`
/// (`<metric>_vs_sqlite`, taken within each round; their median over rounds). With
/// several rounds, each round's lines carry ids `w1.<runner>.round<k>` and the medians
/// follow under `w1.<runner>`. Returns false if any CHECK failed.
[[nodiscard]] bool runW1(const W1Options& options, Report& report);
/// runW1 over `runners` instead of w1Runners() (tests).
[[nodiscard]] bool runW1(std::span<const W1Runner> runners, const W1Options& options,
                         Report& report);

} // namespace outpost::bench
