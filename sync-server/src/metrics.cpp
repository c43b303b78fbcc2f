#include <outpost/server/metrics.hpp>

#include <sstream>

namespace outpost::server {

void Metrics::observeLatency(std::chrono::steady_clock::duration elapsed) noexcept {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::size_t bucket = 0;
  while (bucket < kLatencyBuckets.size() && seconds > kLatencyBuckets[bucket]) {
    ++bucket;
  }
  latencyBuckets[bucket].fetch_add(1, std::memory_order_relaxed);
  latencyCount.fetch_add(1, std::memory_order_relaxed);
  latencySumMicros.fetch_add(
      static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()),
      std::memory_order_relaxed);
}

namespace {
template <typename T>
void counter(std::ostringstream& out, const char* name, const char* help, const T& value,
             const char* type = "counter") {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
      << name << ' ' << value.load(std::memory_order_relaxed) << '\n';
}
} // namespace

std::string Metrics::render() const {
  std::ostringstream out;
  counter(out, "outpost_connections_current", "Connections open now.", connectionsCurrent, "gauge");
  counter(out, "outpost_connections_total", "Connections accepted.", connectionsTotal);
  counter(out, "outpost_connections_refused_total", "Connections refused over the limit.",
          connectionsRefused);
  counter(out, "outpost_enrollments_total", "Devices enrolled.", enrollments);
  counter(out, "outpost_sessions_total", "Sessions admitted.", sessions);
  counter(out, "outpost_push_batches_total", "Push batches committed.", batches);
  counter(out, "outpost_push_commits_total",
          "Transactions that committed push batches (group commit: one holds every batch "
          "waiting).",
          pushCommits);
  counter(out, "outpost_pulls_total", "Pull requests answered.", pulls);
  out << "# HELP outpost_changes_total Pushed changes by outcome.\n"
         "# TYPE outpost_changes_total counter\n"
      << "outpost_changes_total{outcome=\"applied\"} " << changesApplied.load() << '\n'
      << "outpost_changes_total{outcome=\"duplicate\"} " << changesDuplicate.load() << '\n'
      << "outpost_changes_total{outcome=\"conflict\"} " << changesConflict.load() << '\n'
      << "outpost_changes_total{outcome=\"rejected\"} " << changesRejected.load() << '\n';
  counter(out, "outpost_session_errors_total", "Sessions that ended on an error.", errors);
  counter(out, "outpost_wal_checkpoints_total",
          "Background checkpoints that copied the WAL into the database file.", walCheckpoints);
  out << "# HELP outpost_request_seconds Request to reply latency.\n"
         "# TYPE outpost_request_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    cumulative += latencyBuckets[i].load(std::memory_order_relaxed);
    out << "outpost_request_seconds_bucket{le=\"" << kLatencyBuckets[i] << "\"} " << cumulative
        << '\n';
  }
  cumulative += latencyBuckets[kLatencyBuckets.size()].load(std::memory_order_relaxed);
  out << "outpost_request_seconds_bucket{le=\"+Inf\"} " << cumulative << '\n'
      << "outpost_request_seconds_sum "
      << static_cast<double>(latencySumMicros.load(std::memory_order_relaxed)) / 1e6 << '\n'
      << "outpost_request_seconds_count " << latencyCount.load(std::memory_order_relaxed) << '\n';
  return out.str();
}

} // namespace outpost::server
