#pragma once
/// \file
/// The record core: entity types with typed fields, records stored in the vault,
/// and the one write path that stores new values, a journal entry per changed
/// field and an audit event in one vault transaction (DESIGN.md §3, §5).
///
/// Thread safety: a `RecordStore` serialises its operations with an internal lock,
/// so the sync client may run on another thread while the app uses the store.

#include <outpost/export.h>
#include <outpost/sync/change.hpp>
#include <outpost/sync/hlc.hpp>
#include <outpost/sync/merge.hpp>
#include <outpost/sync/uuid.hpp>
#include <outpost/sync/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace outpost {
class Context;
class Vault;
namespace platform {
class Clock;
}
} // namespace outpost

namespace outpost::model {

using sync::FieldValues;
using sync::Hlc;
using sync::Uuid;
using sync::Value;

class Journal;
class AuditLog;

enum class FieldType : std::uint8_t {
  text,        ///< std::string
  integer,     ///< std::int64_t
  boolean,     ///< bool
  date,        ///< std::string "YYYY-MM-DD"
  dateTime,    ///< std::int64_t, milliseconds since the Unix epoch (UTC)
  enumeration, ///< std::string, one of `allowed`
  list,        ///< StringList; items checked against `allowed`, `referenceType` or `subFields`
  reference,   ///< std::string, the UUID text of a record of `referenceType`
  structured,  ///< std::string, a JSON object checked against `subFields`
};

/// "text", "integer", ... as used in messages.
[[nodiscard]] OUTPOST_API std::string_view fieldTypeName(FieldType type) noexcept;

/// One field of an entity type.
struct FieldSpec {
  std::string name;
  FieldType type = FieldType::text;
  bool required = false;
  sync::MergePolicy policy = sync::MergePolicy::lww;
  /// enumeration: the allowed values; list: allowed items (empty = any).
  std::vector<std::string> allowed;
  /// reference, or list of references: the type the target record must have.
  std::string referenceType;
  /// structured, or list of structured entries: the fields of the JSON object.
  std::vector<FieldSpec> subFields;
};

/// A problem with one field of a write: `field` is "type.field" or
/// "type.field.subfield".
struct FieldProblem {
  std::string field;
  std::string message;
};

/// What a type rule sees: the record before the write (null when it is being
/// created) and the fields as they would be after it.
struct RuleInput {
  const FieldValues* before = nullptr;
  const FieldValues& after;
  const FieldValues& changed; ///< only the fields whose value changes
};

/// A lifecycle rule of an entity type. Returns the problems found (empty: allowed).
/// Runs inside the write transaction for every write of the type, whichever API
/// makes it, so rules cannot be bypassed.
using TypeRule = std::function<std::vector<FieldProblem>(const RuleInput&)>;

/// An entity type. Every type also has the common fields (`kCommonFields`).
struct EntityType {
  std::string name;
  std::vector<FieldSpec> fields;
  /// Allowed values of the common `status` field; the first is the initial status.
  std::vector<std::string> statuses;
  /// Field whose value is indexed as the risk level (empty: none).
  std::string riskField;
  /// Field that, once set, signs the record: fields with the immutable-after-sign
  /// policy (and this field) can no longer change.
  std::string signedField;
  /// Text fields indexed for full-text search.
  std::vector<std::string> searchFields;
  /// The due time (ms since the epoch) indexed for due-date queries, or nullopt.
  std::function<std::optional<std::int64_t>(const FieldValues&)> dueAt;
  std::vector<TypeRule> rules;
};

/// Fields every record has: status, owner_team (required), local_authority,
/// police_force_area, retention_class (defaults to "standard"), created_by (set by
/// the store).
inline constexpr std::string_view kCommonFields[] = {"status",          "owner_team",
                                                     "local_authority", "police_force_area",
                                                     "retention_class", "created_by"};

/// The entity types a store knows. Built-in safeguarding types are registered by
/// `RecordStore`; apps add their own with `add`.
class OUTPOST_API Schema {
public:
  Schema() = default;
  /// Not copied: its indexes point into itself. Moves keep them.
  Schema(const Schema&) = delete;
  Schema& operator=(const Schema&) = delete;
  Schema(Schema&&) noexcept = default;
  Schema& operator=(Schema&&) noexcept = default;
  ~Schema() = default;

  /// Adds a type. Throws Error{already_exists} for a name taken, Error{invalid_argument}
  /// for a malformed type (duplicate or reserved field names, an enum without values).
  void add(EntityType type);
  /// The type, or nullptr.
  [[nodiscard]] const EntityType* find(std::string_view name) const noexcept;
  /// The field of a type (common fields included), or nullptr.
  [[nodiscard]] const FieldSpec* field(const EntityType& type, std::string_view name) const;
  /// The type's fields (common fields included) in name order: a caller with names in
  /// order finds each by walking this once. Empty for a type not registered.
  [[nodiscard]] std::span<const FieldSpec* const> fieldsByName(const EntityType& type) const;
  [[nodiscard]] std::vector<std::string> typeNames() const;
  /// The names of the type's reference fields (single or list), which are indexed
  /// as links.
  [[nodiscard]] const std::vector<std::string>& referenceFields(const EntityType& type) const;

private:
  /// Field names are looked up on every write and merge, for every field: hashed.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const noexcept {
      return std::hash<std::string_view>{}(name);
    }
  };
  struct TypeIndex {
    std::unordered_map<std::string, FieldSpec, NameHash, std::equal_to<>> fields;
    std::vector<const FieldSpec*> byName; // into `fields`, whose nodes never move
    std::vector<std::string> references;
  };
  // Keyed by the address of the type in `types_` (map nodes never move).
  std::map<std::string, EntityType, std::less<>> types_;
  std::map<const EntityType*, TypeIndex> index_;
  [[nodiscard]] const TypeIndex* indexOf(const EntityType& type) const;
};

/// When and where a field's current value was written.
struct FieldClock {
  Hlc hlc;
  Uuid device;
};

/// Where a record stands with the server.
enum class SyncState : std::uint8_t { pending, synced, conflict, rejected };

/// A stored record. Value type (a copy).
struct Record {
  Uuid id;
  std::string type;
  FieldValues fields;
  Uuid device; ///< where it was created
  std::int64_t createdAtMs = 0;
  std::int64_t updatedAtMs = 0;
  Hlc createdHlc;
  std::map<std::string, FieldClock, std::less<>> changedClocks; ///< fields written after creation
  SyncState syncState = SyncState::pending;

  /// The field's value (Null when absent).
  [[nodiscard]] OUTPOST_API const Value& get(std::string_view field) const noexcept;
  /// The text of a text/enum/date/reference field, or "" when not text.
  [[nodiscard]] OUTPOST_API std::string text(std::string_view field) const;
  /// The integer/date-time of a field, or nullopt.
  [[nodiscard]] OUTPOST_API std::optional<std::int64_t> integer(std::string_view field) const;
  /// The HLC and device of the field's current value.
  [[nodiscard]] OUTPOST_API FieldClock clockOf(std::string_view field) const;
};

/// Audit actions (stable numbers: they are part of the hashed event bytes).
enum class AuditAction : std::uint8_t {
  view = 0,
  create = 1,
  edit = 2,
  sign = 3,
  share = 4,
  exportData = 5,
  receive = 6, ///< changes from other devices merged by sync
  purge = 7,   ///< removed from the device at the server's command (out of scope)
  resolve = 8  ///< a conflict resolved
};

/// One write: creates a record (`id` empty) or changes one.
struct RecordWrite {
  std::string type;       ///< the type of a new record (ignored for a change)
  std::optional<Uuid> id; ///< the record to change; nullopt creates one
  FieldValues fields;     ///< the values to set; unchanged values write nothing
  /// The audit action, when it is more than create/edit/sign (e.g. share).
  std::optional<AuditAction> action;
  /// For a create: the new record's id, made by the caller with `Uuid::random()`
  /// (so that records of one batch can refer to each other). A taken id throws
  /// Error{already_exists} (values that break the schema throw Error{validation}
  /// first).
  std::optional<Uuid> newId;
};

/// A query. Filters combine with AND. Results are in storage order (oldest first),
/// or by due time for `dueBeforeMs`. Page with `limit` and `after`.
struct RecordQuery {
  std::optional<std::string> type;
  std::optional<std::string> status;
  std::optional<std::string> riskLevel;
  /// Records with a reference (or list of references) to this record, e.g. a child.
  std::optional<Uuid> linkedTo;
  /// Records whose due time is before this (overdue lists).
  std::optional<std::int64_t> dueBeforeMs;
  /// Full-text search (FTS5 query syntax) over the types' search fields.
  std::optional<std::string> text;
  /// Records in this sync state (e.g. `conflict`: the records to review).
  std::optional<SyncState> syncState;
  std::size_t limit = 50;
  /// The `next` cursor of the previous page.
  std::optional<std::string> after;
};

struct RecordPage {
  std::vector<Record> records;
  /// Pass as `after` for the next page; nullopt on the last page.
  std::optional<std::string> next;
};

/// A field holding competing values: the value shown (`current`) and the values
/// of other workers' concurrent edits, each with its time and device, kept until
/// someone resolves them.
struct FieldConflict {
  std::string field;
  sync::FieldVersion current;
  std::vector<sync::FieldVersion> competing; ///< greatest first
};

struct IdPage {
  std::vector<Uuid> ids;
  std::optional<std::string> next;
};

struct RecordStoreOptions {
  /// The worker using the device: recorded as created_by and as the audit actor.
  std::string workerId;
  /// Sign an audit checkpoint every this many events.
  unsigned auditSignEvery = 64;
  /// View events are appended to the audit trail in batches, sharing rows
  /// (audit.hpp): when this many are buffered (256 fill one row), ...
  unsigned viewFlushEvery = 256;
  /// ... when a view finds the oldest buffered one at least this old, and at every
  /// write, `flushViews()`, `lock()` and destruction. `viewFlushEvery = 1` appends
  /// each view at once.
  std::chrono::milliseconds viewFlushAfter{2000};
  /// Records whose row number is kept in memory by id (35 to 70 bytes each), so
  /// that reading a record by id skips the id index on storage (about 2.5 µs a
  /// read). Loaded when the store first uses an unlocked vault (about 70 ms for
  /// 100,000 records), forgotten at `lock()`; 0 keeps none.
  std::size_t memoryIdIndexLimit = 200000;
  /// Register the built-in safeguarding types (safeguarding.hpp).
  bool builtinTypes = true;
};

/// The records in a vault. Owns the journal and the audit log of the vault.
/// The vault, context and clock must outlive the store.
class OUTPOST_API RecordStore {
public:
  /// Creates the store's tables in `vault` if needed (the vault must be unlocked),
  /// restores the HLC from storage, makes the device id and audit key at first use.
  RecordStore(Context& context, Vault& vault, const platform::Clock& clock,
              RecordStoreOptions options);
  ~RecordStore();
  RecordStore(const RecordStore&) = delete;
  RecordStore& operator=(const RecordStore&) = delete;

  [[nodiscard]] Schema& schema() noexcept;

  /// Creates a record; returns its new UUIDv4. Throws Error{validation} naming the
  /// field when the values break the schema or a rule (nothing is written).
  Uuid create(std::string_view type, FieldValues fields);
  /// Changes fields of a record. Throws Error{not_found}, Error{validation}.
  void update(const Uuid& id, FieldValues fields);
  /// Changes fields computed from the current record, in the same transaction.
  void modify(const Uuid& id, const std::function<FieldValues(const Record&)>& change,
              std::optional<AuditAction> action = std::nullopt);
  /// Applies the writes in one vault transaction: all or nothing. Returns the ids
  /// (new or changed) in order.
  std::vector<Uuid> writeBatch(std::span<const RecordWrite> writes);

  /// The fields of a record that hold competing values (empty: none). Throws
  /// Error{not_found}.
  [[nodiscard]] std::vector<FieldConflict> conflicts(const Uuid& id);
  /// Resolves the conflict on a field: `value` (the current value, one of the
  /// competing values, or a new one) replaces the current value and every
  /// competing value shown by `conflicts()`; a competing value that arrives later
  /// becomes a new conflict. Journalled and audited like any write. Throws
  /// Error{not_found} (no such record), Error{invalid_argument} (the field has no
  /// conflict), Error{validation} (the value breaks the schema).
  void resolveConflict(const Uuid& id, std::string_view field, Value value);

  /// Checks values without writing: the problems `create`/`update` would report.
  [[nodiscard]] std::vector<FieldProblem> validate(const RecordWrite& write);

  /// The record for the app's own logic (not audited: use `view` to show it).
  [[nodiscard]] std::optional<Record> get(const Uuid& id);
  /// The record as shown to the worker: the view is audited.
  [[nodiscard]] std::optional<Record> view(const Uuid& id);
  /// The records as canonical JSON for export; audited as an export per record.
  [[nodiscard]] std::string exportJson(std::span<const Uuid> ids);

  [[nodiscard]] RecordPage query(const RecordQuery& query);
  /// As `query`, ids only (cheaper).
  [[nodiscard]] IdPage queryIds(const RecordQuery& query);

  /// Appends buffered view events to the audit trail now.
  void flushViews();
  /// Releases cached statements and locks the vault (wiping keys). Prefer this to
  /// `Vault::lock` so no statement keeps the closed connection's cache alive.
  void lock();

  [[nodiscard]] Journal& journal() noexcept;
  [[nodiscard]] AuditLog& audit() noexcept;
  [[nodiscard]] const Uuid& deviceId() const noexcept;
  [[nodiscard]] const RecordStoreOptions& options() const noexcept;

  struct Impl;
  /// The store's internals, for the SDK's own sync client (not for apps).
  [[nodiscard]] Impl& internals() noexcept { return *impl_; }

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace outpost::model
