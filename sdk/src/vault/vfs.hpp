#pragma once
/// \file
/// The encrypting VFS: a shim over an underlying SQLite VFS (the OS one, or a
/// fault-injecting one in tests) that seals every page of the database file, every
/// page image in the WAL and in the rollback journal, and keeps temporary files in
/// memory. One instance per open vault, registered under a unique name and holding
/// that vault's page keys; unregistered on destruction.
///
/// Rules it enforces (docs/security-model.md explains why):
/// - page size 4096 with 40 reserve bytes (nonce + tag); SQLite must be told
///   (SQLITE_FCNTL_RESERVE_BYTES) before the first page is written;
/// - no shared-memory methods and no memory-mapped I/O: the database is used in
///   `locking_mode=EXCLUSIVE`, so the WAL index lives in heap memory, never in a
///   readable -shm file;
/// - writes that are not whole pages / whole frame parts are refused.

#include "page_cipher.hpp"
#include "seal_pool.hpp"

#include <sqlite3.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace outpost::vault {

class PageTable;

/// Counters a test or the vault can read.
struct VfsStats {
  std::atomic<std::uint64_t> pagesSealed{0};
  std::atomic<std::uint64_t> pagesOpened{0};
  std::atomic<std::uint64_t> pagesCopiedFromWal{0}; ///< checkpointed without sealing again
  std::atomic<std::uint64_t> frameCacheHits{0};     ///< WAL reads served without decryption
  std::atomic<std::uint64_t> authFailures{0};
  std::atomic<std::uint64_t> walFramesIgnored{0}; ///< torn or stale frames hidden from SQLite
  std::atomic<std::uint64_t> walBatches{0};       ///< batches of new WAL frames written to the file
};

class EncryptingVfs {
public:
  /// Registers a new VFS over `baseVfs` (nullptr: the default VFS), keeping up to
  /// `frameCacheLimit` WAL frames this connection wrote in memory (8 KiB each).
  /// Throws Error{internal} if the base VFS does not exist.
  /// `syncedCommits`: the connection runs with synchronous=FULL, which lets the
  /// open-time WAL scan tell tampering from a torn tail (see scanWal).
  /// `sealHelpers`: threads that seal a commit's WAL frames beside the committing
  /// thread (zero: it seals them alone).
  EncryptingVfs(PageKeys keys, const char* baseVfs, std::size_t frameCacheLimit = 1024,
                bool syncedCommits = true, unsigned sealHelpers = 0);
  ~EncryptingVfs();
  EncryptingVfs(const EncryptingVfs&) = delete;
  EncryptingVfs& operator=(const EncryptingVfs&) = delete;

  /// The name to pass to sqlite3_open_v2.
  [[nodiscard]] const char* name() const noexcept { return name_.c_str(); }
  [[nodiscard]] const PageKeys& keys() const noexcept { return keys_; }
  [[nodiscard]] sqlite3_vfs* base() const noexcept { return base_; }
  [[nodiscard]] VfsStats& stats() noexcept { return stats_; }
  /// A fresh nonce. The VFS serves one connection, so calls are never concurrent.
  [[nodiscard]] Nonce nextNonce() noexcept { return nonces_.next(); }

  /// The last page image read from the WAL, sealed and in plaintext. A checkpoint
  /// reads a frame and then writes the same page to the database file: when the
  /// bytes match, the sealed image is written as it is instead of sealing again.
  struct LastWalPage {
    bool valid = false;
    std::uint32_t pgno = 0;
    std::array<unsigned char, kPageSize> sealed{};
    std::array<unsigned char, kPageSize> plain{};
  };
  [[nodiscard]] LastWalPage& lastWalPage() noexcept { return lastWalPage_; }
  [[nodiscard]] std::size_t frameCacheLimit() const noexcept { return frameCacheLimit_; }
  [[nodiscard]] SealPool& sealPool() noexcept { return sealPool_; }
  [[nodiscard]] bool syncedCommits() const noexcept { return syncedCommits_; }
  /// Set when an open found a WAL that was tampered with.
  [[nodiscard]] bool walTamperDetected() const noexcept { return walTampered_.load(); }
  void noteWalTampered() noexcept { walTampered_ = true; }
  /// The open database file's page table (null while none is open): the WAL names
  /// its generations there.
  [[nodiscard]] PageTable* pageTable() const noexcept { return pageTable_; }
  void attachPageTable(PageTable* table) noexcept { pageTable_ = table; }

private:
  PageKeys keys_;
  sqlite3_vfs* base_;
  std::string name_;
  sqlite3_vfs vfs_{};
  VfsStats stats_;
  NonceSource nonces_;
  LastWalPage lastWalPage_;
  std::size_t frameCacheLimit_;
  bool syncedCommits_;
  SealPool sealPool_;
  std::atomic<bool> walTampered_{false};
  PageTable* pageTable_ = nullptr;
};

} // namespace outpost::vault
