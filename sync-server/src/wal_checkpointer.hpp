#pragma once
// Checkpoints of the server's write-ahead log, on a thread of their own (internal to
// the server).
//
// With SQLite's default, the connection whose commit takes the WAL past 1000 pages
// copies the WAL into the database file, and syncs it, before that commit returns:
// on the server that is the batch writer, so a push waited for work that has nothing
// to do with it. The server's own connections turn that off
// (SqliteServerStore::setAutoCheckpoint) and this thread checkpoints instead,
// PASSIVE (never blocking a writer or a reader), every `interval`. Should the WAL
// grow past `restartPages` all the same (readers holding old snapshots), a RESTART
// checkpoint waits for them so the next write starts the WAL from the beginning.
// Truncating the WAL of an idle server is the batch writer's (BatchWriter, idle):
// done from this connection, it would make the writer's connection drop its page
// cache and read every page again at the next push.
// Durability does not depend on any of this: a commit is durable in the WAL.

#include <outpost/context.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>

namespace outpost::server {

class WalCheckpointer {
public:
  /// Checkpoints `database` every `interval`.
  WalCheckpointer(const Context& context, std::filesystem::path database,
                  std::chrono::milliseconds interval = std::chrono::milliseconds(200),
                  std::int64_t restartPages = 4096);
  /// Stops the thread (after a checkpoint in progress).
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  /// Rounds that found new WAL pages to copy, so far.
  [[nodiscard]] std::uint64_t checkpoints() const noexcept { return checkpoints_.load(); }

private:
  void run();

  const Context& context_;
  std::filesystem::path database_;
  std::chrono::milliseconds interval_;
  std::int64_t restartPages_;
  std::atomic<std::uint64_t> checkpoints_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_; // last: started once the rest is set
};

} // namespace outpost::server
