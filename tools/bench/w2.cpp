// Workload W2 (bench/WORKLOADS.md): sync through a real outpost-server on
// 127.0.0.1 between two enrolled devices, over the real transport.

#include "w2.hpp"

#include "generator.hpp"
#include "sdk_store.hpp"

#include <outpost/context.hpp>
#include <outpost/device_identity.hpp>
#include <outpost/error.hpp>
#include <outpost/journal.hpp>
#include <outpost/platform/clock.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/protocol/enrollment.hpp>
#include <outpost/server/keys.hpp>
#include <outpost/server/server.hpp>
#include <outpost/server/sqlite_store.hpp>
#include <outpost/sync_client.hpp>
#include <outpost/vault.hpp>

#include <chrono>
#include <future>
#include <set>

#include <sys/resource.h>

namespace outpost::bench {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPin = "bench-pin-1234";

double msSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

std::uint64_t folderBytes(const fs::path& dir) {
  std::uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      total += e.file_size();
    }
  }
  return total;
}

struct Device {
  Context context;
  platform::SystemClock clock;
  fs::path dir;
  std::unique_ptr<platform::FileKeyStore> keyStore;
  std::unique_ptr<Vault> vault;
  std::unique_ptr<model::RecordStore> store;
  std::unique_ptr<SyncClient> client;

  Device(const fs::path& folder, const std::string& payload, const std::string& worker,
         const W2Options& options)
      : dir(folder) {
    fs::create_directories(dir);
    keyStore = std::make_unique<platform::FileKeyStore>(dir / "keystore");
    VaultOptions vo;
    vo.durableCommits = false; // the settings of w1.vault and w1.sdk
    vo.cacheKiB = 2000;
    vo.autoLockAfter = std::chrono::milliseconds(0);
    vault = Vault::create(context, dir / "vault", kPin, *keyStore, vo);
    (void)enrollDevice(context, *vault, payload, "outpost-bench");
    model::RecordStoreOptions ro;
    ro.workerId = worker;
    store = std::make_unique<model::RecordStore>(context, *vault, clock, ro);
    registerW1Types(store->schema());
    SyncOptions so;
    so.pushBatch = options.pushBatch;
    so.pullBatch = options.pullBatch;
    so.appVersion = "outpost-bench";
    client = std::make_unique<SyncClient>(context, *vault, *store, clock, so);
  }
};

/// An enrollment payload for `worker` (as `outpostctl enroll` makes one).
std::string enrollmentPayload(Context& context, const fs::path& data, const std::string& worker,
                              std::uint16_t port) {
  const server::ServerKeys keys = server::ServerKeys::load(data);
  server::SqliteServerStore store(context, data, keys);
  const auto code = store.enrollmentRegistry().issueEnrollmentCode(
      worker, "team-1", std::chrono::minutes(10), protocol::Clock::now());
  return protocol::formatEnrollmentPayload(
      {"127.0.0.1", port, keys.staticKey.publicKey, code.code});
}

/// CPU time this process (devices and server together) has used so far, in ms.
double processCpuMs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
  };
  return ms(u.ru_utime) + ms(u.ru_stime);
}

void reportPhase(Report& report, const std::string& id, std::string_view phase, double ms,
                 double cpuMs, const SyncReport& r) {
  const std::string p(phase);
  report.result(id, p + "_ms", ms, "ms");
  // Both ends run in this process: its CPU time is what the phase cost the machine
  // (two cores busy at once count twice). It moves less between runs than the time.
  report.result(id, p + "_cpu_ms", cpuMs, "ms");
  report.result(id, p + "_up_bytes", static_cast<double>(r.bytesUp), "B");
  report.result(id, p + "_down_bytes", static_cast<double>(r.bytesDown), "B");
  report.result(id, p + "_wire_bytes", static_cast<double>(r.bytesUp + r.bytesDown), "B");
  // Hello and its reply count as one exchange besides the requests.
  report.result(id, p + "_round_trips", static_cast<double>(r.roundTrips + 1), "count");
  report.result(id, p + "_new_conns", 1, "count");
}

/// The first 100 distinct `MODI draw mod n` indices.
std::vector<std::uint32_t> recordsToModify(std::uint32_t n) {
  std::vector<std::uint32_t> out;
  std::set<std::uint32_t> seen;
  Stream s = derivedStream(kModifyTag);
  const std::size_t want = std::min<std::uint32_t>(100, n);
  while (out.size() < want) {
    const std::uint32_t i = s.next() % n;
    if (seen.insert(i).second) {
      out.push_back(i);
    }
  }
  return out;
}

std::string nextRisk(std::string_view risk) {
  if (risk == "low") {
    return "medium";
  }
  if (risk == "medium") {
    return "high";
  }
  return "low";
}

} // namespace

bool runW2(const W2Options& options, Report& report) {
  const std::uint32_t n = options.records;
  report.info(options.id,
              "records=" + std::to_string(n) + " push_batch=" + std::to_string(options.pushBatch) +
                  " pull_batch=" + std::to_string(options.pullBatch) +
                  " server=in-process outpost-server (embedded SQLite), 127.0.0.1, 2 threads");
  report.info(options.id, "device vault pages: XChaCha20-Poly1305, its ChaCha20-Poly1305 by " +
                              std::string(Vault::pageCipherImplementation()));
  Context context;
  const fs::path data = options.dir / "server";
  fs::create_directories(data);
  {
    const server::ServerKeys keys = server::ServerKeys::create(context, data);
    server::SqliteServerStore store(context, data, keys, true);
    store.addTeam("team-1");
    store.addWorker("user-a", {"team-1"});
    store.addWorker("user-b", {"team-1"});
  }
  server::ServerOptions so;
  so.dataDir = data;
  so.listen = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
  so.threads = 2;
  server::Server server(context, so);
  auto serving = std::async(std::launch::async, [&] { server.run(); });
  struct StopServer {
    server::Server& s;
    std::future<void>& f;
    ~StopServer() {
      s.stop();
      f.wait();
    }
  } stopServer{server, serving};

  Device a(options.dir / "device-a", enrollmentPayload(context, data, "user-a", server.port()),
           "user-a", options);
  Device b(options.dir / "device-b", enrollmentPayload(context, data, "user-b", server.port()),
           "user-b", options);

  // Setup: A creates the N records offline, in batches of 100.
  std::vector<Record> records;
  records.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    records.push_back(generate(i, n));
  }
  std::unordered_map<std::string, sync::Uuid> subjects;
  std::vector<sync::Uuid> ids;
  ids.reserve(n);
  auto start = std::chrono::steady_clock::now();
  for (std::size_t at = 0; at < records.size(); at += 100) {
    const auto batch = std::span(records).subspan(at, std::min<std::size_t>(100, n - at));
    std::size_t first = 0;
    const auto writes = w1Writes(batch, subjects, first);
    const auto written = a.store->writeBatch(writes);
    ids.insert(ids.end(), written.begin() + static_cast<std::ptrdiff_t>(first), written.end());
  }
  report.result(options.id, "deviceA_create_ms", msSince(start), "ms");
  const std::size_t subjectCount = subjects.size();

  double allMs = 0;
  std::uint64_t allBytes = 0;
  const auto phase = [&](std::string_view name, Device& d) {
    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = processCpuMs();
    const SyncReport r = d.client->sync();
    const double ms = msSince(t0);
    reportPhase(report, options.id, name, ms, processCpuMs() - cpu0, r);
    allMs += ms;
    allBytes += r.bytesUp + r.bytesDown;
    return r;
  };

  const SyncReport pushAll = phase("push_all", a);
  report.check(options.id, "push_all: the server acknowledged every write",
               pushAll.writesAcknowledged == n + subjectCount && pushAll.changesRejected == 0,
               std::to_string(pushAll.writesAcknowledged) + " writes");

  const SyncReport pullAll = phase("pull_all", b);
  model::RecordQuery q;
  q.type = std::string(kAssessmentType);
  q.limit = n + 1;
  const auto onB = b.store->queryIds(q).ids.size();
  report.check(options.id, "pull_all: B holds all N records", onB == n,
               std::to_string(onB) + " of " + std::to_string(n));
  (void)pullAll;

  // A modifies 100 records locally (untimed).
  const std::vector<std::uint32_t> modified = recordsToModify(n);
  const std::int64_t revised = 1735689600LL * 1000; // 2025-01-01T00:00:00Z
  start = std::chrono::steady_clock::now();
  for (const std::uint32_t i : modified) {
    const Record& r = records[i];
    a.store->update(ids[i], {{"risk_level", nextRisk(r.riskLevel)},
                             {"revised_at", revised},
                             {indicatorName(1), !r.flags[0]}});
  }
  report.result(options.id, "deviceA_modify_ms", msSince(start), "ms");

  const SyncReport pushDelta = phase("push_delta", a);
  report.check(options.id, "push_delta: the server applied exactly 100 record changes",
               pushDelta.writesAcknowledged == modified.size() && pushDelta.changesRejected == 0,
               std::to_string(pushDelta.writesAcknowledged) + " writes");

  const SyncReport pullDelta = phase("pull_delta", b);
  std::size_t correct = 0;
  for (const std::uint32_t i : modified) {
    const auto r = b.store->get(ids[i]);
    const Record& g = records[i];
    if (r && r->text("risk_level") == nextRisk(g.riskLevel) &&
        r->integer("revised_at") == revised &&
        r->get(indicatorName(1)) == sync::Value{!g.flags[0]}) {
      ++correct;
    }
  }
  report.check(options.id, "pull_delta: all 100 changes on B with the new values",
               correct == modified.size() && pullDelta.recordsUpdated == modified.size(),
               std::to_string(correct) + " correct, " + std::to_string(pullDelta.recordsUpdated) +
                   " records updated");

  report.result(options.id, "all_phases_ms", allMs, "ms");
  report.result(options.id, "all_phases_wire_bytes", static_cast<double>(allBytes), "B");
  a.store->lock();
  b.store->lock();
  report.result(options.id, "deviceA_disk_bytes", static_cast<double>(folderBytes(a.dir / "vault")),
                "B");
  report.result(options.id, "deviceB_disk_bytes", static_cast<double>(folderBytes(b.dir / "vault")),
                "B");
  report.result(options.id, "server_db_disk_bytes", static_cast<double>(folderBytes(data)), "B");
  return report.allChecksPassed();
}

bool runW2Rounds(const W2Options& options, unsigned rounds, Report& report) {
  std::vector<std::size_t> firsts; // each round's first result
  for (unsigned k = 1; k <= rounds; ++k) {
    W2Options round = options;
    round.id = options.id + ".round" + std::to_string(k);
    round.dir = options.dir / ("round-" + std::to_string(k));
    fs::create_directories(round.dir);
    firsts.push_back(report.results().size());
    (void)runW2(round, report);
    fs::remove_all(round.dir);
  }
  firsts.push_back(report.results().size());
  // Every metric of the first round, as the median over the rounds.
  const auto& all = report.results();
  std::vector<Report::Result> medians;
  for (std::size_t i = firsts[0]; i < firsts[1]; ++i) {
    std::vector<double> values;
    std::string each;
    for (std::size_t k = 0; k < rounds; ++k) {
      for (std::size_t j = firsts[k]; j < firsts[k + 1]; ++j) {
        if (all[j].metric == all[i].metric) {
          values.push_back(all[j].value);
          char text[32];
          std::snprintf(text, sizeof text, " %.1f", all[j].value);
          each += text;
          break;
        }
      }
    }
    const std::string& metric = all[i].metric;
    if (metric.ends_with("_ms") && !metric.ends_with("cpu_ms")) {
      report.info(options.id, metric + " per round:" + each);
    }
    medians.push_back({options.id, metric, median(values), all[i].unit});
  }
  report.info(options.id, "the median of " + std::to_string(rounds) + " rounds, one after another");
  for (const Report::Result& m : medians) {
    report.result(m.id, m.metric, m.value, m.unit);
  }
  return report.allChecksPassed();
}

} // namespace outpost::bench
