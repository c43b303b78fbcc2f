#pragma once
/// \file
/// The audit trail: append-only, hash-chained events of who did what to which
/// record, when and from which device — views and exports as well as changes
/// (DESIGN.md §9). Event n's hash is BLAKE2b-256(hash n-1 || canonical bytes of n);
/// every `auditSignEvery` events the device signs the chain head with its Ed25519
/// key (kept in the vault, made at first use).
///
/// Storage: the events of one transaction (a write batch's creates and edits, the
/// views buffered before it: up to 256 a row) share a row. Each is still an event
/// with its own position and hash; the row stores the hash after its last event,
/// and a row that holds a checkpoint position carries one signature, of that last
/// hash. `verify()` checks such a row as a whole.

#include <outpost/export.h>
#include <outpost/records.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace outpost::model {

/// "view", "create", "edit", "sign", "share", "export".
[[nodiscard]] OUTPOST_API std::string_view auditActionName(AuditAction action) noexcept;

struct AuditEvent {
  std::int64_t seq = 0; ///< 1, 2, 3, ... without gaps
  std::int64_t atMs = 0;
  std::string actor;
  Uuid device;
  AuditAction action = AuditAction::view;
  Uuid record;
  std::string recordType;
  /// JSON: for edits {"field":{"old":v,"new":v}}; for creates {"fields":n} (how many
  /// fields the record was created with: the values are in the record); for receives
  /// (changes pulled from other devices) {"fields":[names]} of the fields merged, or
  /// {"fields":n} for a record new to this device; otherwise {} or what the action adds.
  std::string detail;
  std::array<std::uint8_t, 32> hash{}; ///< the chain's hash after this event
  /// This event's chain head is signed: the event at a multiple of `auditSignEvery`
  /// or, when events share a row, the last event of a row that holds one.
  bool signedCheckpoint = false;
};

/// The outcome of `verify`. Tampering is an expected finding here, so a value.
struct AuditVerification {
  bool intact = true;
  /// The position (1-based seq) of the first event that does not verify (for a
  /// row of several events, its first event's).
  std::optional<std::int64_t> firstBadSeq;
  std::string problem;
  std::int64_t eventsChecked = 0;
  std::int64_t signaturesChecked = 0;
};

/// The audit trail of one `RecordStore` (it owns it). Same threading rules.
class OUTPOST_API AuditLog {
public:
  /// Up to `limit` events with seq > `afterSeq`, in order.
  [[nodiscard]] std::vector<AuditEvent> events(std::int64_t afterSeq, std::size_t limit);
  /// Number of events.
  [[nodiscard]] std::int64_t size();
  /// Checks the whole chain: contiguous positions, every hash, every checkpoint
  /// signature (and that checkpoints are where they must be). Reports the first
  /// removed, inserted, reordered or edited event.
  [[nodiscard]] AuditVerification verify();
  /// The device's Ed25519 public key that signs checkpoints.
  [[nodiscard]] std::array<std::uint8_t, 32> publicKey();
  /// Appends a share event (e.g. the record was sent to a partner) outside a
  /// record write.
  void recordShare(const Uuid& record, std::string_view recordType, std::string_view detailJson);

  explicit AuditLog(RecordStore::Impl& store) noexcept : store_(store) {}

private:
  RecordStore::Impl& store_;
};

} // namespace outpost::model
