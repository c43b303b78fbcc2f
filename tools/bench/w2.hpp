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
};

/// Runs W2 and prints its RESULT/INFO/CHECK lines; false when a CHECK failed.
bool runW2(const W2Options& options, Report& report);

} // namespace outpost::bench
