#include "sql_store.hpp"

#include <outpost/error.hpp>
#include <outpost/vault.hpp>

#include <chrono>

namespace outpost::bench {

namespace fs = std::filesystem;

void SqlW1Store::removeFiles() {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    fs::remove(fs::path(databaseFile().string() + suffix));
  }
}

fs::path SqlW1Store::databaseFile() const { return dir_ / "w1.db"; }
fs::path SqlW1Store::walFile() const { return dir_ / "w1.db-wal"; }

void SqlW1Store::create(const fs::path& dir) {
  dir_ = dir;
  fs::create_directories(dir_);
  removeFiles();
  std::optional<double> unused;
  db_ = &connect(true, unused);
  db_->exec("CREATE TABLE records (id TEXT PRIMARY KEY NOT NULL, subject_id TEXT NOT NULL,"
            " risk_level TEXT NOT NULL, updated_at TEXT NOT NULL, payload TEXT NOT NULL);"
            "CREATE INDEX records_subject_idx ON records(subject_id);");
  prepare();
}

void SqlW1Store::prepare() {
  insert_ = std::make_unique<sql::Statement>(
      *db_, "INSERT INTO records(id, subject_id, risk_level, updated_at, payload)"
            " VALUES (?1, ?2, ?3, ?4, ?5)");
  read_ = std::make_unique<sql::Statement>(*db_, "SELECT payload FROM records WHERE id = ?1");
  query_ = std::make_unique<sql::Statement>(
      *db_, "SELECT id FROM records WHERE subject_id = ?1 AND risk_level = 'high'");
}

void SqlW1Store::inTransaction(const std::function<void()>& work) {
  sql::Transaction tx(*db_);
  work();
  tx.commit();
}

void SqlW1Store::insert(std::span<const Record> batch, std::span<const std::string> payloads) {
  inTransaction([&] {
    for (std::size_t k = 0; k < batch.size(); ++k) {
      const Record& r = batch[k];
      const std::string updated = r.updatedAt();
      insert_->bindStatic(1, r.id)
          .bindStatic(2, r.subjectId)
          .bindStatic(3, r.riskLevel)
          .bindStatic(4, updated)
          .bindStatic(5, payloads[k]);
      insert_->run();
      insert_->reset();
    }
  });
}

void SqlW1Store::close() {
  insert_.reset();
  read_.reset();
  query_.reset();
  db_ = nullptr;
  disconnect();
}

OpenTimes SqlW1Store::open() {
  OpenTimes times;
  const auto start = std::chrono::steady_clock::now();
  db_ = &connect(false, times.unlockMs);
  (void)db_->queryInt("SELECT count(*) FROM sqlite_schema");
  times.openMs =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  prepare();
  return times;
}

std::optional<std::string> SqlW1Store::read(std::string_view id) {
  read_->bindStatic(1, id);
  std::optional<std::string> payload;
  if (read_->step()) {
    payload.emplace(read_->columnText(0));
  }
  read_->reset();
  return payload;
}

std::vector<std::string> SqlW1Store::highRiskIds(std::string_view subject) {
  query_->bindStatic(1, subject);
  std::vector<std::string> ids;
  while (query_->step()) {
    ids.emplace_back(query_->columnText(0));
  }
  query_->reset();
  return ids;
}

void SqlW1Store::checkpointAndClose() {
  db_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  close();
}

namespace {
class PlainSqliteStore final : public SqlW1Store {
public:
  explicit PlainSqliteStore(bool vaultSettings) : vaultSettings_(vaultSettings) {}
  [[nodiscard]] bool encrypted() const override { return false; }

protected:
  sql::Database& connect(bool create, std::optional<double>&) override {
    const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    db_ = std::make_unique<sql::Database>(databaseFile().string(), flags);
    db_->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    if (vaultSettings_) {
      const VaultOptions vault;
      db_->exec("PRAGMA cache_size=-" + std::to_string(vault.cacheKiB) +
                "; PRAGMA wal_autocheckpoint=" + std::to_string(vault.walAutoCheckpointPages));
    }
    return *db_;
  }
  void disconnect() override { db_.reset(); }

private:
  bool vaultSettings_;
  std::unique_ptr<sql::Database> db_;
};
} // namespace

std::unique_ptr<W1Store> makePlainSqliteStore(bool vaultSettings) {
  return std::make_unique<PlainSqliteStore>(vaultSettings);
}

} // namespace outpost::bench
