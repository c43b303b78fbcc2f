// Background checkpoints of the server's WAL (wal_checkpointer.hpp).

#include "wal_checkpointer.hpp"

#include <outpost/error.hpp>
#include <outpost/sqlite.hpp>

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <optional>
#include <utility>

namespace outpost::server {

WalCheckpointer::WalCheckpointer(const Context& context, std::filesystem::path database,
                                 std::chrono::milliseconds interval, std::int64_t restartPages)
    : context_(context), database_(std::move(database)), interval_(interval),
      restartPages_(restartPages), thread_([this] { run(); }) {}

WalCheckpointer::~WalCheckpointer() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void WalCheckpointer::run() {
  std::optional<sql::Database> db;
  std::pair<int, int> last{0, 0}; // WAL pages, pages copied: as the previous round left them
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
        return;
      }
    }
    try {
      if (!db) {
        db.emplace(database_.string(), SQLITE_OPEN_READWRITE);
        db->exec("PRAGMA busy_timeout = 5000");
        db->exec("PRAGMA synchronous = FULL");
      }
      int walPages = 0;
      int copied = 0;
      int rc = sqlite3_wal_checkpoint_v2(db->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                         &walPages, &copied);
      if (rc == SQLITE_OK && walPages > restartPages_) {
        rc = sqlite3_wal_checkpoint_v2(db->handle(), nullptr, SQLITE_CHECKPOINT_RESTART, &walPages,
                                       &copied);
      }
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        throw Error(Errc::io, std::string("checkpoint failed: ") + sqlite3_errstr(rc));
      }
      if (copied > 0 && std::pair(walPages, copied) != last) {
        checkpoints_.fetch_add(1);
      }
      last = {walPages, copied};
    } catch (const std::exception& e) {
      // The WAL only grows meanwhile; the next round opens a fresh connection.
      context_.log().warn("WAL checkpoint: {}", e.what());
      db.reset();
    }
  }
}

} // namespace outpost::server
