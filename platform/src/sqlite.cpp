#include "outpost/sqlite.hpp"

#include "outpost/error.hpp"

#include <limits>
#include <utility>

namespace outpost::sql {

namespace {
Errc mapCode(int rc) {
  if (rc == SQLITE_IOERR_DATA) {
    // Only a checksumming or encrypting VFS reports this: the bytes read back did
    // not authenticate.
    return Errc::tampered;
  }
  switch (rc & 0xff) {
  case SQLITE_FULL:
    return Errc::disk_full;
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    return Errc::corrupt;
  case SQLITE_IOERR:
  case SQLITE_CANTOPEN:
  case SQLITE_READONLY:
    return Errc::io;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return Errc::busy;
  case SQLITE_AUTH:
    return Errc::locked;
  case SQLITE_CONSTRAINT:
  case SQLITE_MISMATCH:
  case SQLITE_RANGE:
  case SQLITE_TOOBIG:
    return Errc::invalid_argument;
  default:
    return Errc::internal;
  }
}

int checkedSize(std::size_t n) {
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw Error(Errc::invalid_argument, "value too large for SQLite");
  }
  return static_cast<int>(n);
}
} // namespace

void fail(int rc, sqlite3* db, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += (db != nullptr) ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  msg += " (SQLite code " + std::to_string(rc) + ")";
  throw Error(mapCode(rc), msg);
}

// --- Statement ---------------------------------------------------------------

Statement::Statement(Database& db, std::string_view sql) : db_(db.handle()) {
  const int rc = sqlite3_prepare_v3(db_, sql.data(), checkedSize(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK) {
    fail(rc, db_, "prepare");
  }
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) {
    fail(rc, db_, "bind");
  }
  return *this;
}

Statement& Statement::bind(int index, double value) {
  const int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK) {
    fail(rc, db_, "bind");
  }
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  const int rc =
      sqlite3_bind_text(stmt_, index, text.data(), checkedSize(text.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) {
    fail(rc, db_, "bind");
  }
  return *this;
}

Statement& Statement::bindStatic(int index, std::string_view text) {
  const int rc =
      sqlite3_bind_text(stmt_, index, text.data(), checkedSize(text.size()), SQLITE_STATIC);
  if (rc != SQLITE_OK) {
    fail(rc, db_, "bind");
  }
  return *this;
}

Statement& Statement::bindBlob(int index, std::span<const unsigned char> blob) {
  // A zero-length blob must still be a blob, not NULL: SQLite needs a non-null pointer.
  static const unsigned char kEmpty = 0;
  const int rc = sqlite3_bind_blob(stmt_, index, blob.empty() ? &kEmpty : blob.data(),
                                   checkedSize(blob.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) {
    fail(rc, db_, "bind");
  }
  return *this;
}

Statement& Statement::bindNull(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) {
    fail(rc, db_, "bind");
  }
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  fail(rc, db_, "step");
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() noexcept {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::columnInt(int index) const noexcept {
  return sqlite3_column_int64(stmt_, index);
}

double Statement::columnDouble(int index) const noexcept {
  return sqlite3_column_double(stmt_, index);
}

std::string_view Statement::columnText(int index) const noexcept {
  const auto* p = sqlite3_column_text(stmt_, index);
  const int n = sqlite3_column_bytes(stmt_, index);
  if (p == nullptr) {
    return {};
  }
  return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
}

std::span<const unsigned char> Statement::columnBlob(int index) const noexcept {
  const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt_, index));
  const int n = sqlite3_column_bytes(stmt_, index);
  if (p == nullptr) {
    return {};
  }
  return {p, static_cast<std::size_t>(n)};
}

bool Statement::columnIsNull(int index) const noexcept {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

// --- Database ----------------------------------------------------------------

Database::Database(const std::string& path, int flags, const char* vfs) {
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_EXRESCODE, vfs);
  if (rc != SQLITE_OK) {
    std::string what = "open database";
    if (db_ == nullptr) {
      fail(rc, nullptr, what);
    }
    const Errc code = mapCode(rc);
    std::string msg = what + ": " + sqlite3_errmsg(db_);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw Error(code, msg);
  }
  sqlite3_extended_result_codes(db_, 1);
}

Database::~Database() {
  if (db_ != nullptr) {
    sqlite3_close_v2(db_);
  }
}

Database::Database(Database&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

void Database::exec(std::string_view sql) {
  const std::string owned(sql);
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, owned.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    sqlite3_free(err);
    fail(rc, db_, "exec");
  }
}

std::int64_t Database::queryInt(std::string_view sql) {
  Statement st(*this, sql);
  if (!st.step()) {
    throw Error(Errc::internal, "query returned no row");
  }
  return st.columnInt(0);
}

std::string Database::queryText(std::string_view sql) {
  Statement st(*this, sql);
  if (!st.step()) {
    throw Error(Errc::internal, "query returned no row");
  }
  return std::string(st.columnText(0));
}

bool Database::tryClose() noexcept {
  if (db_ == nullptr) {
    return true;
  }
  if (sqlite3_close(db_) != SQLITE_OK) {
    return false;
  }
  db_ = nullptr;
  return true;
}

std::int64_t Database::lastInsertRowid() const noexcept { return sqlite3_last_insert_rowid(db_); }

int Database::changes() const noexcept { return sqlite3_changes(db_); }

// --- Transaction -------------------------------------------------------------

Transaction::Transaction(Database& db, bool immediate) : db_(db) {
  db_.exec(immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

Transaction::~Transaction() {
  if (open_) {
    // Best effort: a failed rollback leaves SQLite to roll back at close.
    sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

void Transaction::commit() {
  db_.exec("COMMIT");
  open_ = false;
}

} // namespace outpost::sql
