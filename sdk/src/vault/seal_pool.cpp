#include "seal_pool.hpp"

#include <exception>

namespace outpost::vault {

namespace {
/// Below this many items, waking a helper costs more than it saves.
constexpr std::size_t kMinParallelItems = 16;
} // namespace

SealPool::~SealPool() {
  for (auto& t : threads_) {
    t.request_stop();
  }
  wake_.notify_all();
  threads_.clear(); // joins
}

std::size_t SealPool::helperItems() const noexcept {
  const std::lock_guard lock(mutex_);
  return helperItems_;
}

void SealPool::start() noexcept {
  started_ = true;
  try {
    for (unsigned i = 0; i < helpers_; ++i) {
      threads_.emplace_back([this](std::stop_token stop) { helperLoop(std::move(stop)); });
    }
  } catch (const std::exception&) { // std::system_error or std::bad_alloc
    // No thread to be had: the helpers that did start serve, or the caller alone.
  }
}

std::size_t SealPool::takeItems(const std::function<void(std::size_t)>& work,
                                std::size_t n) noexcept {
  std::size_t taken = 0;
  for (std::size_t i = cursor_.fetch_add(1, std::memory_order_relaxed); i < n;
       i = cursor_.fetch_add(1, std::memory_order_relaxed)) {
    work(i);
    ++taken;
  }
  return taken;
}

void SealPool::run(std::size_t n, const std::function<void(std::size_t)>& work) noexcept {
  if (!started_ && helpers_ > 0 && n >= kMinParallelItems) {
    start();
  }
  if (threads_.empty() || n < kMinParallelItems) {
    for (std::size_t i = 0; i < n; ++i) {
      work(i);
    }
    return;
  }
  {
    const std::lock_guard lock(mutex_);
    work_ = &work;
    n_ = n;
    cursor_.store(0, std::memory_order_relaxed);
    ++generation_;
  }
  wake_.notify_all();
  (void)takeItems(work, n);
  // Every item is taken; wait for helpers still working on theirs. A helper that
  // wakes after this finds no job (work_ is null) and sleeps again.
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return inside_ == 0; });
  work_ = nullptr;
}

void SealPool::helperLoop(std::stop_token stop) {
  unsigned long long seen = 0;
  std::unique_lock lock(mutex_);
  while (true) {
    if (!wake_.wait(lock, stop, [&] { return generation_ != seen; })) {
      return; // stop requested
    }
    seen = generation_;
    if (work_ == nullptr) {
      continue; // that job is over
    }
    const auto* work = work_;
    const std::size_t n = n_;
    ++inside_;
    lock.unlock();
    const std::size_t taken = takeItems(*work, n);
    lock.lock();
    helperItems_ += taken;
    if (--inside_ == 0) {
      idle_.notify_one();
    }
  }
}

} // namespace outpost::vault
