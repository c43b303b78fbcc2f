#include "vfs.hpp"

#include "page_aead.hpp"
#include "page_table.hpp"
#include "wal_format.hpp"

#include <outpost/error.hpp>

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

namespace outpost::vault {

namespace {

// --- file objects --------------------------------------------------------------
//
// SQLite allocates szOsFile bytes for each file: our VaultFile header, then (for
// files backed by the underlying VFS) the underlying sqlite3_file. C++ state lives
// in a heap object owned by the header.

struct FileState;

struct VaultFile {
  sqlite3_file base; // must be first: SQLite sees this
  FileState* state;
};

/// Where a WAL header keeps its two salts.
constexpr std::size_t kWalSaltOffset = 16;
/// Where a sealed page keeps its tag: after the usable bytes and the nonce.
constexpr std::size_t kTagOffset = kUsableBytes + kNonceBytes;

constexpr std::size_t kRealOffset = (sizeof(VaultFile) + 15) & ~std::size_t{15};

/// New WAL frames sealed together (about 1 MiB).
constexpr std::uint32_t kBatchFrames = 256;
/// Frames per write to the underlying VFS: SQLite's unix VFS writes at most
/// 128 KiB - 1 bytes per call (it masks the length) and reports the rest as a
/// full disk.
constexpr std::uint32_t kFramesPerWrite = 0x1ffff / kFrameBytes;

struct FileState {
  EncryptingVfs* vfs = nullptr;
  FileRole role = FileRole::database;
  sqlite3_file* real = nullptr;      // null for in-memory temp files
  std::vector<unsigned char> memory; // contents of an in-memory temp file
  std::vector<unsigned char> page;   // scratch: one page or frame
  std::vector<unsigned char> plain;  // scratch: one decoded page or frame
  // Database file: the tag each page was last written with (page_table.hpp).
  PageTable table;

  // WAL: a frame header waits here until its page arrives (SQLite writes them
  // separately) so that both are sealed together.
  bool pendingHeader = false;
  std::int64_t pendingOffset = 0;
  std::array<unsigned char, kFrameHeaderBytes> header{};
  std::uint32_t scanValidFrames = 0; // valid prefix found at open
  std::uint32_t maxWrittenFrame = 0; // frames this handle wrote
  bool lastFrameIgnored = false;     // the last frame loaded was torn or stale
  bool ignoreOldFrames = false;      // the WAL found at open is of a past generation
  // Frames this handle wrote, sealed and in plaintext, so that reading them back
  // (checkpoints, pages evicted from SQLite's cache) costs no decryption. Slots
  // are indexed by frame and reused across WAL generations; allocated once.
  struct CachedFrame {
    std::array<unsigned char, kFrameBytes> plain;
    std::array<unsigned char, kPageSize> sealed;
    bool valid;
  };
  std::vector<std::unique_ptr<CachedFrame>> frameCache; // [index - 1]

  [[nodiscard]] CachedFrame* cachedFrame(std::uint32_t index) noexcept {
    if (index == 0 || index > frameCache.size()) {
      return nullptr;
    }
    CachedFrame* f = frameCache[index - 1].get();
    return f != nullptr && f->valid ? f : nullptr;
  }
  /// The slot for `index` (allocated on first use), or null beyond the limit.
  CachedFrame* frameSlot(std::uint32_t index) {
    if (index == 0 || index > vfs->frameCacheLimit()) {
      return nullptr;
    }
    if (index > frameCache.size()) {
      frameCache.resize(index);
    }
    auto& slot = frameCache[index - 1];
    if (!slot) {
      slot = std::make_unique_for_overwrite<CachedFrame>();
    }
    return slot.get();
  }
  void invalidateFramesFrom(std::uint32_t first) noexcept {
    for (std::size_t i = first == 0 ? 0 : first - 1; i < frameCache.size(); ++i) {
      if (frameCache[i]) {
        frameCache[i]->valid = false;
      }
    }
  }
  void clearFrameCache() noexcept {
    for (auto& f : frameCache) {
      if (f) {
        sodium_memzero(f->plain.data(), f->plain.size());
      }
    }
    frameCache.clear();
  }
  ~FileState() {
    clearFrameCache();
    sodium_memzero(batch.plain.data(), batch.plain.size());
  }

  // WAL: new frames appended at the end, in plaintext (header as SQLite wrote it,
  // then the page), waiting to be sealed together, on the pool's threads too, and
  // written in a few large calls. Written at a commit frame, when full, and before
  // anything else reads, syncs, truncates or rewrites the WAL (xFileSize counts
  // them); so a commit returns only once all its frames are in the file, as
  // without the batch. Wiped once written.
  struct Batch {
    std::uint32_t first = 0; // index of the first frame held
    std::uint32_t count = 0;
    std::vector<unsigned char> plain;  // kBatchFrames frames
    std::vector<unsigned char> sealed; // kBatchFrames frames, as they go to the file
    std::vector<Nonce> nonces;
    std::vector<CachedFrame*> slots;
  } batch;

  // Rollback journal: the page image just before a 4-byte checksum.
  std::int64_t journalPageEnd = -1;
  std::array<unsigned char, kNonceBytes> journalNonce{};
};

FileState& stateOf(sqlite3_file* f) { return *reinterpret_cast<VaultFile*>(f)->state; }
EncryptingVfs& ownerOf(sqlite3_vfs* v) { return *static_cast<EncryptingVfs*>(v->pAppData); }

int realRead(FileState& s, void* buf, std::size_t amt, std::int64_t off) {
  return s.real->pMethods->xRead(s.real, buf, static_cast<int>(amt), off);
}
int realWrite(FileState& s, const void* buf, std::size_t amt, std::int64_t off) {
  return s.real->pMethods->xWrite(s.real, buf, static_cast<int>(amt), off);
}
std::int64_t realSize(FileState& s, int& rc) {
  sqlite3_int64 size = 0;
  rc = s.real->pMethods->xFileSize(s.real, &size);
  return size;
}

// --- database file -------------------------------------------------------------

constexpr std::int64_t kHeaderPeek = 100; // SQLite's database header

int dbRead(FileState& s, unsigned char* out, std::size_t amt, std::int64_t off) {
  const auto& keys = s.vfs->keys();
  bool shortRead = false;
  std::size_t done = 0;
  while (done < amt) {
    const auto pos = off + static_cast<std::int64_t>(done);
    const auto pgno = static_cast<std::uint64_t>(pos) / kPageSize + 1;
    const auto pageStart = static_cast<std::int64_t>((pgno - 1) * kPageSize);
    const std::size_t within = static_cast<std::size_t>(pos - pageStart);
    const std::size_t n = std::min(amt - done, kPageSize - within);
    const int rc = realRead(s, s.page.data(), kPageSize, pageStart);
    if (rc == SQLITE_IOERR_SHORT_READ) {
      // A page wholly past the end reads as zeros (SQLite's own convention); a
      // page cut short was truncated, which no crash does to the database file.
      if (std::all_of(s.page.begin(), s.page.end(), [](unsigned char b) { return b == 0; })) {
        std::memset(out + done, 0, n);
        shortRead = true;
        done += n;
        continue;
      }
      s.vfs->stats().authFailures++;
      return SQLITE_IOERR_DATA;
    }
    if (rc != SQLITE_OK) {
      return rc;
    }
    // A whole page (SQLite's usual read) is opened straight into SQLite's buffer.
    // A page the vault did not write last (an older version put back) is refused
    // before it is opened, like a forged one.
    const bool whole = within == 0 && n == kPageSize;
    const std::span<unsigned char> plain =
        whole ? std::span<unsigned char>(out + done, kPageSize) : std::span(s.plain);
    if (!s.table.matches(pgno, s.page.data() + kTagOffset) ||
        !openPage(keys.database, PageAad(keys.databaseId, FileRole::database, pgno), s.page,
                  plain)) {
      if (pgno == 1 && off + static_cast<std::int64_t>(amt) <= kHeaderPeek) {
        // SQLite peeks at the header straight from the file before it opens the
        // WAL. After a crash during a checkpoint, page 1 may be torn here while
        // the WAL holds it whole; zeros make SQLite take its defaults and then
        // read page 1 through the pager (from the WAL, or from this file, where
        // a bad page is reported).
        std::memset(out + done, 0, n);
        done += n;
        continue;
      }
      s.vfs->stats().authFailures++;
      return SQLITE_IOERR_DATA;
    }
    s.vfs->stats().pagesOpened++;
    if (!whole) {
      std::memcpy(out + done, s.plain.data() + within, n);
    }
    done += n;
  }
  return shortRead ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

int dbWrite(FileState& s, const unsigned char* in, std::size_t amt, std::int64_t off) {
  if (off % static_cast<std::int64_t>(kPageSize) != 0 || amt % kPageSize != 0) {
    return SQLITE_IOERR_WRITE; // only whole pages can be sealed
  }
  const auto& keys = s.vfs->keys();
  auto& last = s.vfs->lastWalPage();
  for (std::size_t done = 0; done < amt; done += kPageSize) {
    const auto pos = off + static_cast<std::int64_t>(done);
    const auto pgno = static_cast<std::uint64_t>(pos) / kPageSize + 1;
    if (last.valid && last.pgno == pgno &&
        std::memcmp(last.plain.data(), in + done, kUsableBytes) == 0) {
      // Checkpoint: the WAL already holds this page sealed for the database file.
      std::memcpy(s.page.data(), last.sealed.data(), kPageSize);
      std::memset(s.page.data() + kPageSize - kFrameMacBytes, 0, kFrameMacBytes);
      s.vfs->stats().pagesCopiedFromWal++;
    } else {
      sealPage(keys.database, PageAad(keys.databaseId, FileRole::database, pgno),
               s.vfs->nextNonce(), std::span(in + done, kPageSize), s.page);
      s.vfs->stats().pagesSealed++;
    }
    const int rc = realWrite(s, s.page.data(), kPageSize, pos);
    if (rc != SQLITE_OK) {
      return rc;
    }
    s.table.record(pgno, s.page.data() + kTagOffset);
  }
  return SQLITE_OK;
}

// --- WAL -----------------------------------------------------------------------

std::uint32_t frameIndexAt(std::int64_t off) {
  return static_cast<std::uint32_t>((off - static_cast<std::int64_t>(kWalHeaderBytes)) /
                                    static_cast<std::int64_t>(kFrameBytes)) +
         1;
}

/// Reads and decodes frame `index` into s.plain. SQLITE_OK (s.plain zeroed for a
/// torn or stale frame past the valid prefix), SQLITE_IOERR_SHORT_READ (absent or
/// cut: s.plain zeroed), SQLITE_IOERR_DATA (tampered), or an I/O error.
void rememberLastWalPage(FileState& s, const unsigned char* plainFrame,
                         const unsigned char* sealedPage) {
  auto& last = s.vfs->lastWalPage();
  last.valid = true;
  last.pgno = getBigEndian32(plainFrame);
  std::memcpy(last.sealed.data(), sealedPage, kPageSize);
  std::memcpy(last.plain.data(), plainFrame + kFrameHeaderBytes, kPageSize);
}

int walLoadFrame(FileState& s, std::uint32_t index) {
  s.lastFrameIgnored = false;
  if (const auto* hit = s.cachedFrame(index); hit != nullptr) {
    std::memcpy(s.plain.data(), hit->plain.data(), kFrameBytes);
    rememberLastWalPage(s, s.plain.data(), hit->sealed.data());
    s.vfs->stats().frameCacheHits++;
    return SQLITE_OK;
  }
  if (s.ignoreOldFrames && index > s.maxWrittenFrame) {
    // A past generation's frame (walScanOnOpen): zeros, the end of the log.
    std::fill(s.plain.begin(), s.plain.end(), 0);
    s.vfs->stats().walFramesIgnored++;
    s.lastFrameIgnored = true;
    return SQLITE_OK;
  }
  const int rc = realRead(s, s.page.data(), kFrameBytes, frameOffset(index));
  if (rc == SQLITE_IOERR_SHORT_READ) {
    std::fill(s.plain.begin(), s.plain.end(), 0);
    return rc; // SQLite's recovery reads whole frames only; a cut one is a torn append
  }
  if (rc != SQLITE_OK) {
    return rc;
  }
  if (openFrame(s.vfs->keys(), index, s.page, s.plain)) {
    s.vfs->stats().pagesOpened++;
    rememberLastWalPage(s, s.plain.data(), s.page.data() + kFrameHeaderBytes);
    return SQLITE_OK;
  }
  if (index > s.scanValidFrames && index > s.maxWrittenFrame) {
    // Torn or stale frame past the valid prefix found at open: zeros (which carry
    // no valid salt) make SQLite's recovery see the end of the log there, exactly
    // as after a torn write.
    s.vfs->stats().walFramesIgnored++;
    s.lastFrameIgnored = true;
    return SQLITE_OK;
  }
  s.vfs->stats().authFailures++;
  return SQLITE_IOERR_DATA;
}

/// What a failed write of the batch leaves. On SQLite's write paths a failed WAL
/// write fails the whole transaction (SQLite rolls it back), so its frames are
/// dead: `drop`. A read, sync or truncate that fails does not end the
/// transaction, and SQLite still counts on frames it was told are written: `keep`
/// them for the next write of the batch (the commit frame's at the latest). A
/// commit frame is never kept: its own write is a write path.
enum class OnFailure { keep, drop };

/// Seals the batched frames (spread over the seal pool), writes them to the file
/// in as few calls as the underlying VFS allows, and keeps them in the frame cache.
int walWriteBatch(FileState& s, OnFailure onFailure) {
  auto& b = s.batch;
  if (b.count == 0) {
    return SQLITE_OK;
  }
  const std::uint32_t n = b.count;
  for (std::uint32_t i = 0; i < n; ++i) {
    try {
      b.slots[i] = s.frameSlot(b.first + i);
    } catch (const std::bad_alloc&) {
      b.slots[i] = nullptr; // the cache is an optimisation: the frame is read back instead
    }
    if (b.slots[i] != nullptr) {
      b.slots[i]->valid = false;
    }
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    b.nonces[i] = s.vfs->nextNonce();
  }
  const auto& keys = s.vfs->keys();
  s.vfs->sealPool().run(n, [&](std::size_t i) {
    const unsigned char* plain = b.plain.data() + i * kFrameBytes;
    unsigned char* sealed = b.sealed.data() + i * kFrameBytes;
    sealFrame(keys, b.first + static_cast<std::uint32_t>(i),
              std::span<const unsigned char, kFrameHeaderBytes>(plain, kFrameHeaderBytes),
              std::span(plain + kFrameHeaderBytes, kPageSize), b.nonces[i],
              std::span(sealed, kFrameBytes));
    if (FileState::CachedFrame* frame = b.slots[i]; frame != nullptr) {
      std::memcpy(frame->plain.data(), plain, kFrameHeaderBytes + kUsableBytes);
      std::memset(frame->plain.data() + kFrameHeaderBytes + kUsableBytes, 0, kReserveBytes);
      std::memcpy(frame->sealed.data(), sealed + kFrameHeaderBytes, kPageSize);
    }
  });
  s.vfs->stats().pagesSealed += n;
  int rc = SQLITE_OK;
  for (std::uint32_t at = 0; at < n && rc == SQLITE_OK; at += kFramesPerWrite) {
    const std::uint32_t len = std::min(kFramesPerWrite, n - at);
    rc = realWrite(s, b.sealed.data() + std::size_t{at} * kFrameBytes,
                   std::size_t{len} * kFrameBytes, frameOffset(b.first + at));
    if (rc == SQLITE_OK) {
      s.maxWrittenFrame = std::max(s.maxWrittenFrame, b.first + at + len - 1);
    }
  }
  if (rc != SQLITE_OK && onFailure == OnFailure::keep) {
    return rc; // frame cache slots stay invalid; the batch is written again later
  }
  if (rc == SQLITE_OK) {
    for (std::uint32_t i = 0; i < n; ++i) {
      if (b.slots[i] != nullptr) {
        b.slots[i]->valid = true;
      }
    }
    s.vfs->stats().walBatches++;
  }
  sodium_memzero(b.plain.data(), std::size_t{n} * kFrameBytes);
  b.count = 0;
  return rc;
}

/// Adds a new frame to the batch; writes the batch at a commit frame or when full.
int walAppendFrame(FileState& s, std::uint32_t index, const unsigned char* header,
                   const unsigned char* page) {
  auto& b = s.batch;
  if (b.count > 0 && index < b.first + b.count) {
    // SQLite appends again where held frames are: it rolled back to a savepoint
    // or the transaction failed. The frames from `index` on are dead.
    const std::uint32_t live = index > b.first ? index - b.first : 0;
    sodium_memzero(b.plain.data() + std::size_t{live} * kFrameBytes,
                   std::size_t{b.count - live} * kFrameBytes);
    b.count = live;
  }
  if (b.count > 0 && index != b.first + b.count) {
    const int rc = walWriteBatch(s, OnFailure::drop);
    if (rc != SQLITE_OK) {
      return rc;
    }
  }
  if (b.plain.empty()) {
    b.plain.resize(kBatchFrames * kFrameBytes);
    b.sealed.resize(kBatchFrames * kFrameBytes);
    b.nonces.resize(kBatchFrames);
    b.slots.resize(kBatchFrames);
  }
  if (b.count == 0) {
    b.first = index;
  }
  unsigned char* slot = b.plain.data() + std::size_t{b.count} * kFrameBytes;
  std::memcpy(slot, header, kFrameHeaderBytes);
  std::memcpy(slot + kFrameHeaderBytes, page, kPageSize);
  ++b.count;
  const bool commit = getBigEndian32(header + 4) != 0;
  return commit || b.count == kBatchFrames ? walWriteBatch(s, OnFailure::drop) : SQLITE_OK;
}

int walStoreFrame(FileState& s, std::uint32_t index, const unsigned char* header,
                  const unsigned char* page) {
  std::array<unsigned char, kFrameHeaderBytes> h{};
  std::memcpy(h.data(), header, h.size());
  sealFrame(s.vfs->keys(), index, h, std::span(page, kPageSize), s.vfs->nextNonce(), s.page);
  s.vfs->stats().pagesSealed++;
  s.maxWrittenFrame = std::max(s.maxWrittenFrame, index);
  const int rc = realWrite(s, s.page.data(), kFrameBytes, frameOffset(index));
  FileState::CachedFrame* frame = nullptr;
  try {
    frame = s.frameSlot(index);
  } catch (const std::bad_alloc&) {
    // Without a cache slot the frame is read back from the file.
  }
  if (rc != SQLITE_OK) {
    if (frame != nullptr) {
      frame->valid = false;
    }
    return rc;
  }
  if (frame != nullptr) {
    std::memcpy(frame->plain.data(), h.data(), kFrameHeaderBytes);
    std::memcpy(frame->plain.data() + kFrameHeaderBytes, page, kUsableBytes);
    std::memset(frame->plain.data() + kFrameHeaderBytes + kUsableBytes, 0, kReserveBytes);
    std::memcpy(frame->sealed.data(), s.page.data() + kFrameHeaderBytes, kPageSize);
    frame->valid = true;
  }
  return SQLITE_OK;
}

/// Writes out what waits: the batch of new frames, then a frame header that came
/// alone. A header written alone rewrites an existing frame's checksums (SQLite's
/// walRewriteChecksums): the stored page is sealed again under the new header.
int walFlushPending(FileState& s, OnFailure onFailure) {
  if (const int rc = walWriteBatch(s, onFailure); rc != SQLITE_OK) {
    return rc;
  }
  if (!s.pendingHeader) {
    return SQLITE_OK;
  }
  s.pendingHeader = false;
  const std::uint32_t index = frameIndexAt(s.pendingOffset);
  const int rc = walLoadFrame(s, index);
  if (rc == SQLITE_IOERR_SHORT_READ || (rc == SQLITE_OK && s.lastFrameIgnored)) {
    // No page to go with it: SQLite's page write failed and it has reported that.
    return SQLITE_OK;
  }
  if (rc != SQLITE_OK) {
    return rc;
  }
  std::vector<unsigned char> page(s.plain.begin() + kFrameHeaderBytes, s.plain.end());
  return walStoreFrame(s, index, s.header.data(), page.data());
}

int walRead(FileState& s, unsigned char* out, std::size_t amt, std::int64_t off) {
  int rc = walFlushPending(s, OnFailure::keep);
  if (rc != SQLITE_OK) {
    return rc;
  }
  bool shortRead = false;
  std::size_t done = 0;
  while (done < amt) {
    const auto pos = off + static_cast<std::int64_t>(done);
    if (pos < static_cast<std::int64_t>(kWalHeaderBytes)) {
      // The WAL header holds no plaintext-derived value: magic, sizes, salts and a
      // checksum over those.
      const std::size_t n = std::min(amt - done, kWalHeaderBytes - static_cast<std::size_t>(pos));
      if (s.ignoreOldFrames) {
        // A past generation's WAL reads as no WAL at all, so that SQLite starts a
        // generation of its own (fresh salts) rather than continue that one's.
        std::memset(out + done, 0, n);
        done += n;
        continue;
      }
      rc = realRead(s, out + done, n, pos);
      if (rc == SQLITE_IOERR_SHORT_READ) {
        shortRead = true;
      } else if (rc != SQLITE_OK) {
        return rc;
      }
      done += n;
      continue;
    }
    const std::uint32_t index = frameIndexAt(pos);
    const auto within = static_cast<std::size_t>(pos - frameOffset(index));
    const std::size_t n = std::min(amt - done, kFrameBytes - within);
    rc = walLoadFrame(s, index);
    if (rc == SQLITE_IOERR_SHORT_READ) {
      shortRead = true;
    } else if (rc != SQLITE_OK) {
      return rc;
    }
    std::memcpy(out + done, s.plain.data() + within, n);
    done += n;
  }
  return shortRead ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

int walWrite(FileState& s, const unsigned char* in, std::size_t amt, std::int64_t off) {
  const bool pageOfPending = s.pendingHeader && amt == kPageSize &&
                             off == s.pendingOffset + static_cast<std::int64_t>(kFrameHeaderBytes);
  // A frame header waits for its page; a new frame joins the batch. Anything
  // else first writes out what waits.
  const bool frameHeader = !s.pendingHeader && off >= static_cast<std::int64_t>(kWalHeaderBytes) &&
                           amt == kFrameHeaderBytes;
  const bool wholeNewFrame = !s.pendingHeader && amt == kFrameBytes;
  if (!pageOfPending && !frameHeader && !wholeNewFrame) {
    const int rc = walFlushPending(s, OnFailure::drop);
    if (rc != SQLITE_OK) {
      return rc;
    }
  }
  if (off == 0 && amt == kWalHeaderBytes) {
    s.invalidateFramesFrom(1); // a new header starts a new generation of frames
    s.ignoreOldFrames = false;
    if (PageTable* table = s.vfs->pageTable(); table != nullptr) {
      // The database's page table names the generation before it exists.
      WalSalts salts{};
      std::memcpy(salts.data(), in + kWalSaltOffset, salts.size());
      if (const int rc = table->admitWalGeneration(salts); rc != SQLITE_OK) {
        return rc;
      }
    }
    return realWrite(s, in, amt, off);
  }
  if (off < static_cast<std::int64_t>(kWalHeaderBytes)) {
    return SQLITE_IOERR_WRITE;
  }
  const std::int64_t rel =
      (off - static_cast<std::int64_t>(kWalHeaderBytes)) % static_cast<std::int64_t>(kFrameBytes);
  const std::uint32_t index = frameIndexAt(off);
  if (rel == 0 && amt == kFrameHeaderBytes) {
    s.pendingHeader = true;
    s.pendingOffset = off;
    std::memcpy(s.header.data(), in, kFrameHeaderBytes);
    return SQLITE_OK;
  }
  if (rel == static_cast<std::int64_t>(kFrameHeaderBytes) && amt == kPageSize) {
    if (pageOfPending) {
      s.pendingHeader = false;
      return walAppendFrame(s, index, s.header.data(), in);
    }
    // A page rewritten in place within one transaction: keep the stored header
    // until SQLite rewrites it.
    const int rc = walLoadFrame(s, index);
    if (rc == SQLITE_IOERR_SHORT_READ || (rc == SQLITE_OK && s.lastFrameIgnored)) {
      return SQLITE_IOERR_WRITE; // no frame to rewrite
    }
    if (rc != SQLITE_OK) {
      return rc;
    }
    std::array<unsigned char, kFrameHeaderBytes> header{};
    std::memcpy(header.data(), s.plain.data(), header.size());
    return walStoreFrame(s, index, header.data(), in);
  }
  if (rel == 0 && amt == kFrameBytes) {
    return walAppendFrame(s, index, in, in + kFrameHeaderBytes);
  }
  return SQLITE_IOERR_WRITE;
}

/// Scans the WAL when it is opened; a tampered WAL makes every read fail.
int walScanOnOpen(FileState& s) {
  int rc = SQLITE_OK;
  const std::int64_t size = realSize(s, rc);
  if (rc != SQLITE_OK || size < static_cast<std::int64_t>(kWalHeaderBytes)) {
    return rc;
  }
  std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
  rc = realRead(s, bytes.data(), bytes.size(), 0);
  if (rc != SQLITE_OK) {
    return rc;
  }
  const WalScan scan = scanWal(s.vfs->keys(), bytes, s.vfs->syncedCommits());
  s.scanValidFrames = scan.validFrames;
  WalSalts salts{};
  std::memcpy(salts.data(), bytes.data() + kWalSaltOffset, salts.size());
  const PageTable* table = s.vfs->pageTable();
  if (scan.validFrames > 0 && table != nullptr) {
    if (!table->admits(salts)) {
      // Authentic frames of a generation the database's table does not name: this
      // WAL was not written on top of this database file.
      s.vfs->stats().authFailures++;
      s.vfs->noteWalTampered();
      return SQLITE_IOERR_DATA;
    }
    if (!table->isCurrentGeneration(salts)) {
      // The generation before the newest: every frame of it is in the database
      // file already, so there is nothing to replay (and an older WAL put back
      // would replay older pages). SQLite sees an empty log.
      s.scanValidFrames = 0;
      s.ignoreOldFrames = true;
      return SQLITE_OK;
    }
  }
  if (scan.tampered) {
    s.vfs->noteWalTampered();
    return SQLITE_IOERR_DATA;
  }
  return SQLITE_OK;
}

// --- rollback journal ------------------------------------------------------------
//
// Records are [page number: 4][page image: page size][checksum: 4]; the checksum
// samples the plaintext, so it is masked with the image's nonce.

int journalRead(FileState& s, unsigned char* out, std::size_t amt, std::int64_t off) {
  const auto& keys = s.vfs->keys();
  if (amt == kPageSize) {
    int rc = realRead(s, s.page.data(), kPageSize, off);
    if (rc != SQLITE_OK) {
      return rc;
    }
    std::memcpy(s.journalNonce.data(), s.page.data() + kUsableBytes, kNonceBytes);
    s.journalPageEnd = off + static_cast<std::int64_t>(kPageSize);
    if (!openPage(keys.journal,
                  PageAad(keys.databaseId, FileRole::journal, static_cast<std::uint64_t>(off)),
                  s.page, std::span(out, kPageSize))) {
      // A torn record: zeros fail SQLite's record checksum and end the playback,
      // as for any torn journal.
      s.vfs->stats().authFailures++;
      s.journalPageEnd = -1;
    }
    return SQLITE_OK;
  }
  const int rc = realRead(s, out, amt, off);
  if (rc == SQLITE_OK && amt == 4 && off == s.journalPageEnd) {
    maskWithNonce(keys.journalMask, s.journalNonce, std::span(out, 4));
  }
  return rc;
}

int journalWrite(FileState& s, const unsigned char* in, std::size_t amt, std::int64_t off) {
  const auto& keys = s.vfs->keys();
  if (amt == kPageSize) {
    sealPage(keys.journal,
             PageAad(keys.databaseId, FileRole::journal, static_cast<std::uint64_t>(off)),
             s.vfs->nextNonce(), std::span(in, kPageSize), s.page);
    s.vfs->stats().pagesSealed++;
    std::memcpy(s.journalNonce.data(), s.page.data() + kUsableBytes, kNonceBytes);
    s.journalPageEnd = off + static_cast<std::int64_t>(kPageSize);
    return realWrite(s, s.page.data(), kPageSize, off);
  }
  if (amt == 4 && off == s.journalPageEnd) {
    std::array<unsigned char, 4> masked{};
    std::memcpy(masked.data(), in, 4);
    maskWithNonce(keys.journalMask, s.journalNonce, masked);
    return realWrite(s, masked.data(), 4, off);
  }
  return realWrite(s, in, amt, off);
}

// --- io methods: files on the underlying VFS -------------------------------------

int xClose(sqlite3_file* f) {
  auto* vf = reinterpret_cast<VaultFile*>(f);
  FileState* s = vf->state;
  int rc = SQLITE_OK;
  if (s != nullptr) {
    if (s->role == FileRole::wal) {
      (void)walFlushPending(*s, OnFailure::drop);
    }
    if (s->role == FileRole::database) {
      s->table.close();
      if (s->vfs->pageTable() == &s->table) {
        s->vfs->attachPageTable(nullptr);
      }
    }
    if (s->real != nullptr && s->real->pMethods != nullptr) {
      rc = s->real->pMethods->xClose(s->real);
    }
    delete s;
    vf->state = nullptr;
  }
  return rc;
}

int xRead(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
  FileState& s = stateOf(f);
  auto* out = static_cast<unsigned char*>(buf);
  const auto n = static_cast<std::size_t>(amt);
  try {
    switch (s.role) {
    case FileRole::database:
      return dbRead(s, out, n, off);
    case FileRole::wal:
      return walRead(s, out, n, off);
    case FileRole::journal:
      return journalRead(s, out, n, off);
    }
  } catch (const std::bad_alloc&) {
    return SQLITE_NOMEM;
  }
  return SQLITE_IOERR_READ;
}

int xWrite(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
  FileState& s = stateOf(f);
  const auto* in = static_cast<const unsigned char*>(buf);
  const auto n = static_cast<std::size_t>(amt);
  try {
    switch (s.role) {
    case FileRole::database:
      return dbWrite(s, in, n, off);
    case FileRole::wal:
      return walWrite(s, in, n, off);
    case FileRole::journal:
      return journalWrite(s, in, n, off);
    }
  } catch (const std::bad_alloc&) {
    return SQLITE_NOMEM;
  }
  return SQLITE_IOERR_WRITE;
}

int xTruncate(sqlite3_file* f, sqlite3_int64 size) {
  FileState& s = stateOf(f);
  if (s.role == FileRole::wal) {
    const int rc = walFlushPending(s, OnFailure::keep);
    if (rc != SQLITE_OK) {
      return rc;
    }
    const std::uint32_t kept =
        size <= static_cast<sqlite3_int64>(kWalHeaderBytes) ? 0 : frameIndexAt(size) - 1;
    s.maxWrittenFrame = std::min(s.maxWrittenFrame, kept);
    s.invalidateFramesFrom(kept + 1);
    s.scanValidFrames = std::min(s.scanValidFrames, kept);
  }
  const int rc = s.real->pMethods->xTruncate(s.real, size);
  if (rc == SQLITE_OK && s.role == FileRole::database) {
    s.table.truncate(static_cast<std::uint64_t>(size) / kPageSize);
  }
  return rc;
}

int xSync(sqlite3_file* f, int flags) {
  FileState& s = stateOf(f);
  if (s.role == FileRole::wal) {
    const int rc = walFlushPending(s, OnFailure::keep);
    if (rc != SQLITE_OK) {
      return rc;
    }
  }
  const int rc = s.real->pMethods->xSync(s.real, flags);
  if (rc != SQLITE_OK || s.role != FileRole::database) {
    return rc;
  }
  // The pages are on disk: now the table that vouches for them. A crash between
  // the two leaves the older table, and the pages it does not match are still in
  // the WAL, which SQLite reads them from (docs/security-model.md).
  try {
    return s.table.persist();
  } catch (const std::bad_alloc&) {
    return SQLITE_NOMEM;
  }
}

int xFileSize(sqlite3_file* f, sqlite3_int64* size) {
  FileState& s = stateOf(f);
  const int rc = s.real->pMethods->xFileSize(s.real, size);
  if (rc == SQLITE_OK && s.role == FileRole::wal && s.batch.count > 0) {
    *size = std::max<sqlite3_int64>(*size, frameOffset(s.batch.first + s.batch.count));
  }
  if (rc == SQLITE_OK && s.role == FileRole::wal && s.pendingHeader) {
    *size = std::max<sqlite3_int64>(*size, s.pendingOffset +
                                               static_cast<sqlite3_int64>(kFrameHeaderBytes));
  }
  return rc;
}

int xLock(sqlite3_file* f, int level) {
  FileState& s = stateOf(f);
  return s.real->pMethods->xLock(s.real, level);
}
int xUnlock(sqlite3_file* f, int level) {
  FileState& s = stateOf(f);
  return s.real->pMethods->xUnlock(s.real, level);
}
int xCheckReservedLock(sqlite3_file* f, int* out) {
  FileState& s = stateOf(f);
  return s.real->pMethods->xCheckReservedLock(s.real, out);
}

int xFileControl(sqlite3_file* f, int op, void* arg) {
  FileState& s = stateOf(f);
  if (op == SQLITE_FCNTL_MMAP_SIZE) {
    // Memory-mapped I/O would read ciphertext straight from the file: off.
    *static_cast<sqlite3_int64*>(arg) = 0;
    return SQLITE_OK;
  }
  if (op == SQLITE_FCNTL_VFSNAME) {
    *static_cast<char**>(arg) = sqlite3_mprintf("%s", s.vfs->name());
    return SQLITE_OK;
  }
  return s.real->pMethods->xFileControl(s.real, op, arg);
}

int xSectorSize(sqlite3_file* f) {
  FileState& s = stateOf(f);
  return s.real->pMethods->xSectorSize(s.real);
}

int xDeviceCharacteristics(sqlite3_file* f) {
  FileState& s = stateOf(f);
  // Power-safe overwrite keeps SQLite from padding or splitting WAL frames: every
  // write the WAL sees is a whole frame header, page or WAL header.
  return s.real->pMethods->xDeviceCharacteristics(s.real) | SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

// Version 1: no shared memory (the WAL index stays in heap memory under
// locking_mode=EXCLUSIVE) and no xFetch (no memory-mapped reads).
const sqlite3_io_methods kVaultMethods = {1,
                                          xClose,
                                          xRead,
                                          xWrite,
                                          xTruncate,
                                          xSync,
                                          xFileSize,
                                          xLock,
                                          xUnlock,
                                          xCheckReservedLock,
                                          xFileControl,
                                          xSectorSize,
                                          xDeviceCharacteristics,
                                          nullptr,
                                          nullptr,
                                          nullptr,
                                          nullptr,
                                          nullptr,
                                          nullptr};

// --- io methods: temporary files in memory ---------------------------------------

int memClose(sqlite3_file* f) {
  auto* vf = reinterpret_cast<VaultFile*>(f);
  if (vf->state != nullptr) {
    sodium_memzero(vf->state->memory.data(), vf->state->memory.size());
  }
  delete vf->state;
  vf->state = nullptr;
  return SQLITE_OK;
}

int memRead(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
  auto& m = stateOf(f).memory;
  const auto n = static_cast<std::size_t>(amt);
  const auto at = static_cast<std::size_t>(off);
  const std::size_t avail = at < m.size() ? std::min(n, m.size() - at) : 0;
  if (avail > 0) {
    std::memcpy(buf, m.data() + at, avail);
  }
  if (avail < n) {
    std::memset(static_cast<unsigned char*>(buf) + avail, 0, n - avail);
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

int memWrite(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
  auto& m = stateOf(f).memory;
  const auto n = static_cast<std::size_t>(amt);
  const auto at = static_cast<std::size_t>(off);
  try {
    if (m.size() < at + n) {
      m.resize(at + n);
    }
  } catch (const std::bad_alloc&) {
    return SQLITE_IOERR_WRITE;
  }
  std::memcpy(m.data() + at, buf, n);
  return SQLITE_OK;
}

int memTruncate(sqlite3_file* f, sqlite3_int64 size) {
  auto& m = stateOf(f).memory;
  if (static_cast<std::size_t>(size) < m.size()) {
    m.resize(static_cast<std::size_t>(size));
  }
  return SQLITE_OK;
}
int memSync(sqlite3_file*, int) { return SQLITE_OK; }
int memFileSize(sqlite3_file* f, sqlite3_int64* size) {
  *size = static_cast<sqlite3_int64>(stateOf(f).memory.size());
  return SQLITE_OK;
}
int memLock(sqlite3_file*, int) { return SQLITE_OK; }
int memCheckReservedLock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int memFileControl(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int memSectorSize(sqlite3_file*) { return 4096; }
int memDeviceCharacteristics(sqlite3_file*) { return 0; }

const sqlite3_io_methods kMemoryMethods = {1,
                                           memClose,
                                           memRead,
                                           memWrite,
                                           memTruncate,
                                           memSync,
                                           memFileSize,
                                           memLock,
                                           memLock,
                                           memCheckReservedLock,
                                           memFileControl,
                                           memSectorSize,
                                           memDeviceCharacteristics,
                                           nullptr,
                                           nullptr,
                                           nullptr,
                                           nullptr,
                                           nullptr,
                                           nullptr};

// --- VFS methods -------------------------------------------------------------------

int vfsOpen(sqlite3_vfs* v, sqlite3_filename name, sqlite3_file* file, int flags, int* outFlags) {
  EncryptingVfs& owner = ownerOf(v);
  auto* vf = reinterpret_cast<VaultFile*>(file);
  vf->base.pMethods = nullptr;
  vf->state = nullptr;

  auto state = std::make_unique<FileState>();
  state->vfs = &owner;
  constexpr int kTempKinds = SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TEMP_JOURNAL |
                             SQLITE_OPEN_TRANSIENT_DB | SQLITE_OPEN_SUBJOURNAL;
  if ((flags & kTempKinds) != 0) {
    vf->state = state.release();
    vf->base.pMethods = &kMemoryMethods;
    if (outFlags != nullptr) {
      *outFlags = flags;
    }
    return SQLITE_OK;
  }
  if ((flags & SQLITE_OPEN_MAIN_DB) != 0) {
    state->role = FileRole::database;
  } else if ((flags & SQLITE_OPEN_WAL) != 0) {
    state->role = FileRole::wal;
  } else if ((flags & SQLITE_OPEN_MAIN_JOURNAL) != 0) {
    state->role = FileRole::journal;
  } else {
    return SQLITE_CANTOPEN; // super-journals: the vault never attaches databases
  }
  state->page.resize(kFrameBytes);
  state->plain.resize(kFrameBytes);
  state->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealOffset);
  int rc = owner.base()->xOpen(owner.base(), name, state->real, flags, outFlags);
  if (rc != SQLITE_OK) {
    state->real->pMethods = nullptr;
    return rc;
  }
  if (state->role == FileRole::database) {
    const std::int64_t bytes = realSize(*state, rc);
    if (rc == SQLITE_OK && owner.pageTable() != nullptr) {
      rc = SQLITE_CANTOPEN; // one database per vault: its WAL names its generations
    }
    if (rc == SQLITE_OK) {
      try {
        rc = state->table.open(owner.base(), name, owner.keys().databaseId,
                               owner.keys().pageTable.bytes(), bytes);
      } catch (const std::bad_alloc&) {
        rc = SQLITE_NOMEM;
      }
    }
    if (rc != SQLITE_OK) {
      state->table.close();
      state->real->pMethods->xClose(state->real);
      state->real->pMethods = nullptr;
      return rc;
    }
  }
  vf->state = state.release();
  vf->base.pMethods = &kVaultMethods;
  if (vf->state->role == FileRole::database) {
    owner.attachPageTable(&vf->state->table);
  }
  if (vf->state->role == FileRole::wal) {
    rc = walScanOnOpen(*vf->state);
    if (rc != SQLITE_OK) {
      xClose(file);
      vf->base.pMethods = nullptr;
      return rc;
    }
  }
  return SQLITE_OK;
}

int vfsDelete(sqlite3_vfs* v, const char* name, int syncDir) {
  sqlite3_vfs* b = ownerOf(v).base();
  return b->xDelete(b, name, syncDir);
}
int vfsAccess(sqlite3_vfs* v, const char* name, int flags, int* out) {
  sqlite3_vfs* b = ownerOf(v).base();
  return b->xAccess(b, name, flags, out);
}
int vfsFullPathname(sqlite3_vfs* v, const char* name, int n, char* out) {
  sqlite3_vfs* b = ownerOf(v).base();
  return b->xFullPathname(b, name, n, out);
}
void* vfsDlOpen(sqlite3_vfs* v, const char* name) {
  sqlite3_vfs* b = ownerOf(v).base();
  return b->xDlOpen(b, name);
}
void vfsDlError(sqlite3_vfs* v, int n, char* msg) {
  sqlite3_vfs* b = ownerOf(v).base();
  b->xDlError(b, n, msg);
}
void (*vfsDlSym(sqlite3_vfs* v, void* h, const char* sym))(void) {
  sqlite3_vfs* b = ownerOf(v).base();
  return b->xDlSym(b, h, sym);
}
void vfsDlClose(sqlite3_vfs* v, void* h) {
  sqlite3_vfs* b = ownerOf(v).base();
  b->xDlClose(b, h);
}
int vfsRandomness(sqlite3_vfs*, int n, char* out) {
  randombytes_buf(out, static_cast<std::size_t>(n));
  return n;
}
int vfsSleep(sqlite3_vfs* v, int us) {
  sqlite3_vfs* b = ownerOf(v).base();
  return b->xSleep(b, us);
}
int vfsCurrentTime(sqlite3_vfs* v, double* out) {
  sqlite3_vfs* b = ownerOf(v).base();
  return b->xCurrentTime(b, out);
}
int vfsGetLastError(sqlite3_vfs* v, int n, char* out) {
  sqlite3_vfs* b = ownerOf(v).base();
  return b->xGetLastError != nullptr ? b->xGetLastError(b, n, out) : 0;
}
int vfsCurrentTimeInt64(sqlite3_vfs* v, sqlite3_int64* out) {
  sqlite3_vfs* b = ownerOf(v).base();
  if (b->iVersion >= 2 && b->xCurrentTimeInt64 != nullptr) {
    return b->xCurrentTimeInt64(b, out);
  }
  double now = 0;
  const int rc = b->xCurrentTime(b, &now);
  *out = static_cast<sqlite3_int64>(now * 86400000.0);
  return rc;
}

std::atomic<std::uint64_t> gInstanceCounter{0}; // names only; no shared state

} // namespace

EncryptingVfs::EncryptingVfs(PageKeys keys, const char* baseVfs, std::size_t frameCacheLimit,
                             bool syncedCommits, unsigned sealHelpers)
    : keys_(std::move(keys)), base_(sqlite3_vfs_find(baseVfs)), frameCacheLimit_(frameCacheLimit),
      syncedCommits_(syncedCommits), sealPool_(sealHelpers) {
  if (base_ == nullptr) {
    throw Error(Errc::internal,
                std::string("no SQLite VFS named ") + (baseVfs != nullptr ? baseVfs : "(default)"));
  }
  char hex[kDatabaseIdBytes * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, keys_.databaseId.data(), keys_.databaseId.size());
  name_ = std::string("outpost-vault-") + hex + "-" + std::to_string(++gInstanceCounter);
  vfs_.iVersion = 2;
  vfs_.szOsFile = static_cast<int>(kRealOffset) + base_->szOsFile;
  vfs_.mxPathname = base_->mxPathname;
  vfs_.zName = name_.c_str();
  vfs_.pAppData = this;
  vfs_.xOpen = vfsOpen;
  vfs_.xDelete = vfsDelete;
  vfs_.xAccess = vfsAccess;
  vfs_.xFullPathname = vfsFullPathname;
  vfs_.xDlOpen = vfsDlOpen;
  vfs_.xDlError = vfsDlError;
  vfs_.xDlSym = vfsDlSym;
  vfs_.xDlClose = vfsDlClose;
  vfs_.xRandomness = vfsRandomness;
  vfs_.xSleep = vfsSleep;
  vfs_.xCurrentTime = vfsCurrentTime;
  vfs_.xGetLastError = vfsGetLastError;
  vfs_.xCurrentTimeInt64 = vfsCurrentTimeInt64;
  const int rc = sqlite3_vfs_register(&vfs_, 0);
  if (rc != SQLITE_OK) {
    throw Error(Errc::internal, "cannot register the vault VFS");
  }
}

EncryptingVfs::~EncryptingVfs() {
  sqlite3_vfs_unregister(&vfs_);
  aead::forgetMessages(); // the page keys go with this object
  sodium_memzero(lastWalPage_.plain.data(), lastWalPage_.plain.size());
}

} // namespace outpost::vault
