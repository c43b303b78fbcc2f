#pragma once
/// \file
/// Threads that seal a commit's WAL frames beside the committing thread. Sealing a
/// 4 KiB page is a few microseconds of cipher work and a commit writes hundreds of
/// pages; the pages are independent, so a commit can use every core of a phone.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

namespace outpost::vault {

class SealPool {
public:
  /// Up to `helpers` threads of its own, started at the first run that can use
  /// them. Zero: every run works on the calling thread alone.
  explicit SealPool(unsigned helpers) noexcept : helpers_(helpers) {}
  ~SealPool();
  SealPool(const SealPool&) = delete;
  SealPool& operator=(const SealPool&) = delete;

  /// Calls work(i) once for every i in [0, n), on the calling thread and the
  /// helpers, and returns when every call has returned. `work` must not throw.
  /// Runs are not concurrent: one connection's WAL uses a pool.
  void run(std::size_t n, const std::function<void(std::size_t)>& work) noexcept;

  /// Helper threads running now (tests).
  [[nodiscard]] std::size_t threads() const noexcept { return threads_.size(); }
  /// Items the helpers took in all runs so far (tests).
  [[nodiscard]] std::size_t helperItems() const noexcept;

private:
  void start() noexcept;
  void helperLoop(std::stop_token stop);
  /// Takes items of the current job until none is left; returns how many.
  std::size_t takeItems(const std::function<void(std::size_t)>& work, std::size_t n) noexcept;

  unsigned helpers_;
  bool started_ = false;
  std::vector<std::jthread> threads_;

  mutable std::mutex mutex_;
  std::condition_variable_any wake_; // a new job, or stop
  std::condition_variable idle_;     // the last helper left a job
  const std::function<void(std::size_t)>* work_ = nullptr;
  std::size_t n_ = 0;
  unsigned long long generation_ = 0; // counts jobs
  unsigned inside_ = 0;               // helpers that joined the current job
  std::size_t helperItems_ = 0;
  std::atomic_size_t cursor_{0}; // next item of the current job
};

} // namespace outpost::vault
