#pragma once
// The audit chain's storage, hashing and verification (internal to the server
// store; the format is described in outpost/server/audit.hpp and
// docs/operations.md).

#include "statement_cache.hpp"

#include <outpost/secret.hpp>
#include <outpost/server/audit.hpp>
#include <outpost/sqlite.hpp>

#include <sodium.h>

#include <span>

namespace outpost::server::audit {

/// The table, created with the rest of the schema.
extern const std::string_view kSchema;

/// One stored change row, as hashed (the columns of `changes`, by reference).
struct ChangeRow {
  std::int64_t seq = 0;
  std::span<const unsigned char> changeId;
  std::span<const unsigned char> recordId;
  std::string_view recordType;
  std::string_view field;
  std::span<const unsigned char> value;
  std::int64_t hlc = 0;
  std::span<const unsigned char> deviceId;
  std::int64_t baseHlc = 0;
  std::span<const unsigned char> baseDeviceId;
  std::span<const unsigned char> resolves;
  std::int64_t receivedMs = 0;
  std::string_view mergeOutcome;
};

/// One stored write row, as hashed (the columns of `writes`, by reference).
struct WriteRow {
  std::int64_t seq = 0;
  std::span<const unsigned char> recordId;
  std::string_view recordType;
  std::int64_t hlc = 0;
  std::span<const unsigned char> deviceId;
  std::string_view ownerTeam;
  std::int64_t receivedMs = 0;
  std::span<const unsigned char> fields;
};

/// BLAKE2b-256 over the canonical bytes of the rows a batch stored, fed in sequence
/// order: change rows (stores before schema 3, now `legacy_changes`) or write rows.
class RowsHash {
public:
  RowsHash();
  void add(const ChangeRow& row);
  void add(const WriteRow& row);
  [[nodiscard]] std::array<std::uint8_t, 32> finish();

private:
  crypto_generichash_state state_{};
};

/// The signing half of the server's audit key.
struct Signer {
  const SecretBytes& secretKey;
  const std::array<std::uint8_t, 32>& publicKey;
};

/// How a push entry's change list is stored (column `changes_format`).
enum class ChangeList : std::uint8_t {
  /// Every change with its id, 27 bytes each (entries before schema 4, and the
  /// entries of an upgrade).
  explicitIds = 1,
  /// Changes not stored with their ids; a stored write's changes as one run (count,
  /// outcome, reason, seq) whose ids are read back from the write row: a few bytes
  /// per write instead of 27 per change. Only for changes stored as write rows.
  writeRuns = 2,
};

/// Appends `entry` (its seq and hash are set here) inside the caller's write
/// transaction: reads the chain's head, hashes, signs, inserts.
void append(StatementCache& statements, const Signer& signer, AuditEntry& entry,
            ChangeList format = ChangeList::explicitIds);

/// Entries after `afterSeq`, oldest first, at most `limit`.
[[nodiscard]] std::vector<AuditEntry> list(sql::Database& db, std::int64_t afterSeq,
                                           std::size_t limit);

/// Recomputes the whole chain and matches every push entry with the change log, in
/// one read transaction of the caller's.
[[nodiscard]] AuditVerification verify(sql::Database& db,
                                       const std::array<std::uint8_t, 32>& publicKey);

/// A change row read by a statement selecting kRowColumns (from column `first`).
[[nodiscard]] ChangeRow rowFrom(const sql::Statement& st, int first);
/// The columns of `changes` (now `legacy_changes`) that rowFrom() reads, in order.
extern const std::string_view kRowColumns;

/// A write row read by a statement selecting kWriteColumns (from column `first`).
[[nodiscard]] WriteRow writeRowFrom(const sql::Statement& st, int first);
/// The columns of `writes` that writeRowFrom() reads, in order.
extern const std::string_view kWriteColumns;

/// The server setting holding the seq of the last audit entry whose rows are change
/// rows (in `legacy_changes`); entries after it stored write rows. Absent: none.
extern const std::string_view kLegacyHeadSetting;

} // namespace outpost::server::audit
