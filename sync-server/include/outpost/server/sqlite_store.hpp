#pragma once
/// \file
/// The embedded server store: one SQLite database, DIR/server.db, in WAL mode.

#include <outpost/server/store.hpp>
#include <outpost/sqlite.hpp>

#include <filesystem>
#include <memory>

namespace outpost {
class Context;
}

namespace outpost::server {

class SqliteServerStore final : public ServerStore {
public:
  /// The database file inside a data folder.
  [[nodiscard]] static std::filesystem::path databasePath(const std::filesystem::path& dataDir);

  /// Opens (`create`: creates if missing) the store in `dataDir`. `enrollmentSecret`
  /// (32 bytes, from the server keys) keys the enrollment code hashes. Throws
  /// Error{not_found} when the store does not exist and `create` is false.
  SqliteServerStore(const Context& context, const std::filesystem::path& dataDir,
                    SecretBytes enrollmentSecret, bool create = false);
  ~SqliteServerStore() override;

  void addTeam(std::string_view name) override;
  std::vector<std::string> teams() override;
  void addWorker(std::string_view id, const std::vector<std::string>& teams) override;
  void setWorkerTeams(std::string_view id, const std::vector<std::string>& teams) override;
  std::optional<Worker> findWorker(std::string_view id) override;
  std::vector<Worker> workers() override;
  std::vector<DeviceInfo> devices() override;
  std::optional<std::string> setting(std::string_view key) override;
  void setSetting(std::string_view key, std::string_view value) override;
  protocol::DeviceRegistry& deviceRegistry() override;
  protocol::EnrollmentRegistry& enrollmentRegistry() override;

  PushResult push(const PushContext& context,
                  const std::vector<protocol::Change>& changes) override;
  protocol::PullReply pull(const Worker& worker, const protocol::Uuid& requester,
                           std::uint64_t cursor, std::uint32_t limit) override;
  DeviceScope pendingCommands(const protocol::DeviceRecord& device) override;
  void acknowledgeScope(const protocol::DeviceRecord& device,
                        const std::vector<std::string>& teams) override;
  std::uint64_t lastSequence() override;

  std::vector<ConflictSummary> conflicts() override;
  std::optional<RecordView> record(const sync::Uuid& recordId) override;
  std::int64_t recordCount() override;
  void forEachRecord(const std::function<void(const RecordView&)>& visit) override;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace outpost::server
