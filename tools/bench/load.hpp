#pragma once
/// \file
/// `outpost-bench load`: many simulated devices holding sessions with one real
/// `outpost-server` process on 127.0.0.1 and syncing small batches over the real
/// protocol (Noise IK, Hello, PushBatch -> PushAck, PullRequest -> PullReply).
///
/// The program makes a data folder (keys, teams of `teamSize` workers, one enrolled
/// device per worker, registered through the store's device registry), starts the
/// built `outpost-server` as a child process and connects every device (at most
/// `connectConcurrency` handshakes at a time). Each device syncs in a loop from the
/// moment it is connected (so none sits idle into the server's 30 s read timeout
/// while the others connect): wait a random think time (uniform in 0..2x`thinkMs`),
/// push `batch` changes to a new record, pull the team's changes after its cursor.
/// Syncs started once every device is connected, for `seconds`, are measured. It
/// prints throughput, per-request latency percentiles, the connections held (counted
/// by the devices and by the server's metrics) and the server's memory (VmRSS/VmHWM
/// from /proc/PID/status), then stops the server with SIGTERM and checks the audit
/// chain against every acknowledged change.

#include "report.hpp"

#include <filesystem>
#include <string>

namespace CLI {
class App;
}

namespace outpost::bench {

struct LoadOptions {
  unsigned devices = 1000;
  double seconds = 10;
  unsigned batch = 5;      ///< changes per push
  unsigned teamSize = 10;  ///< workers (devices) per team: who pulls whose changes
  unsigned thinkMs = 1000; ///< mean pause between a device's syncs (0: back to back)
  unsigned serverThreads = 2;
  unsigned connectConcurrency = 64;
  std::filesystem::path serverPath; ///< default: outpost-server beside this program
  std::filesystem::path dir;        ///< default: a new temp folder, removed at the end
};

/// Adds the `load` subcommand and its options to `app`.
CLI::App* addLoadCommand(CLI::App& app, LoadOptions& options);

/// Runs the load test; false when a CHECK failed. Throws outpost::Error when it cannot
/// set up (no server program, no free descriptors, ...).
bool runLoad(const LoadOptions& options, Report& report);

} // namespace outpost::bench
