#pragma once
// The device's pull pipeline (internal): pulled batches are merged on a thread of
// their own, in order, while the io thread receives and decodes the next ones.

#include "device_merge.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace outpost {

/// A pulled batch decoded, waiting for its merge.
struct PulledBatch {
  std::vector<sync::Change> changes;
  std::unique_ptr<bool[]> derived; ///< per change: its id is the derived one
  std::uint64_t nextCursor = 0;
  bool more = false;
};

/// Merges the batches handed to it, in order, on its own thread. Whatever has been
/// handed over when a merge starts (up to kGroup batches) is merged as one group:
/// one vault transaction, which also stores the cursor of the group's last batch.
/// So a slow merge makes the next transaction bigger, not the queue longer.
class PullMerger {
public:
  /// Batches waiting at most (add() waits for room), and merged together at most.
  static constexpr std::size_t kQueued = 4;
  static constexpr std::size_t kGroup = 4;

  /// Merges one group of batches, in one transaction; runs on the merger's thread.
  using Merge = std::function<model::RemoteMergeResult(std::span<PulledBatch>)>;

  explicit PullMerger(Merge merge);
  /// Stops (stop()).
  ~PullMerger();
  PullMerger(const PullMerger&) = delete;
  PullMerger& operator=(const PullMerger&) = delete;

  /// Hands over the next batch; waits while kQueued batches wait already. Throws a
  /// failed merge's exception (the batch is then not taken).
  void add(PulledBatch batch);
  /// No more batches: waits until every batch handed over is merged. Throws a failed
  /// merge's exception.
  void finish();
  /// Starts no further merge, waits for the one running (it commits whole or rolls
  /// back) and drops the batches not merged. Idempotent.
  void stop() noexcept;
  /// What the merges since the last call merged (all zero if none ended).
  [[nodiscard]] model::RemoteMergeResult takeMerged();
  /// How many groups (transactions) have been merged.
  [[nodiscard]] std::size_t groupsMerged();

private:
  void run();

  Merge merge_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<PulledBatch> queue_;
  model::RemoteMergeResult merged_;
  std::size_t groups_ = 0;
  std::exception_ptr failure_;
  bool closed_ = false;  ///< no more batches come
  bool stopped_ = false; ///< merge nothing more
  bool done_ = false;    ///< the thread has left its loop
  std::thread thread_;   ///< last: started once the rest is set up
};

} // namespace outpost
