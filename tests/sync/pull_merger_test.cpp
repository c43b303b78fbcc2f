// The pull pipeline's merge thread: order, grouping, back-pressure, failure, stop.
// The merge function here records what it was given; the one the sync client uses
// (model::applyRemote) is covered by the sync tests.

#include "sync/pull_merger.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <semaphore>
#include <stdexcept>
#include <thread>

namespace outpost {

namespace {

using namespace std::chrono_literals;

PulledBatch batch(std::uint64_t cursor) {
  PulledBatch b;
  b.nextCursor = cursor;
  b.changes.resize(2);
  return b;
}

/// A merge function that records each group's cursors and, while `hold` is set,
/// waits in its first call until released.
struct Recorder {
  std::mutex mutex;
  std::vector<std::vector<std::uint64_t>> groups;
  std::binary_semaphore entered{0};
  std::binary_semaphore release{0};
  bool hold = true;
  std::uint64_t failAt = 0; ///< throw for the group holding this cursor

  PullMerger::Merge merge() {
    return [this](std::span<PulledBatch> group) {
      std::vector<std::uint64_t> cursors;
      for (const PulledBatch& b : group) {
        cursors.push_back(b.nextCursor);
      }
      bool first = false;
      {
        const std::lock_guard lock(mutex);
        first = groups.empty();
        groups.push_back(cursors);
      }
      if (first && hold) {
        entered.release();
        release.acquire();
      }
      for (const std::uint64_t c : cursors) {
        if (c == failAt) {
          throw std::runtime_error("merge failed");
        }
      }
      model::RemoteMergeResult r;
      r.merged = 2 * group.size();
      r.records = group.size();
      return r;
    };
  }
  std::vector<std::vector<std::uint64_t>> seen() {
    const std::lock_guard lock(mutex);
    return groups;
  }
};

} // namespace

TEST_SUITE("sync.pull_merger") {
  TEST_CASE("batches that arrive while a merge runs are merged next, together, in order") {
    Recorder rec;
    PullMerger merger(rec.merge());
    merger.add(batch(1));
    rec.entered.acquire(); // merging batch 1
    merger.add(batch(2));
    merger.add(batch(3));
    merger.add(batch(4));
    rec.release.release();
    merger.add(batch(5));
    merger.finish();
    const auto groups = rec.seen();
    REQUIRE(groups.size() >= 2);
    CHECK(groups[0] == std::vector<std::uint64_t>{1});
    CHECK(groups[1].size() >= 3); // 2, 3, 4 (and 5 if it came in time)
    std::vector<std::uint64_t> all;
    for (const auto& g : groups) {
      all.insert(all.end(), g.begin(), g.end());
    }
    CHECK(all == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
    const model::RemoteMergeResult total = merger.takeMerged();
    CHECK(total.merged == 10);
    CHECK(total.records == 5);
    CHECK(merger.takeMerged().merged == 0); // taken once
    CHECK(merger.groupsMerged() == groups.size());
  }

  TEST_CASE("a group holds at most kGroup batches, and add waits while kQueued batches wait") {
    Recorder rec;
    PullMerger merger(rec.merge());
    merger.add(batch(1));
    rec.entered.acquire();
    std::uint64_t next = 2;
    for (std::size_t i = 0; i < PullMerger::kQueued; ++i) {
      merger.add(batch(next++));
    }
    std::atomic<bool> added{false};
    std::thread late([&] {
      merger.add(batch(next));
      added = true;
    });
    std::this_thread::sleep_for(50ms);
    CHECK_FALSE(added.load()); // no room until the merge takes the waiting batches
    rec.release.release();
    late.join();
    CHECK(added.load());
    merger.finish();
    const auto groups = rec.seen();
    for (const auto& g : groups) {
      CHECK(g.size() <= PullMerger::kGroup);
    }
    CHECK(merger.takeMerged().records == PullMerger::kQueued + 2);
  }

  TEST_CASE("a failed merge is thrown by finish and by the next add, and nothing after it is "
            "merged") {
    Recorder rec;
    rec.hold = false;
    rec.failAt = 2;
    PullMerger merger(rec.merge());
    merger.add(batch(1));
    merger.add(batch(2));
    // The failure shows at the latest once the thread is done.
    bool threw = false;
    for (std::uint64_t c = 3; c < 100 && !threw; ++c) {
      try {
        merger.add(batch(c));
        std::this_thread::sleep_for(1ms);
      } catch (const std::runtime_error&) {
        threw = true;
      }
    }
    CHECK(threw);
    CHECK_THROWS_AS(merger.finish(), std::runtime_error);
    for (const auto& g : rec.seen()) {
      for (const std::uint64_t c : g) {
        CHECK(c <= 2 + PullMerger::kGroup); // only the failed group and those before it
      }
    }
  }

  TEST_CASE("stop waits for the merge running and drops the batches waiting") {
    Recorder rec;
    PullMerger merger(rec.merge());
    merger.add(batch(1));
    rec.entered.acquire(); // merging batch 1, until released
    std::uint64_t next = 2;
    for (std::size_t i = 0; i < PullMerger::kQueued; ++i) {
      merger.add(batch(next++)); // the queue is full now
    }
    std::atomic<bool> stopped{false};
    std::thread stopper([&] {
      merger.stop();
      stopped = true;
    });
    // With the queue full and the merge held, this add returns only once stop() has
    // said that nothing more is merged.
    merger.add(batch(next));
    CHECK_FALSE(stopped.load()); // stop() is still waiting for merge 1
    rec.release.release();
    stopper.join();
    CHECK(rec.seen() == std::vector<std::vector<std::uint64_t>>{{1}});
    CHECK(merger.takeMerged().records == 1);
    merger.stop();          // idempotent
    merger.add(batch(100)); // stopped: not taken
    CHECK(rec.seen().size() == 1);
  }
}

} // namespace outpost
