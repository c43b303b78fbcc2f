// The pool that seals a commit's WAL frames on several threads.

#include "vault/seal_pool.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using outpost::vault::SealPool;

TEST_SUITE("vault.seal_pool") {
  TEST_CASE("every item runs exactly once, on the caller and a helper") {
    // One helper: with two, both helpers could take every item while the caller
    // has not yet taken one, and the caller's part would not be shown.
    SealPool pool(1);
    constexpr std::size_t kItems = 64;
    std::vector<std::atomic_int> calls(kItems);
    std::mutex mutex;
    std::set<std::thread::id> threads;
    std::atomic_bool twoThreads{false};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    pool.run(kItems, [&](std::size_t i) {
      {
        const std::lock_guard lock(mutex);
        threads.insert(std::this_thread::get_id());
        if (threads.size() >= 2) {
          twoThreads = true;
        }
      }
      // Each item waits (for 10 s at most) until a second thread has joined: neither
      // the caller nor the helper can finish the run alone, so both take items.
      while (!twoThreads && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      calls[i]++;
    });
    for (std::size_t i = 0; i < kItems; ++i) {
      CHECK(calls[i] == 1);
    }
    CHECK(twoThreads);
    CHECK(threads.contains(std::this_thread::get_id()));
    CHECK(pool.threads() == 1);
    CHECK(pool.helperItems() >= 1);
  }

  TEST_CASE("without helpers the caller does every item") {
    SealPool pool(0);
    std::set<std::thread::id> threads;
    std::size_t calls = 0;
    pool.run(100, [&](std::size_t) {
      threads.insert(std::this_thread::get_id());
      ++calls;
    });
    CHECK(calls == 100);
    CHECK(threads == std::set{std::this_thread::get_id()});
    CHECK(pool.threads() == 0);
  }

  TEST_CASE("a run too small to share starts no thread") {
    SealPool pool(3);
    std::size_t calls = 0;
    pool.run(2, [&](std::size_t) { ++calls; });
    CHECK(calls == 2);
    CHECK(pool.threads() == 0);
  }

  TEST_CASE("many runs in a row each complete before the next starts") {
    SealPool pool(3);
    std::vector<std::atomic_int> calls(32);
    for (int run = 0; run < 2000; ++run) {
      const auto n = static_cast<std::size_t>(4 + run % 29);
      pool.run(n, [&](std::size_t i) { calls[i]++; });
      // The run has returned: no item of it is still running or left to run.
      for (std::size_t i = 0; i < n; ++i) {
        REQUIRE(calls[i] == 1);
        calls[i] = 0;
      }
    }
    CHECK(pool.threads() == 3);
  }
}
