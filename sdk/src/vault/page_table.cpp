#include "page_table.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace outpost::vault {

namespace {

constexpr std::array<char, 8> kMagic = {'O', 'P', 'V', 'P', 'G', 'T', 'B', '1'};
constexpr std::size_t kHeaderBytes = 8 + 8 + 4;
constexpr std::size_t kMacBytes = kSlotMacBytes;
static_assert(kMacBytes == crypto_generichash_BYTES);
/// SQLite's unix VFS writes at most 128 KiB - 1 per call: stay well below.
constexpr std::size_t kChunk = 64 * 1024;

void putBig(std::string& out, std::uint64_t v, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

std::uint64_t getBig(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v = (v << 8) | p[i];
  }
  return v;
}

} // namespace

std::string PageTable::encode(std::uint64_t sequence) const {
  std::string out(kMagic.begin(), kMagic.end());
  putBig(out, sequence, 8);
  putBig(out, tags_.size(), 4);
  for (const PageTag& t : tags_) {
    out.append(reinterpret_cast<const char*>(t.data()), t.size());
  }
  out.push_back(static_cast<char>(generations_.size()));
  for (const WalSalts& g : generations_) {
    out.append(reinterpret_cast<const char*>(g.data()), g.size());
  }
  const auto mac = macOf(std::span(reinterpret_cast<const unsigned char*>(out.data()), out.size()));
  out.append(reinterpret_cast<const char*>(mac.data()), mac.size());
  return out;
}

std::array<unsigned char, kSlotMacBytes>
PageTable::macOf(std::span<const unsigned char> body) const {
  std::array<unsigned char, kMacBytes> mac{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, macKey_.data(), macKey_.size(), mac.size());
  crypto_generichash_update(&st, id_.data(), id_.size());
  crypto_generichash_update(&st, body.data(), body.size());
  crypto_generichash_final(&st, mac.data(), mac.size());
  sodium_memzero(&st, sizeof st);
  return mac;
}

bool PageTable::decode(const std::string& bytes, std::uint64_t& sequence,
                       std::vector<PageTag>& tags, std::vector<WalSalts>& generations) const {
  if (bytes.size() < kHeaderBytes + 1 + kMacBytes ||
      std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0) {
    return false;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::uint64_t count = getBig(p + 16, 4);
  if (count > (bytes.size() - kHeaderBytes - 1 - kMacBytes) / kTagBytes) {
    return false;
  }
  const std::size_t afterTags = kHeaderBytes + static_cast<std::size_t>(count) * kTagBytes;
  const std::size_t generationCount = p[afterTags];
  const std::size_t body = afterTags + 1 + generationCount * sizeof(WalSalts);
  if (generationCount > 2 || bytes.size() < body + kMacBytes) {
    return false;
  }
  const auto mac = macOf(std::span(p, body));
  if (sodium_memcmp(mac.data(), p + body, mac.size()) != 0) {
    return false;
  }
  sequence = getBig(p + 8, 8);
  tags.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::memcpy(tags[i].data(), p + kHeaderBytes + i * kTagBytes, kTagBytes);
  }
  generations.resize(generationCount);
  for (std::size_t i = 0; i < generationCount; ++i) {
    std::memcpy(generations[i].data(), p + afterTags + 1 + i * sizeof(WalSalts), sizeof(WalSalts));
  }
  return true;
}

int PageTable::readSlot(Slot& slot, std::string& out) {
  sqlite3_int64 size = 0;
  int rc = slot.file->pMethods->xFileSize(slot.file, &size);
  if (rc != SQLITE_OK) {
    return rc;
  }
  if (size > maxSlotBytes_) {
    out.clear(); // larger than any table of this database: not read, not valid
    return SQLITE_OK;
  }
  out.assign(static_cast<std::size_t>(size), '\0');
  for (std::size_t at = 0; at < out.size(); at += kChunk) {
    const std::size_t n = std::min(kChunk, out.size() - at);
    rc = slot.file->pMethods->xRead(slot.file, out.data() + at, static_cast<int>(n),
                                    static_cast<sqlite3_int64>(at));
    if (rc == SQLITE_IOERR_SHORT_READ) {
      out.resize(at); // shorter than it said: what there is
      return SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
      return rc;
    }
  }
  return SQLITE_OK;
}

int PageTable::open(sqlite3_vfs* base, const std::string& dbPath, const DatabaseId& id,
                    std::span<const unsigned char> macKey, std::int64_t databaseBytes) {
  id_ = id;
  macKey_ = macKey;
  // A table names at most the database's pages (and some the file lost to a crash
  // before the table caught up); anything far larger is not one.
  maxSlotBytes_ = static_cast<sqlite3_int64>(kHeaderBytes + 1 + 2 * sizeof(WalSalts) + kMacBytes) +
                  (databaseBytes / static_cast<std::int64_t>(kPageSize) + 65536) *
                      static_cast<sqlite3_int64>(kTagBytes);
  std::uint64_t best = 0;
  bool found = false;
  for (std::size_t k = 0; k < slots_.size(); ++k) {
    Slot& slot = slots_[k];
    paths_[k] = dbPath + kSlotSuffixes[k];
    slot.storage = std::make_unique<unsigned char[]>(static_cast<std::size_t>(base->szOsFile));
    auto* file = reinterpret_cast<sqlite3_file*>(slot.storage.get());
    file->pMethods = nullptr;
    int outFlags = 0;
    int rc = base->xOpen(base, paths_[k].c_str(), file,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_JOURNAL,
                         &outFlags);
    if (rc != SQLITE_OK) {
      if (file->pMethods != nullptr) {
        file->pMethods->xClose(file);
      }
      return rc;
    }
    slot.file = file;
    std::string bytes;
    rc = readSlot(slot, bytes);
    if (rc != SQLITE_OK) {
      return rc;
    }
    std::uint64_t sequence = 0;
    std::vector<PageTag> tags;
    std::vector<WalSalts> generations;
    if (decode(bytes, sequence, tags, generations) && (!found || sequence > best)) {
      best = sequence;
      found = true;
      tags_ = std::move(tags);
      generations_ = std::move(generations);
    }
  }
  if (found) {
    sequence_ = best;
    return SQLITE_OK;
  }
  if (databaseBytes > 0) {
    broken_ = true; // pages without a table that vouches for them
    return SQLITE_OK;
  }
  dirty_ = true;
  return persist();
}

void PageTable::close() noexcept {
  // Not written here: the table is written only after the database file's sync,
  // and pages written since the last one are still in the WAL.
  for (Slot& slot : slots_) {
    if (slot.file != nullptr) {
      slot.file->pMethods->xClose(slot.file);
      slot.file = nullptr;
    }
  }
}

bool PageTable::matches(std::uint64_t pgno, const unsigned char* tag) const noexcept {
  if (broken_ || pgno == 0 || pgno > tags_.size()) {
    return false;
  }
  return sodium_memcmp(tags_[pgno - 1].data(), tag, kTagBytes) == 0;
}

void PageTable::record(std::uint64_t pgno, const unsigned char* tag) {
  if (pgno > tags_.size()) {
    tags_.resize(pgno);
  }
  std::memcpy(tags_[pgno - 1].data(), tag, kTagBytes);
  dirty_ = true;
}

void PageTable::truncate(std::uint64_t pages) {
  if (pages < tags_.size()) {
    tags_.resize(pages);
    dirty_ = true;
  }
}

int PageTable::admitWalGeneration(const WalSalts& salts) {
  if (broken_) {
    return SQLITE_IOERR_DATA;
  }
  if (!generations_.empty() && generations_.back() == salts) {
    // Named already; but if naming it failed to reach the disk (SQLite then writes
    // the same header again), write it now.
    return persist();
  }
  const std::vector<WalSalts> before = generations_;
  if (generations_.size() == 2) {
    generations_.erase(generations_.begin());
  }
  generations_.push_back(salts);
  dirty_ = true;
  const int rc = persist();
  if (rc != SQLITE_OK) {
    generations_ = before; // what the disk still says
  }
  return rc;
}

bool PageTable::admits(const WalSalts& salts) const noexcept {
  return !broken_ &&
         std::find(generations_.begin(), generations_.end(), salts) != generations_.end();
}

bool PageTable::isCurrentGeneration(const WalSalts& salts) const noexcept {
  return !broken_ && !generations_.empty() && generations_.back() == salts;
}

int PageTable::persist() {
  if (!dirty_ || broken_) {
    return SQLITE_OK;
  }
  const std::uint64_t next = sequence_ + 1;
  const std::string bytes = encode(next);
  sqlite3_file* file = slots_[next % slots_.size()].file;
  if (file == nullptr) {
    return SQLITE_IOERR_WRITE;
  }
  for (std::size_t at = 0; at < bytes.size(); at += kChunk) {
    const std::size_t n = std::min(kChunk, bytes.size() - at);
    const int rc = file->pMethods->xWrite(file, bytes.data() + at, static_cast<int>(n),
                                          static_cast<sqlite3_int64>(at));
    if (rc != SQLITE_OK) {
      return rc;
    }
  }
  if (const int rc = file->pMethods->xSync(file, SQLITE_SYNC_NORMAL); rc != SQLITE_OK) {
    return rc;
  }
  sequence_ = next;
  dirty_ = false;
  return SQLITE_OK;
}

} // namespace outpost::vault
