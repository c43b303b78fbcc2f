// The W1 driver's order of steps, with stores that keep records in memory and log
// every call: by default the runners insert one after another and then take turns
// reading and querying; a sequential round runs one runner's whole pass before the
// next.

#include "w1.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace outpost::bench;
namespace fs = std::filesystem;

namespace {

/// "<runner> <step>" per call, in call order.
using CallLog = std::vector<std::string>;

class MemoryStore : public W1Store {
public:
  MemoryStore(std::string name, CallLog& log) : name_(std::move(name)), log_(log) {}

  void create(const fs::path& dir) override {
    log("create");
    dir_ = dir;
    fs::create_directories(dir_);
    std::ofstream(databaseFile()) << "memory store";
  }
  void insert(std::span<const Record> batch, std::span<const std::string> payloads) override {
    log("insert");
    for (std::size_t k = 0; k < batch.size(); ++k) {
      payloads_[batch[k].id] = payloads[k];
      if (batch[k].riskLevel == "high") {
        high_[batch[k].subjectId].push_back(batch[k].id);
      }
    }
  }
  void close() override { log("close"); }
  OpenTimes open() override {
    log("open");
    return {};
  }
  std::optional<std::string> read(std::string_view id) override {
    log("read");
    const auto it = payloads_.find(std::string(id));
    return it == payloads_.end() ? std::nullopt : std::optional(it->second);
  }
  std::vector<std::string> highRiskIds(std::string_view subject) override {
    log("query");
    return high_[std::string(subject)];
  }
  void checkpointAndClose() override { log("size"); }
  [[nodiscard]] fs::path databaseFile() const override { return dir_ / "memory.db"; }
  [[nodiscard]] fs::path walFile() const override { return dir_ / "memory.db-wal"; }
  [[nodiscard]] bool encrypted() const override { return false; }

private:
  void log(const char* step) {
    // Consecutive calls of one step by one runner are one entry.
    std::string entry = name_ + " " + step;
    if (log_.empty() || log_.back() != entry) {
      log_.push_back(std::move(entry));
    }
  }

  std::string name_;
  CallLog& log_;
  fs::path dir_;
  std::map<std::string, std::string> payloads_;
  std::map<std::string, std::vector<std::string>> high_;
};

/// A memory store whose staging is slow (sleeps), and that remembers what it
/// staged: it must be staged before each insert, with the same records, and not be
/// timed.
class SlowStagingStore final : public MemoryStore {
public:
  /// `stagedFirst` (the test's: the driver destroys the store) turns false at an
  /// insert whose batch was not the one staged just before it.
  SlowStagingStore(CallLog& log, bool& stagedFirst)
      : MemoryStore("slow", log), stagedFirst_(stagedFirst) {}

  void stage(std::span<const Record> batch) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    staged_.assign(batch.begin(), batch.end());
  }
  void insert(std::span<const Record> batch, std::span<const std::string> payloads) override {
    stagedFirst_ = stagedFirst_ && staged_.size() == batch.size() &&
                   std::equal(batch.begin(), batch.end(), staged_.begin(),
                              [](const Record& a, const Record& b) { return a.id == b.id; });
    staged_.clear();
    MemoryStore::insert(batch, payloads);
  }

private:
  bool& stagedFirst_;
  std::vector<Record> staged_;
};

struct Harness {
  CallLog log;
  std::vector<W1Runner> runners;
  W1Options options;
  fs::path dir = fs::temp_directory_path() / ("outpost-w1-test-" + std::to_string(::getpid()));

  Harness() {
    for (const char* name : {"a", "b"}) {
      runners.push_back({name, "memory store", [this, name](const W1Options&) {
                           return std::make_unique<MemoryStore>(name, log);
                         }});
    }
    options.records = 300;
    options.dir = dir;
  }
  ~Harness() { fs::remove_all(dir); }

  /// The lines runW1 printed.
  std::string output;

  bool run() {
    std::FILE* sink = std::tmpfile();
    REQUIRE(sink != nullptr);
    Report report(sink);
    const bool ok = runW1(runners, options, report);
    std::rewind(sink);
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, sink)) > 0) {
      output.append(buf, n);
    }
    std::fclose(sink);
    return ok;
  }

  [[nodiscard]] std::size_t count(const std::string& entry) const {
    return static_cast<std::size_t>(std::count(log.begin(), log.end(), entry));
  }
};

} // namespace

TEST_SUITE("bench.w1") {
  TEST_CASE("by default the runners insert one after another, then take turns reading and "
            "querying") {
    Harness h;
    REQUIRE(h.run());
    const auto at = [&](const std::string& e) {
      return std::find(h.log.begin(), h.log.end(), e) - h.log.begin();
    };
    // Each inserts alone: a's transactions all come before b's store is made.
    CHECK(h.count("a insert") == 1);
    CHECK(h.count("b insert") == 1);
    CHECK(at("a close") < at("b create"));
    // Both stores are open before either reads.
    CHECK(at("b open") < at("a read"));
    // 10000 reads in 40 turns of 250. The first of each turn rotates (a b, b a,
    // a b, ...) and the log merges repeats: a, b, a, ..., 21 entries of a and 20 of
    // b. Without the rotation it would be 40 and 40; one runner after the other, 1
    // and 1. The same for 1000 queries in 20 turns of 50 (11 and 10), after each
    // runner's one timed query (one more each).
    CHECK(h.count("a read") == 21);
    CHECK(h.count("b read") == 20);
    CHECK(h.count("a query") == 12);
    CHECK(h.count("b query") == 11);
    CHECK(at("b query") < at("a size"));
    // Each runner's lines are its own, together, under its id.
    for (const char* id : {"w1.a", "w1.b"}) {
      CAPTURE(id);
      CHECK(h.output.find(std::string("RESULT ") + id + " read_per_s ") != std::string::npos);
      CHECK(h.output.find(std::string("CHECK ") + id + " read_payloads_match ok") !=
            std::string::npos);
    }
    CHECK(h.output.find("RESULT w1.b insert_rec_per_s_vs_sqlite") == std::string::npos);
    CHECK(h.output.find("w1.b insert_total_s") > h.output.find("w1.a store_bytes_per_record"));
  }

  TEST_CASE("each batch is staged before its insert, and staging is not timed") {
    Harness h;
    bool stagedFirst = true;
    h.runners = {{"slow", "slow staging", [&](const W1Options&) {
                    return std::make_unique<SlowStagingStore>(h.log, stagedFirst);
                  }}};
    REQUIRE(h.run());
    CHECK(stagedFirst);
    // Three batches of 100 staged for 40 ms each: 0.12 s, none of it in the inserts
    // (a few microseconds of map inserts).
    const auto at = h.output.find("RESULT w1.slow insert_total_s ");
    REQUIRE(at != std::string::npos);
    const double seconds =
        std::stod(h.output.substr(at + std::string_view("RESULT w1.slow insert_total_s ").size()));
    CHECK(seconds < 0.06);
  }

  TEST_CASE("--sequential runs one runner's whole pass, then the next one's") {
    Harness h;
    h.options.sequential = true;
    REQUIRE(h.run());
    const CallLog expectedA = {"a create", "a insert", "a close", "a open",
                               "a read",   "a query",  "a size"};
    REQUIRE(h.log.size() == 2 * expectedA.size());
    CHECK(std::equal(expectedA.begin(), expectedA.end(), h.log.begin()));
    CHECK(h.log[expectedA.size()] == "b create");
  }
}
