#pragma once
/// \file
/// The embedded server store: one SQLite database, DIR/server.db, in WAL mode.

#include <outpost/server/keys.hpp>
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

  /// Opens (`create`: creates if missing) the store in `dataDir`. The server keys
  /// (copied) key the enrollment code hashes and sign the audit chain. Opening a
  /// store made before the audit chain existed adds the chain, with one `baseline`
  /// entry covering the changes already stored. Throws Error{not_found} when the
  /// store does not exist and `create` is false.
  SqliteServerStore(const Context& context, const std::filesystem::path& dataDir,
                    const ServerKeys& keys, bool create = false);
  ~SqliteServerStore() override;

  /// Whether a commit on this connection that takes the WAL past 1000 pages also
  /// copies the WAL into the database file before returning (SQLite's default, on).
  /// outpost-server turns it off on its connections and checkpoints from a thread of
  /// its own.
  void setAutoCheckpoint(bool on);
  /// Truncates the WAL once every page in it is in the database file.
  bool idle() override;

  void setActor(std::string actor) override;
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
  protocol::IssuedCode issueEnrollmentCode(std::string_view workerId, std::chrono::seconds ttl,
                                           protocol::Clock::time_point now) override;
  bool revokeDevice(const protocol::Uuid& deviceId) override;

  void recordAudit(AuditKind kind, std::string_view actor, const protocol::Uuid& device,
                   std::string_view detailJson) override;
  std::vector<AuditEntry> auditEntries(std::int64_t afterSeq, std::size_t limit) override;
  std::vector<AuditEntry> lastAuditEntries(std::size_t count) override;
  AuditVerification verifyAudit() override;

  std::size_t setFieldPolicies(const std::vector<FieldPolicy>& policies) override;
  std::vector<FieldPolicy> fieldPolicies() override;

  PushResult push(const PushContext& context,
                  const std::vector<protocol::Change>& changes) override;
  std::vector<PushResult> pushGroup(std::span<const PushRequest> batches) override;
  protocol::PullReply pull(const Worker& worker, const protocol::Uuid& requester,
                           std::uint64_t cursor, std::uint32_t limit,
                           bool elideDerivedIds = false) override;
  DeviceScope pendingCommands(const protocol::DeviceRecord& device,
                              const std::vector<std::string>& deviceTemplates = {}) override;
  bool publishTemplate(std::string_view document) override;
  std::vector<PublishedTemplate> publishedTemplates() override;
  void acknowledgeScope(const protocol::DeviceRecord& device,
                        const std::vector<std::string>& teams) override;
  std::uint64_t lastSequence() override;

  std::vector<ConflictSummary> conflicts() override;
  std::optional<RecordView> record(const sync::Uuid& recordId) override;
  std::int64_t recordCount() override;
  void forEachRecord(const std::function<void(const RecordView&)>& visit) override;

private:
  /// One batch inside the caller's transaction.
  PushResult applyBatch(const PushContext& context, const std::vector<protocol::Change>& changes);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace outpost::server
