// Group commit of pushed batches on one writer thread (batch_writer.hpp).

#include "batch_writer.hpp"

namespace outpost::server {

BatchWriter::BatchWriter(std::function<std::unique_ptr<ServerStore>()> open, std::mutex& writeMutex,
                         std::size_t maxGroupChanges, std::chrono::milliseconds idleAfter)
    : open_(std::move(open)), writeMutex_(writeMutex), maxGroupChanges_(maxGroupChanges),
      idleAfter_(idleAfter), thread_([this] { run(); }) {}

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

std::shared_ptr<BatchWriter::Ticket>
BatchWriter::start(const PushContext& context, const std::vector<protocol::Change>& changes,
                   const asio::any_io_executor& executor, std::function<void()> onDone) {
  auto ticket = std::make_shared<Ticket>();
  const auto tracked = asio::prefer(executor, asio::execution::outstanding_work.tracked);
  submit(Job{
      &context, &changes,
      [ticket, tracked, onDone = std::move(onDone)](std::exception_ptr error, PushResult result) {
        asio::post(tracked, [ticket, onDone, error, result = std::move(result)]() mutable {
          ticket->result = std::move(result);
          ticket->error = error;
          ticket->done = true;
          onDone();
        });
      }});
  return ticket;
}

void BatchWriter::run() {
  std::unique_ptr<ServerStore> store;
  for (;;) {
    std::vector<Job> group;
    {
      std::unique_lock lock(mutex_);
      if (!wake_.wait_for(lock, idleAfter_, [this] { return stopping_ || !jobs_.empty(); })) {
        lock.unlock();
        idle(store);
        continue;
      }
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

void BatchWriter::idle(std::unique_ptr<ServerStore>& store) {
  try {
    if (!store) {
      store = open_();
    }
    const std::lock_guard lock(writeMutex_);
    (void)store->idle();
  } catch (...) {
    // The log stays as it is (the checkpointer still copies it); the next push or
    // idle round starts from a fresh connection.
    store.reset();
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
