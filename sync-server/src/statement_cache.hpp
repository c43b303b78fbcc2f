#pragma once
// Prepared statements kept for the life of one store connection: the server runs the
// same few statements for every request, and preparing them cost more than running
// them (a quarter of a push's time under load).

#include <outpost/sqlite.hpp>

#include <map>
#include <string>
#include <string_view>

namespace outpost::server {

class StatementCache {
public:
  explicit StatementCache(sql::Database& db) : db_(db) {}
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  /// A cached statement in use; reset (and its bindings cleared) when this ends, so
  /// that no statement keeps a read snapshot open between uses. One use of a given
  /// SQL text at a time.
  class Use {
  public:
    explicit Use(sql::Statement& statement) noexcept : statement_(statement) {}
    ~Use() { statement_.reset(); }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    sql::Statement* operator->() const noexcept { return &statement_; }
    sql::Statement& operator*() const noexcept { return statement_; }

  private:
    sql::Statement& statement_;
  };

  [[nodiscard]] Use use(std::string_view sql) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      it = statements_.emplace(std::string(sql), sql::Statement(db_, sql)).first;
    }
    it->second.reset();
    return Use(it->second);
  }

private:
  sql::Database& db_;
  std::map<std::string, sql::Statement, std::less<>> statements_;
};

} // namespace outpost::server
