#pragma once
// What the acceptor and the sessions share (internal to the server).

#include "batch_writer.hpp"
#include "wal_checkpointer.hpp"

#include <outpost/context.hpp>
#include <outpost/platform/clock.hpp>
#include <outpost/protocol/channel.hpp>
#include <outpost/server/keys.hpp>
#include <outpost/server/server.hpp>
#include <outpost/server/sqlite_store.hpp>
#include <outpost/sync/hlc.hpp>

#include <functional>
#include <map>
#include <mutex>

namespace outpost::server {

using tcp = asio::ip::tcp;

/// One connection as the server's stop() sees it. Touched only on the session's
/// strand (`channel`, `busy`, `stopRequested`).
struct SessionControl {
  asio::strand<asio::io_context::executor_type> strand;
  protocol::SecureChannel* channel = nullptr; ///< set while the channel exists
  bool busy = true;                           ///< false only while waiting for a request
  bool stopRequested = false;
};

/// Store connections shared by the sessions: a session borrows one for a request (or
/// for the handshake's registry look-ups) and gives it back, so the number of open
/// database connections follows the work in progress, not the number of devices
/// connected. Thread-safe.
class StorePool {
public:
  explicit StorePool(std::function<std::unique_ptr<ServerStore>()> open, std::size_t maxIdle)
      : open_(std::move(open)), maxIdle_(maxIdle) {}

  /// A borrowed connection; returned to the pool when destroyed.
  class Lease {
  public:
    Lease(StorePool& pool, std::unique_ptr<ServerStore> store)
        : pool_(&pool), store_(std::move(store)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (store_) {
        pool_->giveBack(std::move(store_));
      }
    }
    ServerStore& operator*() const noexcept { return *store_; }
    ServerStore* operator->() const noexcept { return store_.get(); }

  private:
    StorePool* pool_;
    std::unique_ptr<ServerStore> store_;
  };

  [[nodiscard]] Lease take() {
    {
      const std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        auto store = std::move(idle_.back());
        idle_.pop_back();
        return Lease(*this, std::move(store));
      }
    }
    return Lease(*this, open_());
  }

private:
  void giveBack(std::unique_ptr<ServerStore> store) noexcept {
    const std::lock_guard lock(mutex_);
    if (idle_.size() < maxIdle_) {
      idle_.push_back(std::move(store));
    }
  }

  std::function<std::unique_ptr<ServerStore>()> open_;
  std::size_t maxIdle_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<ServerStore>> idle_;
};

struct Server::Impl {
  const Context& context;
  ServerOptions options;
  ServerKeys keys;
  platform::SystemClock clock;
  Metrics metrics;

  asio::io_context io;
  /// The acceptors, the signal set and stop() run here, never concurrently.
  asio::strand<asio::io_context::executor_type> controlStrand{io.get_executor()};
  tcp::acceptor acceptor{io};
  tcp::acceptor metricsAcceptor{io};
  asio::signal_set signals{io};
  bool stopping = false; // on io's threads, under controlsMutex

  std::mutex controlsMutex;
  std::map<std::uint64_t, std::shared_ptr<SessionControl>> controls;
  std::uint64_t nextControl = 0;

  /// Held around the server's own write transactions (a batch, a device's scope).
  /// SQLite serialises writers anyway; waiting here wakes a session as soon as the
  /// previous write commits, where SQLite's busy handler would poll with sleeps of
  /// up to 100 ms. outpostctl's writes still meet the busy handler (rarely).
  std::mutex writeMutex;

  std::mutex hlcMutex;
  sync::HlcClock hlc{clock};
  StorePool stores{[this] { return openStore(); }, 8};
  WalCheckpointer checkpointer{context, SqliteServerStore::databasePath(options.dataDir)};
  /// Last: its thread stops (after the queued batches) before anything it uses.
  BatchWriter writer{[this] { return openStore(); }, writeMutex};

  Impl(const Context& ctx, ServerOptions opts);

  /// A store connection for one session.
  [[nodiscard]] std::unique_ptr<ServerStore> openStore();
  /// The server's HLC now, and after taking in a pushed timestamp.
  [[nodiscard]] sync::Hlc now();
  void observe(sync::Hlc pushed);

  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> metricsLoop();
  asio::awaitable<void> serveHttp(tcp::socket socket);
  void doStop();
};

/// The protocol script of one connection (session.cpp).
asio::awaitable<void> runSession(Server::Impl& server, tcp::socket socket,
                                 std::shared_ptr<SessionControl> control);

} // namespace outpost::server
