// The pull pipeline's merge thread: batches in, groups merged in order.

#include "pull_merger.hpp"

#include <utility>

namespace outpost {

PullMerger::PullMerger(Merge merge) : merge_(std::move(merge)), thread_([this] { run(); }) {}

PullMerger::~PullMerger() { stop(); }

void PullMerger::add(PulledBatch batch) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return queue_.size() < kQueued || failure_ || stopped_; });
  if (failure_) {
    std::rethrow_exception(failure_);
  }
  if (stopped_) {
    return; // stopped: nothing more is merged
  }
  queue_.push_back(std::move(batch));
  changed_.notify_all();
}

void PullMerger::finish() {
  {
    std::unique_lock lock(mutex_);
    closed_ = true;
    changed_.notify_all();
    changed_.wait(lock, [&] { return done_; });
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  if (failure_) {
    std::rethrow_exception(failure_);
  }
}

void PullMerger::stop() noexcept {
  {
    const std::lock_guard lock(mutex_);
    stopped_ = true;
    changed_.notify_all();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  const std::lock_guard lock(mutex_);
  queue_.clear();
}

model::RemoteMergeResult PullMerger::takeMerged() {
  const std::lock_guard lock(mutex_);
  return std::exchange(merged_, {});
}

std::size_t PullMerger::groupsMerged() {
  const std::lock_guard lock(mutex_);
  return groups_;
}

void PullMerger::run() {
  std::vector<PulledBatch> group;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stopped_ || closed_ || !queue_.empty(); });
      if (stopped_ || queue_.empty()) {
        break; // stopped, or closed with everything merged
      }
      while (!queue_.empty() && group.size() < kGroup) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      changed_.notify_all(); // room in the queue
    }
    try {
      const model::RemoteMergeResult r = merge_(group);
      const std::lock_guard lock(mutex_);
      merged_.merged += r.merged;
      merged_.records += r.records;
      merged_.newConflicts += r.newConflicts;
      ++groups_;
    } catch (...) {
      const std::lock_guard lock(mutex_);
      failure_ = std::current_exception();
      stopped_ = true;
      break;
    }
    group.clear(); // freed here, not under the lock
  }
  const std::lock_guard lock(mutex_);
  done_ = true;
  changed_.notify_all();
}

} // namespace outpost
