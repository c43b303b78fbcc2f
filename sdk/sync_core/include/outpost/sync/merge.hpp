#pragma once
/// \file
/// The merge rule (DESIGN.md §6): one pure function, used identically by the
/// server and every device, so that any number of replicas that have seen the same
/// set of changes hold the same state, whatever order the changes arrived in and
/// however often.
///
/// The state of a field is a function of the set S of changes merged into it:
/// - a version is *superseded* when some change in S names it as its base or in
///   its `resolves` list (its author saw it and replaced it);
/// - *current* is the greatest (hlc, device id, change id) among the versions that
///   are not superseded; the others that are not superseded are the *conflicts*:
///   competing values kept for a person to review. Nothing a worker typed is lost:
///   every version is current, a conflict, or superseded by someone who saw it.
/// - append-only fields keep every entry, ordered by (hlc, device id, change id),
///   and never conflict.
/// - an immutable-after-sign field refuses changes once its record is signed.
/// - deleting a record is a Tombstone on the record field (kRecordField) whose
///   `resolves` lists the field versions the deleter saw; a field version it did not
///   see is a delete-vs-edit conflict (`deletionConflicts`).

#include <outpost/sync/change.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::sync {

/// One version of a field.
struct FieldVersion {
  Value value;
  Hlc hlc;
  Uuid deviceId;
  Uuid changeId;

  [[nodiscard]] VersionId version() const noexcept { return {hlc, deviceId}; }
  friend bool operator==(const FieldVersion&, const FieldVersion&) = default;
};

/// What a replica knows of one field. Compare two replicas with ==.
struct FieldState {
  std::optional<FieldVersion> current;
  /// Competing versions, greatest first.
  std::vector<FieldVersion> conflicts;
  /// Append-only entries, in (hlc, device id, change id) order.
  std::vector<FieldVersion> entries;
  /// Versions some change replaced, sorted.
  std::vector<VersionId> superseded;

  [[nodiscard]] bool hasConflict() const noexcept { return !conflicts.empty(); }
  friend bool operator==(const FieldState&, const FieldState&) = default;
};

enum class MergeOutcome : std::uint8_t {
  fastForward, ///< the change replaced the version it was based on: it is current
  won,         ///< concurrent, and greater: current; the previous value is a conflict
  lost,        ///< concurrent, and smaller: kept as a conflict
  superseded,  ///< arrived after a change that replaced it: kept in history only
  appended,    ///< a new append-only entry
  duplicate,   ///< merged before (same change id): nothing changed
  rejected,    ///< the field is frozen (its record was signed)
};

[[nodiscard]] std::string_view mergeOutcomeName(MergeOutcome outcome) noexcept;

/// Merges `change` into `state`. `frozen`: the record is signed, so an
/// immutable-after-sign field refuses changes. Deterministic and idempotent; the
/// resulting state does not depend on the order changes arrive in.
MergeOutcome merge(FieldState& state, const Change& change, MergePolicy policy,
                   bool frozen = false);

/// A record as a replica knows it: its fields by name (kRecordField for the record
/// itself).
struct RecordState {
  std::map<std::string, FieldState, std::less<>> fields;
  friend bool operator==(const RecordState&, const RecordState&) = default;
};

/// True when the record's current state is deleted.
[[nodiscard]] bool isDeleted(const RecordState& record) noexcept;

/// Field versions that are current or in conflict but that the current deletion
/// did not see: a delete concurrent with an edit, kept for a person to review.
/// Empty when the record is not deleted.
[[nodiscard]] std::vector<std::pair<std::string, FieldVersion>>
deletionConflicts(const RecordState& record);

/// The binary form of a field's merge state (as the server store and the device
/// keep it), and its inverse (throws Error{corrupt}).
[[nodiscard]] std::string encodeFieldState(const FieldState& state);
[[nodiscard]] FieldState decodeFieldState(std::string_view bytes);

/// The binary form of a whole record's merge state (every field's, by name), as the
/// server store keeps it; empty bytes decode to an empty record. The inverse throws
/// Error{corrupt}.
///
/// A version whose change id is all-zero stands for its derived id (derivedChangeId
/// of its device, the record, the field and its HLC), which the form stores as a
/// flag: most of a record's state is such ids. `decodeRecordState(bytes)` leaves
/// those all-zero; give the record's id to have them derived.
[[nodiscard]] std::string encodeRecordState(const RecordState& record);
[[nodiscard]] RecordState decodeRecordState(std::string_view bytes);
[[nodiscard]] RecordState decodeRecordState(std::string_view bytes, const Uuid& record);

} // namespace outpost::sync
