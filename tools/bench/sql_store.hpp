#pragma once
/// \file
/// The W1 schema of WORKLOADS.md on an SQLite connection. Runners that differ only
/// in how the connection is opened (plain SQLite, the encrypted vault) derive from
/// `SqlW1Store` and implement `connect()`.

#include "w1.hpp"

#include <outpost/sqlite.hpp>

#include <functional>
#include <memory>
#include <optional>

namespace outpost::bench {

class SqlW1Store : public W1Store {
public:
  void create(const std::filesystem::path& dir) override;
  void insert(std::span<const Record> batch, std::span<const std::string> payloads) override;
  void close() override;
  OpenTimes open() override;
  [[nodiscard]] std::optional<std::string> read(std::string_view id) override;
  [[nodiscard]] std::vector<std::string> highRiskIds(std::string_view subject) override;
  void checkpointAndClose() override;
  [[nodiscard]] std::filesystem::path databaseFile() const override;
  [[nodiscard]] std::filesystem::path walFile() const override;

protected:
  /// Opens a connection to `databaseFile()` (creating it if `create`), applies the
  /// store's keys and pragmas (journal_mode=WAL, synchronous=NORMAL). Fills
  /// `unlockMs` when key derivation is a separate cost. The store owns the
  /// connection until `disconnect()`.
  virtual sql::Database& connect(bool create, std::optional<double>& unlockMs) = 0;
  virtual void disconnect() = 0;
  /// Runs `work` in one write transaction.
  virtual void inTransaction(const std::function<void()>& work);
  /// Removes every file the store may have left in `dir()`.
  virtual void removeFiles();
  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }
  [[nodiscard]] sql::Database& db() noexcept { return *db_; }

private:
  void prepare();

  std::filesystem::path dir_;
  sql::Database* db_ = nullptr;
  std::unique_ptr<sql::Statement> insert_;
  std::unique_ptr<sql::Statement> read_;
  std::unique_ptr<sql::Statement> query_;
};

/// Plain SQLite, WAL, synchronous=NORMAL: the ceiling (`w1.sqlite`).
/// Plain SQLite. `vaultSettings`: with the vault's page cache and checkpoint
/// interval (VaultOptions defaults) instead of SQLite's, to tell what the vault's
/// settings gain from what its encryption costs.
[[nodiscard]] std::unique_ptr<W1Store> makePlainSqliteStore(bool vaultSettings = false);

} // namespace outpost::bench
