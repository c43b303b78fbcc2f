#pragma once
/// \file
/// Counters the server keeps and shows on its metrics port in the Prometheus text
/// format. Every member is an atomic: any session thread may update them.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace outpost::server {

struct Metrics {
  /// Upper bounds (seconds) of the request latency histogram buckets.
  static constexpr std::array<double, 10> kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                             0.05,  0.1,    0.25,  0.5,  1.0};

  std::atomic<std::int64_t> connectionsCurrent{0};
  std::atomic<std::uint64_t> connectionsTotal{0};
  std::atomic<std::uint64_t> connectionsRefused{0}; ///< over the connection limit
  std::atomic<std::uint64_t> enrollments{0};
  std::atomic<std::uint64_t> sessions{0}; ///< admitted hellos
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> pushCommits{0}; ///< transactions that held those batches
  std::atomic<std::uint64_t> pulls{0};
  std::atomic<std::uint64_t> changesApplied{0};
  std::atomic<std::uint64_t> changesDuplicate{0};
  std::atomic<std::uint64_t> changesConflict{0};
  std::atomic<std::uint64_t> changesRejected{0};
  std::atomic<std::uint64_t> errors{0};         ///< sessions that ended on an error
  std::atomic<std::uint64_t> walCheckpoints{0}; ///< background checkpoints that copied pages
  std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size() + 1> latencyBuckets{};
  std::atomic<std::uint64_t> latencyCount{0};
  std::atomic<std::uint64_t> latencySumMicros{0};

  /// Records one request -> reply latency.
  void observeLatency(std::chrono::steady_clock::duration elapsed) noexcept;
  /// The Prometheus text exposition (version 0.0.4).
  [[nodiscard]] std::string render() const;
};

} // namespace outpost::server
