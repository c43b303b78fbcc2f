#pragma once
/// \file
/// The change journal: the outbox the sync client reads. Every local write adds
/// one entry per changed field (in the write's transaction, see records.hpp); the
/// sync client lists pending entries oldest first, pushes them, and acknowledges
/// them, which removes them from the outbox.

#include <outpost/export.h>
#include <outpost/records.hpp>
#include <outpost/sync/change.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace outpost::model {

/// A pending change with its position in the outbox.
struct JournalEntry {
  /// The position of the write that made the change: increasing in write order;
  /// the entries of one write (one record) share it and are acknowledged together.
  std::int64_t seq = 0;
  sync::Change change;
};

/// A record's state with the server, and why when rejected.
struct RecordSyncStatus {
  SyncState state = SyncState::pending;
  std::string reason;
};

/// The journal of one `RecordStore` (it owns it). Same threading rules.
class OUTPOST_API Journal {
public:
  /// Pending entries of writes with seq > `afterSeq`, oldest first: whole writes
  /// only, as many as fit in `maxEntries` (at least one write). An entry's value
  /// is the field's current value; a field changed again by a later pending write
  /// is sent with the later value (the later entry then fast-forwards).
  [[nodiscard]] std::vector<JournalEntry> pending(std::size_t maxEntries,
                                                  std::int64_t afterSeq = 0);
  /// Number of pending writes.
  [[nodiscard]] std::int64_t pendingCount();
  /// Marks the writes with these seqs acknowledged by the server, in one vault
  /// transaction: they leave the outbox, and a record with no pending write left
  /// becomes `synced` (unless in conflict or rejected). Unknown seqs are ignored
  /// (acks are idempotent). Returns how many writes were acknowledged.
  std::size_t acknowledge(std::span<const std::int64_t> seqs);
  /// Records the server's refusal of a record's latest push: it stays `rejected`,
  /// with `reason`, until an acknowledgement lifts it (AckedWrite::clearsRejection).
  /// Conflicts need no marking: a record is in conflict while the merge keeps
  /// competing values for one of its fields.
  void markRejected(const Uuid& record, std::string_view reason);
  /// The record's sync state, or nullopt for an unknown record.
  [[nodiscard]] std::optional<RecordSyncStatus> status(const Uuid& record);
  /// The last HLC the store handed out (persisted with every write).
  [[nodiscard]] Hlc lastHlc();

  struct Impl;
  explicit Journal(RecordStore::Impl& store) noexcept : store_(store) {}

private:
  RecordStore::Impl& store_;
};

} // namespace outpost::model
