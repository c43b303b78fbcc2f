#pragma once
/// \file
/// Workload W2 of bench/WORKLOADS.md: two enrolled devices sync N records through
/// a real outpost-server (embedded store) on 127.0.0.1 over the Noise transport.

#include "report.hpp"

#include <cstdint>
#include <filesystem>

namespace outpost::bench {

struct W2Options {
  std::uint32_t records = 10000;
  std::size_t pushBatch = 10000; ///< changes per push batch
  std::uint32_t pullBatch = 10000;
  std::filesystem::path dir; ///< scratch folder (vaults and the server's data)
  std::string id = "w2.sdk"; ///< the id of its RESULT lines
};

/// Runs W2 and prints its RESULT/INFO/CHECK lines; false when a CHECK failed.
bool runW2(const W2Options& options, Report& report);

/// Runs W2 `rounds` times, each in a folder of its own under `options.dir`, its lines
/// under the id `<id>.round<k>`; then prints, under the id itself, the median of
/// every metric over the rounds, and each timed phase's figures as an INFO line.
/// False when a CHECK failed in any round.
bool runW2Rounds(const W2Options& options, unsigned rounds, Report& report);

} // namespace outpost::bench
