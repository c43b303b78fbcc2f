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
  std::int64_t seq = 0; ///< increasing; the order entries were written
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
  /// Up to `maxEntries` pending entries with seq > `afterSeq`, oldest first.
  [[nodiscard]] std::vector<JournalEntry> pending(std::size_t maxEntries,
                                                  std::int64_t afterSeq = 0);
  /// Number of pending entries.
  [[nodiscard]] std::int64_t pendingCount();
  /// Marks entries acknowledged by the server, in one vault transaction: they
  /// leave the outbox, and a record whose entries are all acknowledged becomes
  /// `synced` (unless in conflict or rejected). Unknown seqs are ignored (acks are
  /// idempotent). Returns how many entries were acknowledged.
  std::size_t acknowledge(std::span<const std::int64_t> seqs);
  /// Records the server's verdict on a record.
  void markConflict(const Uuid& record);
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
