#pragma once
// The record store's state, shared by the record core, the journal and the audit
// log (internal).

#include "row_hints.hpp"

#include <outpost/audit.hpp>
#include <outpost/context.hpp>
#include <outpost/journal.hpp>
#include <outpost/records.hpp>
#include <outpost/secret.hpp>
#include <outpost/sqlite.hpp>
#include <outpost/sync/hlc.hpp>
#include <outpost/sync/merge.hpp>
#include <outpost/vault.hpp>

#include <array>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace outpost::model {

/// Resets a cached statement when the scope ends.
class StatementUse {
public:
  explicit StatementUse(sql::Statement& s) noexcept : s_(s) {}
  ~StatementUse() { s_.reset(); }
  StatementUse(const StatementUse&) = delete;
  StatementUse& operator=(const StatementUse&) = delete;
  sql::Statement* operator->() noexcept { return &s_; }
  sql::Statement& operator*() noexcept { return s_; }

private:
  sql::Statement& s_;
};

/// The audit chain's tail, read once per transaction.
struct AuditTail {
  bool loaded = false;
  std::int64_t seq = 0;
  std::array<std::uint8_t, 32> hash{};
};

/// An audit event of the open transaction, not yet in the chain.
struct PendingEvent {
  std::int64_t atMs = 0;
  AuditAction action = AuditAction::view;
  Uuid record;
  std::string type;
  std::string detail;
};

/// Per-transaction state.
struct WriteState {
  AuditTail audit;
  /// The transaction's audit events, in order: appended to the chain together,
  /// sharing rows (appendAuditEvents), when its work is done.
  std::vector<PendingEvent> events;
};

struct PendingView {
  std::int64_t atMs = 0;
  Uuid record;
  std::string type;
};

/// How many writes each record has in the journal, kept in memory so that a
/// record's sync state costs no read of the journal's index (a page decryption each
/// on a large store): OUTPOST_SYNC_STATE_OF_R asks it through the SQL function
/// `outpost_pending(rid)`. Loaded from the journal for each new connection; the
/// open write transaction's changes are kept apart and count once it commits.
class PendingWrites {
public:
  void load(sql::Database& db);
  /// `n` more (or, negative, fewer) journal rows of record `rid` in the open
  /// transaction.
  void add(std::int64_t rid, std::int64_t n);
  /// Every journal row of `rid` deleted in the open transaction.
  void removeAll(std::int64_t rid);
  [[nodiscard]] bool has(std::int64_t rid) const;
  /// Record `rid`'s journal rows, the open transaction's included.
  [[nodiscard]] std::int64_t count(std::int64_t rid) const;
  void commit();
  void rollback() noexcept;
  void clear() noexcept;

private:
  /// Rids below this are counted in a vector (rids are handed out in order from
  /// 1, so it is dense: 4 bytes a record); others in a map.
  static constexpr std::int64_t kDenseRids = std::int64_t{1} << 22;
  [[nodiscard]] std::int64_t committed(std::int64_t rid) const;
  void addCommitted(std::int64_t rid, std::int64_t n);
  /// Makes room in the vector for `rid` (if it belongs there), doubling at least.
  void growDenseFor(std::int64_t rid);

  std::vector<std::uint32_t> dense_;                      ///< committed rows of rid k at [k]
  std::unordered_map<std::int64_t, std::int64_t> sparse_; ///< committed rows of other rids
  std::unordered_map<std::int64_t, std::int64_t> open_;   ///< changes not yet committed
};

/// Field names kept once, in table `field_names`: a record's `fields` blob gives
/// each field by its number there (sync::FieldNameCodec), so a name takes a byte
/// or two per record instead of its length. Numbers are never changed or reused.
/// Names are cached: every name at attach, a name another store added at its first
/// use. A name added in a write transaction that rolls back is forgotten with it.
class FieldNames {
public:
  FieldNames();
  FieldNames(const FieldNames&) = delete;
  FieldNames& operator=(const FieldNames&) = delete;
  /// A new connection: the names are read again.
  void load(sql::Database& db);
  /// Numbers for names (a new name is added in the open write transaction) and
  /// names for numbers, over the connection given to `load`.
  [[nodiscard]] const sync::FieldNameCodec& codec() const noexcept { return codec_; }
  void commit() noexcept { added_.clear(); }
  void rollback() noexcept;

private:
  std::uint64_t number(std::string_view name);
  const std::string* name(std::uint64_t number);
  const std::string& remember(std::uint64_t number, std::string name);

  sql::Database* db_ = nullptr;
  /// The names' strings, in the order first seen (a type's names are mostly added
  /// together, so a record's names sit in a few cache lines). A deque: they never
  /// move. A name dropped by a rollback stays here, unused, until the next load.
  std::deque<std::string> strings_;
  std::unordered_map<std::uint64_t, const std::string*> names_;
  std::unordered_map<std::string_view, std::uint64_t> numbers_; ///< keys: strings_'s strings
  /// names_ by number up to a bound (numbers are small and dense): a read looks a
  /// name up by index.
  std::vector<sync::FieldNameCodec::Known> byNumber_;
  std::vector<std::uint64_t> added_; ///< numbers given in the open transaction
  sync::FieldNameCodec codec_;
};

struct RecordStore::Impl {
  Impl(Context& ctx, Vault& v, const platform::Clock& c, RecordStoreOptions o)
      : context(ctx), vault(v), clock(c), options(std::move(o)), hlc(c) {}

  /// Serialises the store's operations (the sync client runs on another thread).
  std::recursive_mutex mutex;
  Context& context;
  Vault& vault;
  std::uint64_t lockObserver = 0; ///< drops cached statements whenever the vault locks
  const platform::Clock& clock;
  RecordStoreOptions options;
  Schema schema;
  sync::HlcClock hlc;
  Uuid device;
  SecretBytes signingKey; // Ed25519 secret key (64 bytes)
  std::array<std::uint8_t, 32> publicKey{};
  Journal journal{*this};
  AuditLog audit{*this};
  std::vector<PendingView> views;
  /// Types of records seen (a record's type never changes and ids are never
  /// reused), so reference checks need no lookup. Cleared when a write fails,
  /// since it may hold records that the failed transaction created.
  std::unordered_map<Uuid, std::string> knownTypes;
  /// The HLC last written to storage (a write that hands out none saves nothing).
  Hlc savedHlc;
  /// Records with writes in the journal; reloaded for every new connection (attach).
  /// Used under `mutex` only.
  PendingWrites pending;
  /// The numbers of field names in records' `fields` blobs. Used under `mutex` only.
  FieldNames fieldNames;
  /// Row numbers of records by id, so that reading a record by id skips the id
  /// index (options.memoryIdIndexLimit at most). Hints only: a read by row number
  /// also checks the id, and falls back to the index when the row is not there
  /// (a rolled-back create, a record removed). Reloaded for every new connection.
  RowHints rowOfId;
  void rememberRow(const Uuid& id, std::int64_t rid);

  /// A prepared statement for `sql` (a string literal), cached per connection.
  sql::Statement& stmt(sql::Database& db, const char* sqlText);
  /// As `stmt`, for SQL built at run time.
  sql::Statement& dynamicStmt(sql::Database& db, const std::string& sqlText);
  /// Forgets the connection's statements; the next use attaches the new connection.
  void dropStatements() noexcept;

  /// One vault write transaction that also appends pending views first and saves
  /// the HLC last.
  void write(const std::function<void(sql::Database&, WriteState&)>& work);
  void read(const std::function<void(sql::Database&)>& work);

  void appendViews(WriteState& state);
  void saveHlc(sql::Database& db);

  [[nodiscard]] std::optional<Record> load(sql::Database& db, const Uuid& id, std::int64_t* rid);

  /// Readies a new connection: drops the old statements, registers
  /// `outpost_pending` and loads the pending set.
  void attach(sql::Database& db);

private:
  sqlite3* cachedFor_ = nullptr;
  std::unordered_map<const char*, std::unique_ptr<sql::Statement>> statements_;
  std::map<std::string, std::unique_ptr<sql::Statement>, std::less<>> dynamic_;
};

// Records (sdk/src/model/record_store.cpp)
std::string encodeClocks(const std::map<std::string, FieldClock, std::less<>>& clocks);
std::map<std::string, FieldClock, std::less<>> decodeClocks(std::string_view raw);
/// The record in a row whose columns from `at` are rid, id, type, fields, clocks,
/// created_hlc, device, created_at, updated_at, sync_state (of `records`); without
/// its fields when `withFields` is false (for a caller that reads them itself).
/// `names`: the store's FieldNames codec.
Record recordFromRow(const sql::Statement& s, int at, const sync::FieldNameCodec& names,
                     bool withFields = true);
/// Updates a record's links and full-text entry after a write of `changed`.
void indexRecord(RecordStore::Impl& s, sql::Database& db, const EntityType& type, std::int64_t rid,
                 bool existed, const FieldValues& after, const FieldValues& changed);

// Journal (sdk/src/journal)
/// What a journalled field change replaced: the version it was based on (none for
/// a field that never had a value) and, for a conflict resolution, the competing
/// versions.
struct JournalBase {
  std::optional<sync::VersionId> base;
  std::vector<sync::VersionId> resolves;
};
void createJournalTables(sql::Database& db);
/// A record's SyncState as an SQL expression over `records r`. Only a rejection is
/// kept on the row (sync_state = 3, with sync_reason, until the server accepts the
/// record again); a conflict is `conflicts > 0`; pending means the record has writes
/// in the journal (RecordStore::Impl::pending); otherwise it is synced. An acknowledgement then
/// only deletes journal rows, and rewrites no record. (A macro, to be pasted into statement
/// literals: statements are cached by their text's address.)
#define OUTPOST_SYNC_STATE_OF_R                                                                    \
  "CASE WHEN r.sync_state = 3 THEN 3 WHEN r.conflicts > 0 THEN 2 WHEN outpost_pending(r.rid) "     \
  "THEN 0 ELSE 1 END"
/// Records one write in the outbox: a create (`bases` null: every field of the new
/// record, base zero) or the changed fields with what each replaced. Values are
/// not copied: the outbox reads them from the record when listing.
void appendJournal(RecordStore::Impl& store, sql::Database& db, std::int64_t rid, Hlc hlc,
                   const std::map<std::string, JournalBase, std::less<>>* bases);
/// A journal entry's bases with versions of device `from` named as of device `to`.
std::string restampBases(std::string_view raw, const Uuid& from, const Uuid& to);
/// The change id of (device, record, field, hlc): sync::derivedChangeId.
Uuid changeIdOf(const Uuid& device, const Uuid& record, std::string_view field, Hlc hlc);
/// Journal::pending. Every entry's change id is the derived one (changeIdOf);
/// with `withIds` false it is left all-zero instead, for a caller that sends
/// derived ids elided (the server derives them) and need not pay for the hash.
std::vector<JournalEntry> pendingWrites(RecordStore::Impl& store, std::size_t maxEntries,
                                        std::int64_t afterSeq, bool withIds);
/// A write the server acknowledged; `clearsRejection`: the server accepted the
/// latest push of its record, which is then no longer `rejected`.
struct AckedWrite {
  std::int64_t seq = 0;
  bool clearsRejection = false;
};
/// Journal::acknowledge, clearing rejections in the same vault transaction.
std::size_t acknowledgeWrites(RecordStore::Impl& store, std::span<const AckedWrite> writes);

// Device-side merge state (sdk/src/sync/device_merge.cpp)
void createSyncTables(sql::Database& db);
/// The stored merge state of a field, or nullopt when its history is local only.
std::optional<sync::FieldState> loadFieldState(RecordStore::Impl& store, sql::Database& db,
                                               std::int64_t rid, std::string_view field);
/// Every stored field state of a record (most records have none).
std::map<std::string, sync::FieldState, std::less<>>
loadFieldStates(RecordStore::Impl& store, sql::Database& db, std::int64_t rid);
/// The fields of a record holding competing values, with their states.
std::vector<std::pair<std::string, sync::FieldState>>
loadConflictedFields(RecordStore::Impl& store, sql::Database& db, std::int64_t rid);
/// Merges a local write into the stored states of fields that have one (fields
/// whose history is local only need none), and updates the record's conflict count.
/// `bases`: the versions an edit replaced; nullptr for a create, whose record has no
/// stored state yet.
void mergeLocalWrite(RecordStore::Impl& store, sql::Database& db, std::int64_t rid,
                     const Uuid& record, const EntityType& type, const FieldValues& changed,
                     Hlc hlc, const std::map<std::string, JournalBase, std::less<>>* bases);

// Audit (sdk/src/audit)
void createAuditTables(sql::Database& db);
/// Loads (or makes, at first use) the device's signing key.
void loadAuditKey(RecordStore::Impl& store, sql::Database& db);
/// Adds an event to the open transaction's (state.events).
void appendAudit(WriteState& state, std::int64_t atMs, AuditAction action, const Uuid& record,
                 std::string_view recordType, std::string_view detail);
/// Appends the transaction's events to the chain, each an event with its own
/// position and hash, in rows of up to 256: a row's columns are its last event,
/// column `earlier` holds the ones before it. Run last in the transaction.
void appendAuditEvents(RecordStore::Impl& store, sql::Database& db, WriteState& state);

/// 16 bytes of a UUID for binding.
inline std::span<const unsigned char> uuidBytes(const Uuid& id) noexcept {
  return {id.bytes.data(), id.bytes.size()};
}
Uuid uuidColumn(const sql::Statement& s, int column);

} // namespace outpost::model
