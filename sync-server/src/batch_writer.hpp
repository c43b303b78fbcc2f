#pragma once
// Group commit for pushed batches (internal to the server).
//
// Every batch is committed to disk before it is acknowledged (synchronous=FULL), and
// SQLite has one writer at a time: with one transaction per batch, the server pushes
// at most one batch per disk sync, and each waiting session blocks a thread of the
// small pool. Instead, sessions hand their batches to one writer thread (start(): a
// session may hand over the next before the previous is committed) and their threads
// serve other connections meanwhile; the writer applies every batch waiting at that
// moment in ONE transaction (ServerStore::pushGroup) and fills in each batch's Ticket
// on its session's executor. Each batch still gets its own audit entry and results,
// and none is acknowledged before the commit that holds it. When a group fails, each
// of its batches is tried again alone, so a batch fails only by itself.

#include <outpost/asio.hpp>
#include <outpost/server/store.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace outpost::server {

class BatchWriter {
public:
  /// `open` gives the writer its store connection (opened again after a failure);
  /// `writeMutex` is held around each group, as around the server's other writes.
  /// At most `maxGroupChanges` changes go into one transaction (a single larger batch
  /// still goes alone). Each `idleAfter` with no batch, the writer's connection
  /// gives the log's disk space back if it can (ServerStore::idle).
  BatchWriter(std::function<std::unique_ptr<ServerStore>()> open, std::mutex& writeMutex,
              std::size_t maxGroupChanges = 50000,
              std::chrono::milliseconds idleAfter = std::chrono::milliseconds(200));
  /// Applies what is queued, then stops the thread.
  ~BatchWriter();
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  /// A batch handed to the writer. Filled in on the caller's executor once the
  /// commit that holds the batch is durable, or once it failed (`error`: what the
  /// store threw; nothing of the batch was applied).
  struct Ticket {
    bool done = false;
    PushResult result;
    std::exception_ptr error;
  };

  /// Queues one batch for the next group commit and returns at once: a session
  /// hands over its next batch while the previous ones are merged and committed.
  /// When the batch is done, its ticket is filled in and `onDone` runs, both on
  /// `executor`. `context` and `changes` must stay valid until then. The
  /// executor's io_context counts the batch as outstanding work meanwhile, so a
  /// graceful stop finishes it.
  std::shared_ptr<Ticket> start(const PushContext& context,
                                const std::vector<protocol::Change>& changes,
                                const asio::any_io_executor& executor,
                                std::function<void()> onDone);

  /// Batches committed so far, and the transactions that held them.
  [[nodiscard]] std::uint64_t batches() const noexcept;
  [[nodiscard]] std::uint64_t commits() const noexcept;

private:
  struct Job {
    const PushContext* context;
    const std::vector<protocol::Change>* changes;
    std::function<void(std::exception_ptr, PushResult)> done;
  };

  void submit(Job job);
  void run();
  /// One batch in its own transaction (after its group failed).
  void pushAlone(std::unique_ptr<ServerStore>& store, Job& job, const PushRequest& request);
  /// ServerStore::idle on the writer's connection (opened if need be).
  void idle(std::unique_ptr<ServerStore>& store);

  std::function<std::unique_ptr<ServerStore>()> open_;
  std::mutex& writeMutex_;
  std::size_t maxGroupChanges_;
  std::chrono::milliseconds idleAfter_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> commits_{0};
  std::thread thread_;
};

} // namespace outpost::server
