#pragma once
/// \file
/// Thin RAII over SQLite's C API, shared by every store in Outpost (the vault, the
/// record model, the server store, the benchmarks). It adds ownership and error
/// conversion, nothing else: SQL stays visible at the call site.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace outpost::sql {

/// Throws `outpost::Error` for a failed SQLite call, mapping SQLite's result code to
/// Outpost's (SQLITE_FULL -> disk_full, SQLITE_CORRUPT/NOTADB -> corrupt,
/// SQLITE_IOERR -> io, SQLITE_BUSY -> busy, otherwise internal).
[[noreturn]] void fail(int rc, sqlite3* db, std::string_view what);

class Database;

/// A prepared statement. Owned; finalised on destruction. Not thread-safe.
class Statement {
public:
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  /// Parameters are 1-based, as in SQLite. Text and blobs are copied (SQLITE_TRANSIENT)
  /// unless `bindStatic` is used, which requires the data to outlive the step.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view text);
  Statement& bindStatic(int index, std::string_view text);
  Statement& bindBlob(int index, std::span<const unsigned char> blob);
  Statement& bindNull(int index);

  /// Steps once: true when a row is available, false when done. Throws on error.
  [[nodiscard]] bool step();
  /// Steps a statement that returns no rows.
  void run();
  /// Resets for another execution and clears the bindings.
  void reset() noexcept;

  [[nodiscard]] std::int64_t columnInt(int index) const noexcept;
  [[nodiscard]] double columnDouble(int index) const noexcept;
  /// Valid until the next step/reset.
  [[nodiscard]] std::string_view columnText(int index) const noexcept;
  [[nodiscard]] std::span<const unsigned char> columnBlob(int index) const noexcept;
  [[nodiscard]] bool columnIsNull(int index) const noexcept;

  [[nodiscard]] sqlite3_stmt* handle() const noexcept { return stmt_; }

private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

/// A connection. Owned; closed on destruction. Not thread-safe.
class Database {
public:
  /// Opens `path` with `flags` (SQLITE_OPEN_*) through the VFS named `vfs`
  /// (nullptr: the default VFS).
  Database(const std::string& path, int flags, const char* vfs = nullptr);
  ~Database();
  Database(Database&& other) noexcept;
  Database& operator=(Database&&) = delete;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  /// Runs one or more statements that return no rows.
  void exec(std::string_view sql);
  /// Runs a query expected to return a single integer (e.g. a PRAGMA).
  [[nodiscard]] std::int64_t queryInt(std::string_view sql);
  /// Runs a query expected to return a single text value.
  [[nodiscard]] std::string queryText(std::string_view sql);

  /// Closes now if no statement is still prepared on the connection (statements of
  /// SQLite's own virtual tables are finalised first) and returns true; otherwise
  /// leaves it open and returns false. The destructor closes regardless (SQLite then
  /// closes when the last statement is finalised).
  [[nodiscard]] bool tryClose() noexcept;

  [[nodiscard]] std::int64_t lastInsertRowid() const noexcept;
  [[nodiscard]] int changes() const noexcept;
  [[nodiscard]] sqlite3* handle() const noexcept { return db_; }

private:
  sqlite3* db_ = nullptr;
};

/// A transaction: BEGIN (IMMEDIATE by default) on construction, ROLLBACK on
/// destruction unless `commit()` was called.
class Transaction {
public:
  explicit Transaction(Database& db, bool immediate = true);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

private:
  Database& db_;
  bool open_ = true;
};

} // namespace outpost::sql
