#pragma once
/// \file
/// The server's audit chain (DESIGN.md §9): one entry per pushed batch and per
/// administrative action, in the table `audit_log` of the server store.
///
/// Entry i carries `hash_i = BLAKE2b-256(hash_{i-1} || canonical bytes of entry i)`
/// and an Ed25519 signature over (i, hash_i) by the server's audit key
/// (DIR/keys/audit-signing.key). A push entry is written in the same transaction as
/// the batch it describes and lists, change by change in batch order, the change id,
/// the outcome the device was told, its reason and the sequence number the change was
/// stored under (0 when it was not stored); the changes stored in one write row are
/// kept as a run whose ids are the row's (audit::ChangeList::writeRuns, schema 4).
/// The canonical bytes cover a BLAKE2b hash
/// of that list and the rows hash: a BLAKE2b hash over the full content of every
/// change row the batch stored. `verifyAudit` recomputes all of it, so an entry
/// edited, removed or inserted, and a change row altered, deleted or added after the
/// fact, are each reported, naming the first bad entry.

#include <outpost/protocol/messages.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::server {

/// What an audit entry records. The names are stored and hashed: never renamed.
enum class AuditKind : std::uint8_t {
  init,            ///< the data folder was initialised (keys named in the detail)
  baseline,        ///< changes stored before the audit chain existed (one entry, at upgrade)
  push,            ///< a batch pushed by a device
  teamAdd,         ///< `outpostctl team add`
  workerAdd,       ///< `outpostctl worker add`
  workerSetTeams,  ///< `outpostctl worker set-teams`
  enrollIssue,     ///< `outpostctl enroll`: a code was issued (the code itself is not kept)
  deviceEnroll,    ///< a device redeemed a code
  deviceRevoke,    ///< `outpostctl revoke`
  exportData,      ///< `outpostctl export`
  recordView,      ///< `outpostctl conflicts show`: the central team viewed a record
  templatePublish, ///< `outpostctl template publish`
};

/// "push", "team.add", ... as stored.
[[nodiscard]] std::string_view auditKindName(AuditKind kind) noexcept;
[[nodiscard]] std::optional<AuditKind> parseAuditKind(std::string_view name) noexcept;

/// One line of what a push entry lists per change (27 bytes stored).
struct AuditedChange {
  protocol::Uuid changeId{};
  protocol::ChangeOutcome outcome = protocol::ChangeOutcome::applied;
  std::uint16_t reason = 0; ///< an Errc number, 0 for applied/duplicate
  std::int64_t seq = 0;     ///< the change log sequence number; 0 when not stored
  bool operator==(const AuditedChange&) const = default;
};

/// One entry of the chain.
struct AuditEntry {
  std::int64_t seq = 0;
  std::int64_t atMs = 0;
  AuditKind kind = AuditKind::init;
  /// The worker (push, device enrollment) or the administrator's account.
  std::string actor;
  /// The device concerned (zero when none).
  protocol::Uuid device{};
  /// JSON: counts, team and worker names; never record contents or secrets.
  std::string detail;
  /// push and baseline: every change of the batch, in batch order.
  std::vector<AuditedChange> changes;
  /// BLAKE2b-256 over the stored change rows of `changes`, in order.
  std::array<std::uint8_t, 32> rowsHash{};
  std::array<std::uint8_t, 32> hash{};
};

/// What `verifyAudit` found.
struct AuditVerification {
  bool intact = true;
  std::int64_t entries = 0;
  std::int64_t pushes = 0;
  std::int64_t changesChecked = 0; ///< change rows matched against their entry
  std::int64_t signaturesChecked = 0;
  /// The last entry (the head a careful operator notes elsewhere to detect a
  /// truncated tail, which a chain alone cannot show).
  std::int64_t headSeq = 0;
  std::array<std::uint8_t, 32> headHash{};
  /// When broken: the first entry that does not verify (0 when the problem is a
  /// change row that no entry covers) and what is wrong, for a person.
  std::int64_t firstBadSeq = 0;
  std::string problem;
};

/// The administrative actor name for the account running a command: "admin:<login>".
[[nodiscard]] std::string administratorName();

} // namespace outpost::server
