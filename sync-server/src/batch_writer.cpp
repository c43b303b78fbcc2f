// Group commit of pushed batches on one writer thread (batch_writer.hpp).

#include "batch_writer.hpp"

namespace outpost::server {

BatchWriter::BatchWriter(std::function<std::unique_ptr<ServerStore>()> open, std::mutex& writeMutex,
                         std::size_t maxGroupChanges)
    : open_(std::move(open)), writeMutex_(writeMutex), maxGroupChanges_(maxGroupChanges),
      thread_([this] { run(); }) {}

BatchWriter::~BatchWriter() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

std::uint64_t BatchWriter::batches() const noexcept { return batches_.load(); }
std::uint64_t BatchWriter::commits() const noexcept { return commits_.load(); }

void BatchWriter::submit(Job job) {
  {
    const std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

asio::awaitable<PushResult> BatchWriter::push(const PushContext& context,
                                              const std::vector<protocol::Change>& changes) {
  const auto executor = co_await asio::this_coro::executor;
  // The io_context keeps running while a session waits here (tracked work), so a
  // graceful stop finishes the batch and its acknowledgement.
  const auto tracked = asio::prefer(executor, asio::execution::outstanding_work.tracked);
  auto initiate = [this, &context, &changes, tracked](auto handler) {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    submit(Job{&context, &changes, [shared, tracked](std::exception_ptr error, PushResult result) {
                 asio::post(tracked, [shared, error, result = std::move(result)]() mutable {
                   (*shared)(error, std::move(result));
                 });
               }});
  };
  PushResult result = co_await asio::async_initiate<const asio::use_awaitable_t<>&,
                                                    void(std::exception_ptr, PushResult)>(
      initiate, asio::use_awaitable);
  co_return result;
}

void BatchWriter::run() {
  std::unique_ptr<ServerStore> store;
  for (;;) {
    std::vector<Job> group;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) {
        return; // stopping, and nothing left
      }
      std::size_t changes = 0;
      while (!jobs_.empty() &&
             (group.empty() || changes + jobs_.front().changes->size() <= maxGroupChanges_)) {
        changes += jobs_.front().changes->size();
        group.push_back(std::move(jobs_.front()));
        jobs_.pop_front();
      }
    }
    std::vector<PushRequest> requests;
    requests.reserve(group.size());
    for (const Job& job : group) {
      requests.push_back({*job.context, *job.changes});
    }
    try {
      if (!store) {
        store = open_();
      }
      std::vector<PushResult> results;
      {
        const std::lock_guard lock(writeMutex_);
        results = store->pushGroup(requests);
      }
      batches_.fetch_add(group.size());
      commits_.fetch_add(1);
      for (std::size_t i = 0; i < group.size(); ++i) {
        group[i].done(nullptr, std::move(results[i]));
      }
    } catch (...) {
      store.reset(); // a fresh connection from here on
      if (group.size() == 1) {
        group.front().done(std::current_exception(), PushResult{});
      } else {
        // Nothing of the group was applied. One batch alone may have caused it: each
        // is tried again on its own, so only the batches that fail by themselves fail.
        for (std::size_t i = 0; i < group.size(); ++i) {
          pushAlone(store, group[i], requests[i]);
        }
      }
    }
  }
}

void BatchWriter::pushAlone(std::unique_ptr<ServerStore>& store, Job& job,
                            const PushRequest& request) {
  try {
    if (!store) {
      store = open_();
    }
    PushResult result;
    {
      const std::lock_guard lock(writeMutex_);
      result = store->push(request.context, request.changes);
    }
    batches_.fetch_add(1);
    commits_.fetch_add(1);
    job.done(nullptr, std::move(result));
  } catch (...) {
    store.reset();
    job.done(std::current_exception(), PushResult{});
  }
}

} // namespace outpost::server
