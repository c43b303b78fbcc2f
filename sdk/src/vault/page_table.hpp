#pragma once
/// \file
/// The page table of a vault's database file: the tag of every page as the vault
/// last wrote it, so that a page put back in an older version (which authenticates:
/// it was sealed for that position) is told from the current one. Kept in memory
/// while the database is open and written, whole and authenticated, to one of two
/// slot files beside it (`<db>-pages0`, `<db>-pages1`) after each sync of the
/// database file. docs/security-model.md explains why that order survives crashes.
///
/// The table also names the WAL generations (the salts of a WAL header) that may
/// accompany it: a WAL whose frames carry other salts was not written on top of
/// this database file, e.g. an older file and table put back under a newer WAL.
///
/// Slot layout: magic 8 | sequence 8 | page count 4 | tag 16 x count |
/// generation count 1 | salts 8 x that | BLAKE2b-256 (keyed with the page-table
/// subkey) of the database id and all before.

#include "page_cipher.hpp"

#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace outpost::vault {

using PageTag = std::array<unsigned char, kTagBytes>;
/// Bytes of a slot's MAC (BLAKE2b-256).
inline constexpr std::size_t kSlotMacBytes = 32;
/// The slot files' names: the database file's name and these.
inline constexpr const char* kSlotSuffixes[] = {"-pages0", "-pages1"};
/// The two salts of a WAL header (bytes 16-23), which every frame repeats.
using WalSalts = std::array<unsigned char, 8>;

class PageTable {
public:
  PageTable() = default;
  PageTable(const PageTable&) = delete; // the slot files' VFS keeps pointers into it
  PageTable& operator=(const PageTable&) = delete;

  /// Opens (creating if needed) the two slot files of database `dbPath` on `base`
  /// and loads the newest slot that authenticates. `databaseBytes`: the database
  /// file's size. A database with pages but no valid slot leaves the table broken
  /// (every page then fails to verify); a new, empty database starts an empty table
  /// and writes it at once, so that a valid slot exists before any page does.
  /// Returns an SQLite error code for I/O failures.
  int open(sqlite3_vfs* base, const std::string& dbPath, const DatabaseId& id,
           std::span<const unsigned char> macKey, std::int64_t databaseBytes);
  /// Closes the slot files. Changes since the last `persist` are not written: only
  /// a synced database file may be vouched for, and the pages written since its
  /// last sync are still in the WAL.
  void close() noexcept;

  /// Whether page `pgno` (1-based) was last written with `tag`.
  [[nodiscard]] bool matches(std::uint64_t pgno, const unsigned char* tag) const noexcept;
  /// Page `pgno` was written with `tag`.
  void record(std::uint64_t pgno, const unsigned char* tag);
  /// The database file now holds `pages` pages.
  void truncate(std::uint64_t pages);
  /// Writes the table to the older slot and syncs it, if it changed since the last
  /// write. Call after the database file is synced.
  int persist();

  /// A new WAL generation with `salts` is about to start: the table names it (and
  /// the one before, in case the new header never reaches the disk) and is written
  /// before the header is.
  int admitWalGeneration(const WalSalts& salts);
  /// Whether a WAL with frames of this generation may accompany the table.
  [[nodiscard]] bool admits(const WalSalts& salts) const noexcept;
  /// Whether it is the newest generation named. Frames of the one before are all
  /// in the database file already (SQLite starts a new generation only after a
  /// complete checkpoint), so a WAL of that generation found at open has nothing
  /// to replay, and may be an older WAL put back: its frames are ignored.
  [[nodiscard]] bool isCurrentGeneration(const WalSalts& salts) const noexcept;

  [[nodiscard]] bool broken() const noexcept { return broken_; }
  [[nodiscard]] std::size_t pages() const noexcept { return tags_.size(); }

private:
  struct Slot {
    std::unique_ptr<unsigned char[]> storage;
    sqlite3_file* file = nullptr; // null until opened
  };
  [[nodiscard]] std::string encode(std::uint64_t sequence) const;
  /// The slot MAC: keyed BLAKE2b-256 of the database id and `body`.
  [[nodiscard]] std::array<unsigned char, kSlotMacBytes>
  macOf(std::span<const unsigned char> body) const;
  bool decode(const std::string& bytes, std::uint64_t& sequence, std::vector<PageTag>& tags,
              std::vector<WalSalts>& generations) const;
  int readSlot(Slot& slot, std::string& out);

  sqlite3_int64 maxSlotBytes_ = 0;

  DatabaseId id_{};
  std::span<const unsigned char> macKey_;
  std::array<Slot, 2> slots_;
  std::array<std::string, 2> paths_; // the VFS keeps pointers to them while open
  std::vector<PageTag> tags_;
  std::vector<WalSalts> generations_; // at most two, the newest last
  std::uint64_t sequence_ = 0;
  bool dirty_ = false;
  bool broken_ = false;
};

} // namespace outpost::vault
