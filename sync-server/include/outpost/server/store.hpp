#pragma once
/// \file
/// The server's storage, behind one interface (DESIGN.md §8): teams and workers, the
/// devices and enrollment codes of the protocol, records with their owner team, the
/// write log ordered by server sequence numbers, and the merge state of every record.
///
/// `SqliteServerStore` (sqlite_store.hpp) is the embedded default. A PostgreSQL store
/// would implement the same interface; the protocol's DeviceRegistry and
/// EnrollmentRegistry are SQLite classes today, so that store would also need them
/// behind an interface.
///
/// A store object is one connection: not thread-safe. The server opens one per
/// connection; several stores on the same data folder may be used from several
/// threads at once (the database serialises writers).

#include <outpost/protocol/convert.hpp>
#include <outpost/protocol/enrollment.hpp>
#include <outpost/protocol/messages.hpp>
#include <outpost/server/audit.hpp>
#include <outpost/sync/change.hpp>
#include <outpost/sync/merge.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::server {

/// A field worker: their id and the teams whose records they may pull and push, in
/// the order they were given (the first team owns the records they create).
struct Worker {
  std::string id;
  std::vector<std::string> teams;
  bool operator==(const Worker&) const = default;
};

/// A device as `outpostctl devices` lists it.
struct DeviceInfo {
  protocol::DeviceRecord record;
  std::int64_t enrolledMs = 0;
};

/// Who is pushing: the admitted device and its worker (from the device record, never
/// from what the device claims).
struct PushContext {
  protocol::DeviceRecord device;
  Worker worker;
  /// Server wall-clock time, milliseconds since the Unix epoch.
  std::int64_t nowMs = 0;
  /// Changes stamped further than this ahead of `nowMs` are rejected (clock_skew).
  std::chrono::milliseconds maxSkew = std::chrono::minutes(2);
  /// The batch's id, as the device sent it (recorded in the audit entry).
  protocol::Uuid batchId{};
};

/// How the server merges one field of one record type (fields without one: lww).
struct FieldPolicy {
  std::string recordType;
  std::string field;
  sync::MergePolicy policy = sync::MergePolicy::lww;
  bool operator==(const FieldPolicy&) const = default;
};

/// One batch of a group commit (ServerStore::pushGroup).
struct PushRequest {
  const PushContext& context;
  const std::vector<protocol::Change>& changes;
};

/// What a push did, change by change (same order as the batch).
struct PushResult {
  std::vector<protocol::ChangeResult> results;
  std::size_t applied = 0;    ///< stored, no conflict
  std::size_t duplicates = 0; ///< seen before
  std::size_t conflicts = 0;  ///< stored, and the field now holds competing values
  std::size_t rejected = 0;   ///< not stored (reason in the result)
};

/// What a device is told at Hello, and the teams that was computed against.
struct DeviceScope {
  std::vector<protocol::Command> commands;
  std::vector<std::string> teams;
  /// True when `teams` is already the device's recorded scope (acknowledgeScope
  /// would write nothing).
  bool recorded = false;
};

/// A record as the central team sees it.
struct RecordView {
  sync::Uuid recordId;
  std::string recordType;
  std::string ownerTeam;
  std::int64_t updatedSeq = 0;
  sync::RecordState state;
  /// Fields in conflict, and versions a deletion did not see (field name "" for the
  /// record itself is never listed here).
  std::vector<std::string> conflictFields;
  bool deleted = false;
};

/// A template version published to the devices (`outpostctl template publish`).
struct PublishedTemplate {
  std::string id;
  std::int64_t version = 0;
  std::int64_t publishedMs = 0;
  std::string contentHash;
};

/// One line of `outpostctl conflicts list`.
struct ConflictSummary {
  sync::Uuid recordId;
  std::string recordType;
  std::string ownerTeam;
  std::vector<std::string> fields;
};

class ServerStore {
public:
  virtual ~ServerStore() = default;

  // --- administration (outpostctl) ---------------------------------------------
  //
  // Every administrative change is written with its audit entry in one transaction
  // (enrollment codes: just after, see issueEnrollmentCode).

  /// Who the administrative actions of this connection are audited as (default
  /// "server"; outpostctl sets administratorName()).
  virtual void setActor(std::string actor) = 0;

  /// Throws Error{invalid_argument} for an empty or over-long name,
  /// Error{already_exists} when the team exists.
  virtual void addTeam(std::string_view name) = 0;
  [[nodiscard]] virtual std::vector<std::string> teams() = 0;
  /// Adds a worker in `teams` (at least one). Throws Error{not_found} naming an
  /// unknown team, Error{already_exists} for a known worker id,
  /// Error{invalid_argument} for an empty id or no team. Changes nothing on error.
  virtual void addWorker(std::string_view id, const std::vector<std::string>& teams) = 0;
  /// Replaces a worker's teams (the first owns the records they create from now on).
  /// Records of teams the worker leaves are purged from their devices at the next
  /// sync (pendingCommands). Throws Error{not_found} for an unknown worker or team,
  /// Error{invalid_argument} for no team. Changes nothing on error.
  virtual void setWorkerTeams(std::string_view id, const std::vector<std::string>& teams) = 0;
  [[nodiscard]] virtual std::optional<Worker> findWorker(std::string_view id) = 0;
  [[nodiscard]] virtual std::vector<Worker> workers() = 0;
  [[nodiscard]] virtual std::vector<DeviceInfo> devices() = 0;

  /// Server settings (e.g. the advertised address). nullopt when unset.
  [[nodiscard]] virtual std::optional<std::string> setting(std::string_view key) = 0;
  virtual void setSetting(std::string_view key, std::string_view value) = 0;

  /// The protocol's registries, stored in the same database. Changes made through
  /// them directly are not audited: administration uses the methods below.
  [[nodiscard]] virtual protocol::DeviceRegistry& deviceRegistry() = 0;
  [[nodiscard]] virtual protocol::EnrollmentRegistry& enrollmentRegistry() = 0;

  /// Issues a one-time enrollment code for a worker, in their first team, and
  /// audits it (the registry commits the code in its own transaction; the audit entry
  /// follows in the next). Throws Error{not_found} for an unknown worker.
  [[nodiscard]] virtual protocol::IssuedCode
  issueEnrollmentCode(std::string_view workerId, std::chrono::seconds ttl,
                      protocol::Clock::time_point now) = 0;
  /// Revokes a device and audits it, in one transaction. False when unknown.
  virtual bool revokeDevice(const protocol::Uuid& deviceId) = 0;

  // --- audit (outpost/server/audit.hpp) ------------------------------------------

  /// Appends an entry for an action the store does not perform itself (init, a
  /// device's enrollment, an export, a record viewed), in its own transaction.
  /// `detailJson` must not contain record contents or secrets.
  virtual void recordAudit(AuditKind kind, std::string_view actor, const protocol::Uuid& device,
                           std::string_view detailJson) = 0;
  /// Entries after `afterSeq`, oldest first, at most `limit`.
  [[nodiscard]] virtual std::vector<AuditEntry> auditEntries(std::int64_t afterSeq,
                                                             std::size_t limit) = 0;
  /// The newest entries, at most `count`, oldest first.
  [[nodiscard]] virtual std::vector<AuditEntry> lastAuditEntries(std::size_t count) = 0;
  /// Recomputes the chain, checks every signature, and matches every entry with
  /// the change rows it stored (one read transaction).
  [[nodiscard]] virtual AuditVerification verifyAudit() = 0;

  // --- merge policies -------------------------------------------------------------

  /// Makes the given fields merge with the given policies (lww: the row is removed).
  /// A field whose policy changes has its stored merge state rebuilt from the change
  /// log, so it is what merging every change with the new policy gives. Returns the
  /// number of fields whose policy changed. One transaction.
  virtual std::size_t setFieldPolicies(const std::vector<FieldPolicy>& policies) = 0;
  [[nodiscard]] virtual std::vector<FieldPolicy> fieldPolicies() = 0;

  // --- templates -----------------------------------------------------------------

  /// Publishes an assessment template (a complete JSON document with status
  /// "published" and its content hash) to every device, and audits it. Throws
  /// Error{invalid_template} listing every problem, or Error{already_exists} when that
  /// id and version hold other content (a published version never changes).
  /// Publishing the same document again changes nothing and returns false.
  virtual bool publishTemplate(std::string_view document) = 0;
  [[nodiscard]] virtual std::vector<PublishedTemplate> publishedTemplates() = 0;

  // --- sync --------------------------------------------------------------------

  /// Applies a pushed batch in ONE transaction, one write at a time (a run of
  /// consecutive changes with the same record, type, HLC and device): a write stored
  /// before is a duplicate as a whole; then device, scope, record type and clock skew
  /// (each refuses the whole write); then sync::merge per field into the record's
  /// state. The write's stored changes become one row with one sequence number. The
  /// batch's audit entry is appended and the transaction committed. A change id may
  /// be all-zero ("derived-ids"): the results carry each id as it was sent, as the
  /// device's acknowledgement does, and the audit entry the derived one. Returns only
  /// after the commit. Throws (and applies nothing) on I/O failure.
  [[nodiscard]] virtual PushResult push(const PushContext& context,
                                        const std::vector<protocol::Change>& changes) = 0;
  /// Applies several batches, in order, each exactly as push() would (its own audit
  /// entry included), in ONE transaction with one commit (group commit: one sync to
  /// disk for all). Throws (and applies none of them) on I/O failure.
  [[nodiscard]] virtual std::vector<PushResult> pushGroup(std::span<const PushRequest> batches) = 0;

  /// The changes of writes with a sequence number above `cursor` whose record is in
  /// one of the worker's teams, in sequence order, leaving out those `requester`
  /// pushed itself (it has them): whole writes only, at most `limit` changes unless
  /// the first write alone has more. `nextCursor` may pass writes the worker may not
  /// see; `more` says whether to ask again now. With `elideDerivedIds`, derived change
  /// ids come back all-zero (the "derived-ids" form; protocol::effectiveChangeId).
  [[nodiscard]] virtual protocol::PullReply pull(const Worker& worker,
                                                 const protocol::Uuid& requester,
                                                 std::uint64_t cursor, std::uint32_t limit,
                                                 bool elideDerivedIds = false) = 0;

  /// Commands for a device at Hello: PurgeRecords for the records of teams its worker
  /// belonged to at the device's last session but no longer does (none on the
  /// device's first session), and the worker's teams they were computed against; and a
  /// TemplateUpdate with the published templates missing from `deviceTemplates` (the
  /// "id@version" list of its Hello), up to 8 MiB of documents per session (the rest
  /// follow at the next). Reads only; see acknowledgeScope().
  [[nodiscard]] virtual DeviceScope
  pendingCommands(const protocol::DeviceRecord& device,
                  const std::vector<std::string>& deviceTemplates = {}) = 0;
  /// Records `teams` (from pendingCommands()) as the device's scope, once the
  /// HelloReply carrying the commands was sent (best effort: not re-sent after).
  virtual void acknowledgeScope(const protocol::DeviceRecord& device,
                                const std::vector<std::string>& teams) = 0;

  /// The highest sequence number assigned so far (0 when none).
  [[nodiscard]] virtual std::uint64_t lastSequence() = 0;

  /// Called on the pushing connection when no push has come for a while. A store
  /// with a write-ahead log gives its disk space back once all of it is in the
  /// database (never waiting for a reader: then it tries at the next call). Done by
  /// the connection that writes, whose page cache stays valid; done by another, the
  /// next push would read every page it touches again. True when nothing is left to
  /// give back.
  virtual bool idle() { return true; }

  // --- reading (outpostctl conflicts/export) -------------------------------------

  [[nodiscard]] virtual std::vector<ConflictSummary> conflicts() = 0;
  [[nodiscard]] virtual std::optional<RecordView> record(const sync::Uuid& recordId) = 0;
  [[nodiscard]] virtual std::int64_t recordCount() = 0;
  /// Calls `visit` for every record in record-id order.
  virtual void forEachRecord(const std::function<void(const RecordView&)>& visit) = 0;
};

// The field-state codec, shared with the devices.
using sync::decodeFieldState;
using sync::encodeFieldState;

} // namespace outpost::server
