#pragma once
// The device side of merging (internal): what the sync client does to the record
// store, each call one vault transaction.

#include "../model/record_store_impl.hpp"

#include <outpost/sync/change.hpp>

#include <cstdint>
#include <span>
#include <vector>

namespace outpost::model {

struct RemoteMergeResult {
  std::size_t merged = 0;       ///< changes merged (own echoes skipped)
  std::size_t records = 0;      ///< records touched
  std::size_t newConflicts = 0; ///< fields that gained a competing value
};

/// One pulled batch: its changes, and `derivedIds`: empty, or one flag per change,
/// set where the change's id is sync::derivedChangeId of its own device, record,
/// field and HLC (the wire left it out). Such a change may come with an all-zero
/// id: it is derived here only where the merge needs it — a record this store
/// already holds, a field changed more than once in the batches, a field whose
/// merge state is stored. A new record's field changed once needs none: its id
/// would only be compared with itself.
struct RemoteBatch {
  std::span<sync::Change> changes;
  std::span<const bool> derivedIds;
};

/// Merges pulled batches (in order) into the store and saves `cursor` as the
/// position pulled up to, in one vault transaction: all or nothing. The device's
/// own changes (echoed back by the server) are skipped: the store has them already.
RemoteMergeResult applyRemote(RecordStore::Impl& store, std::span<const RemoteBatch> batches,
                              std::uint64_t cursor);

/// Copies the WAL into the database file now (SQLite's passive checkpoint), as the
/// commit that passes the vault's `walAutoCheckpointPages` would: after a pull of
/// several transactions, so that the worker's next edit does not pay for copying
/// the pull's pages. A checkpoint that a reader holds up is left for later.
void checkpointWal(RecordStore::Impl& store);

/// The server sequence number pulled up to (0 before the first pull).
std::uint64_t pullCursor(RecordStore::Impl& store);
/// Makes the next pull start from the beginning (merging what the device already has
/// changes nothing).
void resetPullCursor(RecordStore::Impl& store);

/// Removes records the server said are out of the worker's scope, with their
/// journal entries, merge state and index entries, and audits each removal, in
/// one transaction. Returns the ids that were present and how many unsent journal
/// writes they had.
struct PurgeResult {
  std::vector<Uuid> removed;
  std::size_t discardedWrites = 0;
};
PurgeResult purgeRecords(RecordStore::Impl& store, std::span<const Uuid> records);

/// Re-stamps records written before enrollment with the enrolled device id (they
/// have never left the device). No-op when the ids already agree.
void adoptDeviceId(RecordStore::Impl& store, const Uuid& device);

/// The device's sync bookkeeping kept in the vault (store_meta).
std::optional<std::string> syncMeta(RecordStore::Impl& store, std::string_view key);
void setSyncMeta(RecordStore::Impl& store, std::string_view key, std::string_view value);

} // namespace outpost::model
