// The server's audit chain: canonical bytes, hashing, signing, verification.

#include "audit_chain.hpp"
#include "write_row.hpp"

#include <outpost/error.hpp>

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <tuple>

namespace outpost::server {

namespace {

struct KindName {
  AuditKind kind;
  std::string_view name;
};

constexpr KindName kKinds[] = {
    {AuditKind::init, "init"},
    {AuditKind::baseline, "baseline"},
    {AuditKind::push, "push"},
    {AuditKind::teamAdd, "team.add"},
    {AuditKind::workerAdd, "worker.add"},
    {AuditKind::workerSetTeams, "worker.set-teams"},
    {AuditKind::enrollIssue, "enroll.issue"},
    {AuditKind::deviceEnroll, "device.enroll"},
    {AuditKind::deviceRevoke, "device.revoke"},
    {AuditKind::exportData, "export"},
    {AuditKind::recordView, "record.view"},
    {AuditKind::templatePublish, "template.publish"},
};

} // namespace

std::string_view auditKindName(AuditKind kind) noexcept {
  for (const auto& k : kKinds) {
    if (k.kind == kind) {
      return k.name;
    }
  }
  return "unknown";
}

std::optional<AuditKind> parseAuditKind(std::string_view name) noexcept {
  for (const auto& k : kKinds) {
    if (k.name == name) {
      return k.kind;
    }
  }
  return std::nullopt;
}

std::string administratorName() {
  const passwd* pw = ::getpwuid(::geteuid());
  if (pw != nullptr && pw->pw_name != nullptr && pw->pw_name[0] != '\0') {
    return std::string("admin:") + pw->pw_name;
  }
  return "admin:uid-" + std::to_string(::geteuid());
}

} // namespace outpost::server

namespace outpost::server::audit {

const std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS audit_log(
  seq INTEGER PRIMARY KEY,
  at_ms INTEGER NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT NOT NULL,
  device_id BLOB NOT NULL,
  detail TEXT NOT NULL,
  changes BLOB NOT NULL,
  rows_hash BLOB NOT NULL,
  hash BLOB NOT NULL,
  signature BLOB NOT NULL,
  changes_format INTEGER NOT NULL DEFAULT 1);
)sql";

const std::string_view kRowColumns =
    "seq, change_id, record_id, record_type, field, value, hlc, device_id, base_hlc,"
    " base_device_id, resolves, received_ms, merge_outcome";

const std::string_view kWriteColumns =
    "seq, record_id, record_type, hlc, device_id, owner_team, received_ms, fields";

const std::string_view kLegacyHeadSetting = "audit.legacy_head";

namespace {

constexpr std::string_view kEntryContext = "outpost-server-audit-v1";
constexpr std::string_view kChangesContext = "outpost-server-audit-changes-v1";
/// The hash context of a change list in the runs form (ChangeList::writeRuns): a
/// format column turned back to 1 no longer matches the entry's hash.
constexpr std::string_view kRunsContext = "outpost-server-audit-changes-v2";
constexpr std::string_view kRowsContext = "outpost-server-audit-rows-v1";
constexpr std::string_view kSignContext = "outpost-server-audit-sig-v1";
constexpr std::size_t kChangeBytes = 16 + 1 + 2 + 8;

using Hash = std::array<std::uint8_t, 32>;

void putU64(std::string& out, std::uint64_t v) {
  std::array<char, 8> b{};
  for (std::size_t k = 0; k < 8; ++k) {
    b[k] = static_cast<char>((v >> (56 - 8 * k)) & 0xFF);
  }
  out.append(b.data(), b.size());
}

void putChunk(std::string& out, std::string_view s) {
  putU64(out, s.size());
  out.append(s);
}

std::string_view chars(std::span<const unsigned char> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::span<const unsigned char> bytesOf(std::string_view s) {
  return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

Hash blake2b(std::string_view context, std::string_view data) {
  Hash h{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, h.size());
  crypto_generichash_update(&st, bytesOf(context).data(), context.size());
  crypto_generichash_update(&st, bytesOf(data).data(), data.size());
  crypto_generichash_final(&st, h.data(), h.size());
  return h;
}

Hash chain(const Hash& previous, std::string_view canonical) {
  Hash h{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, h.size());
  crypto_generichash_update(&st, previous.data(), previous.size());
  crypto_generichash_update(&st, bytesOf(canonical).data(), canonical.size());
  crypto_generichash_final(&st, h.data(), h.size());
  return h;
}

std::string encodeChanges(const std::vector<AuditedChange>& changes) {
  std::string out;
  out.reserve(changes.size() * kChangeBytes);
  for (const auto& c : changes) {
    out.append(reinterpret_cast<const char*>(c.changeId.data()), c.changeId.size());
    out.push_back(static_cast<char>(c.outcome));
    out.push_back(static_cast<char>(c.reason >> 8));
    out.push_back(static_cast<char>(c.reason & 0xFF));
    putU64(out, static_cast<std::uint64_t>(c.seq));
  }
  return out;
}

// The runs form (ChangeList::writeRuns), item after item:
//   0, change id (16 bytes), outcome (1), reason (2, big-endian), varint seq
//   1, varint count, outcome (1), reason (2), varint seq: `count` changes, in a row,
//      stored in write `seq` and whose ids are that write row's next `count` ids
// A write's changes are listed in the order of its row's fields, so every stored
// change is in a run: a push of new records lists one run per write.
constexpr std::uint8_t kExplicit = 0;
constexpr std::uint8_t kRun = 1;

void putVarint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void putOutcome(std::string& out, const AuditedChange& c) {
  out.push_back(static_cast<char>(c.outcome));
  out.push_back(static_cast<char>(c.reason >> 8));
  out.push_back(static_cast<char>(c.reason & 0xFF));
}

std::string encodeRuns(const std::vector<AuditedChange>& changes) {
  std::string out;
  for (std::size_t i = 0; i < changes.size();) {
    const AuditedChange& c = changes[i];
    if (c.seq == 0) {
      out.push_back(static_cast<char>(kExplicit));
      out.append(reinterpret_cast<const char*>(c.changeId.data()), c.changeId.size());
      putOutcome(out, c);
      putVarint(out, 0);
      ++i;
      continue;
    }
    std::size_t n = 1;
    while (i + n < changes.size() && changes[i + n].seq == c.seq &&
           changes[i + n].outcome == c.outcome && changes[i + n].reason == c.reason) {
      ++n;
    }
    out.push_back(static_cast<char>(kRun));
    putVarint(out, n);
    putOutcome(out, c);
    putVarint(out, static_cast<std::uint64_t>(c.seq));
    i += n;
  }
  return out;
}

/// A change list in the runs form, the ids of runs left all-zero and flagged in
/// `fromRow` (parallel to the result). Nullopt when malformed.
std::optional<std::vector<AuditedChange>> decodeRuns(std::span<const unsigned char> b,
                                                     std::vector<bool>& fromRow) {
  std::vector<AuditedChange> out;
  fromRow.clear();
  std::size_t at = 0;
  const auto varint = [&]() -> std::optional<std::uint64_t> {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at == b.size()) {
        return std::nullopt;
      }
      const unsigned char x = b[at++];
      v |= std::uint64_t{x & 0x7fu} << shift;
      if ((x & 0x80) == 0) {
        return v;
      }
    }
    return std::nullopt;
  };
  const auto outcome = [&](AuditedChange& c) {
    if (b.size() - at < 3 ||
        b[at] > static_cast<unsigned char>(protocol::ChangeOutcome::rejected)) {
      return false;
    }
    c.outcome = static_cast<protocol::ChangeOutcome>(b[at]);
    c.reason = static_cast<std::uint16_t>((b[at + 1] << 8) | b[at + 2]);
    at += 3;
    return true;
  };
  while (at < b.size()) {
    const unsigned char tag = b[at++];
    AuditedChange c;
    if (tag == kExplicit) {
      if (b.size() - at < 16) {
        return std::nullopt;
      }
      std::copy(b.begin() + static_cast<std::ptrdiff_t>(at),
                b.begin() + static_cast<std::ptrdiff_t>(at + 16), c.changeId.begin());
      at += 16;
      const auto seq = outcome(c) ? varint() : std::nullopt;
      if (!seq || *seq > static_cast<std::uint64_t>(INT64_MAX)) {
        return std::nullopt;
      }
      c.seq = static_cast<std::int64_t>(*seq);
      if (out.size() == protocol::limits::kChanges) {
        return std::nullopt;
      }
      out.push_back(c);
      fromRow.push_back(false);
      continue;
    }
    if (tag != kRun) {
      return std::nullopt;
    }
    const auto n = varint();
    // A push entry lists one batch, at most limits::kChanges changes.
    if (!n || *n == 0 || *n > protocol::limits::kChanges - out.size() || !outcome(c)) {
      return std::nullopt;
    }
    const auto seq = varint();
    if (!seq || *seq == 0 || *seq > static_cast<std::uint64_t>(INT64_MAX)) {
      return std::nullopt;
    }
    c.seq = static_cast<std::int64_t>(*seq);
    out.insert(out.end(), *n, c);
    fromRow.insert(fromRow.end(), *n, true);
  }
  return out;
}

std::optional<std::vector<AuditedChange>> decodeChanges(std::span<const unsigned char> b) {
  if (b.size() % kChangeBytes != 0) {
    return std::nullopt;
  }
  std::vector<AuditedChange> out(b.size() / kChangeBytes);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const unsigned char* p = b.data() + i * kChangeBytes;
    std::copy(p, p + 16, out[i].changeId.begin());
    if (p[16] > static_cast<unsigned char>(protocol::ChangeOutcome::rejected)) {
      return std::nullopt;
    }
    out[i].outcome = static_cast<protocol::ChangeOutcome>(p[16]);
    out[i].reason = static_cast<std::uint16_t>((p[17] << 8) | p[18]);
    std::uint64_t seq = 0;
    for (int k = 0; k < 8; ++k) {
      seq = (seq << 8) | p[19 + k];
    }
    out[i].seq = static_cast<std::int64_t>(seq);
  }
  return out;
}

/// The bytes an entry's hash covers (the change list through its hash).
std::string canonicalEntry(std::int64_t seq, std::int64_t atMs, std::string_view kind,
                           std::string_view actor, std::span<const unsigned char> device,
                           std::string_view detail, const Hash& changesHash,
                           std::span<const unsigned char> rowsHash) {
  std::string b;
  b.reserve(200 + actor.size() + detail.size());
  b.append(kEntryContext);
  putU64(b, static_cast<std::uint64_t>(seq));
  putU64(b, static_cast<std::uint64_t>(atMs));
  putChunk(b, kind);
  putChunk(b, actor);
  putChunk(b, chars(device));
  putChunk(b, detail);
  b.append(reinterpret_cast<const char*>(changesHash.data()), changesHash.size());
  putChunk(b, chars(rowsHash));
  return b;
}

std::string signedMessage(std::int64_t seq, std::span<const unsigned char> hash) {
  std::string m(kSignContext);
  putU64(m, static_cast<std::uint64_t>(seq));
  m.append(chars(hash));
  return m;
}

Hash hashColumn(const sql::Statement& st, int column) {
  const auto b = st.columnBlob(column);
  if (b.size() != 32) {
    throw Error(Errc::corrupt, "a stored audit hash is damaged");
  }
  Hash h{};
  std::copy(b.begin(), b.end(), h.begin());
  return h;
}

std::string uuidText(std::span<const unsigned char> b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      s += '-';
    }
    s += kHex[b[i] >> 4];
    s += kHex[b[i] & 15];
  }
  return s;
}

} // namespace

RowsHash::RowsHash() {
  crypto_generichash_init(&state_, nullptr, 0, 32);
  crypto_generichash_update(&state_, bytesOf(kRowsContext).data(), kRowsContext.size());
}

void RowsHash::add(const ChangeRow& row) {
  std::string b;
  b.reserve(160 + row.recordType.size() + row.field.size() + row.value.size() +
            row.resolves.size());
  putU64(b, static_cast<std::uint64_t>(row.seq));
  putChunk(b, chars(row.changeId));
  putChunk(b, chars(row.recordId));
  putChunk(b, row.recordType);
  putChunk(b, row.field);
  putChunk(b, chars(row.value));
  putU64(b, static_cast<std::uint64_t>(row.hlc));
  putChunk(b, chars(row.deviceId));
  putU64(b, static_cast<std::uint64_t>(row.baseHlc));
  putChunk(b, chars(row.baseDeviceId));
  putChunk(b, chars(row.resolves));
  putU64(b, static_cast<std::uint64_t>(row.receivedMs));
  putChunk(b, row.mergeOutcome);
  crypto_generichash_update(&state_, bytesOf(b).data(), b.size());
}

void RowsHash::add(const WriteRow& row) {
  std::string b;
  b.reserve(96 + row.recordType.size() + row.ownerTeam.size() + row.fields.size());
  b.push_back('W'); // never the first byte of a change row (a big-endian seq < 2^56)
  putU64(b, static_cast<std::uint64_t>(row.seq));
  putChunk(b, chars(row.recordId));
  putChunk(b, row.recordType);
  putU64(b, static_cast<std::uint64_t>(row.hlc));
  putChunk(b, chars(row.deviceId));
  putChunk(b, row.ownerTeam);
  putU64(b, static_cast<std::uint64_t>(row.receivedMs));
  putChunk(b, chars(row.fields));
  crypto_generichash_update(&state_, bytesOf(b).data(), b.size());
}

WriteRow writeRowFrom(const sql::Statement& st, int first) {
  WriteRow r;
  r.seq = st.columnInt(first);
  r.recordId = st.columnBlob(first + 1);
  r.recordType = st.columnText(first + 2);
  r.hlc = st.columnInt(first + 3);
  r.deviceId = st.columnBlob(first + 4);
  r.ownerTeam = st.columnText(first + 5);
  r.receivedMs = st.columnInt(first + 6);
  r.fields = st.columnBlob(first + 7);
  return r;
}

std::array<std::uint8_t, 32> RowsHash::finish() {
  Hash h{};
  crypto_generichash_final(&state_, h.data(), h.size());
  return h;
}

ChangeRow rowFrom(const sql::Statement& st, int first) {
  ChangeRow r;
  r.seq = st.columnInt(first);
  r.changeId = st.columnBlob(first + 1);
  r.recordId = st.columnBlob(first + 2);
  r.recordType = st.columnText(first + 3);
  r.field = st.columnText(first + 4);
  r.value = st.columnBlob(first + 5);
  r.hlc = st.columnInt(first + 6);
  r.deviceId = st.columnBlob(first + 7);
  r.baseHlc = st.columnInt(first + 8);
  r.baseDeviceId = st.columnBlob(first + 9);
  r.resolves = st.columnBlob(first + 10);
  r.receivedMs = st.columnInt(first + 11);
  r.mergeOutcome = st.columnText(first + 12);
  return r;
}

void append(StatementCache& statements, const Signer& signer, AuditEntry& entry,
            ChangeList format) {
  Hash previous{};
  std::int64_t last = 0;
  {
    auto head = statements.use("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
    if (head->step()) {
      last = head->columnInt(0);
      previous = hashColumn(*head, 1);
    }
  }
  entry.seq = last + 1;
  // decodeRuns reads at most one batch's changes; a longer list keeps the explicit form.
  const bool runs =
      format == ChangeList::writeRuns && entry.changes.size() <= protocol::limits::kChanges;
  const std::string changes = runs ? encodeRuns(entry.changes) : encodeChanges(entry.changes);
  const std::string_view kind = auditKindName(entry.kind);
  const std::string canonical =
      canonicalEntry(entry.seq, entry.atMs, kind, entry.actor, entry.device, entry.detail,
                     blake2b(runs ? kRunsContext : kChangesContext, changes), entry.rowsHash);
  entry.hash = chain(previous, canonical);
  const std::string message = signedMessage(entry.seq, entry.hash);
  std::array<std::uint8_t, crypto_sign_BYTES> signature{};
  crypto_sign_detached(signature.data(), nullptr, bytesOf(message).data(), message.size(),
                       signer.secretKey.data());
  auto ins = statements.use("INSERT INTO audit_log(seq, at_ms, kind, actor, device_id, detail,"
                            " changes, rows_hash, hash, signature, changes_format)"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  ins->bind(1, entry.seq)
      .bind(2, entry.atMs)
      .bind(3, kind)
      .bind(4, entry.actor)
      .bindBlob(5, entry.device)
      .bind(6, entry.detail)
      .bindBlob(7, bytesOf(changes))
      .bindBlob(8, entry.rowsHash)
      .bindBlob(9, entry.hash)
      .bindBlob(10, signature)
      .bind(11, static_cast<std::int64_t>(runs ? ChangeList::writeRuns : ChangeList::explicitIds));
  ins->run();
}

namespace {

/// The ids of the changes stored in write `seq`, in its row's order (empty when the
/// row is gone).
std::vector<protocol::Uuid> writeIds(sql::Database& db, std::int64_t seq) {
  sql::Statement st(db, "SELECT record_id, hlc, device_id, fields FROM writes WHERE seq = ?1");
  st.bind(1, seq);
  std::vector<protocol::Uuid> ids;
  if (!st.step()) {
    return ids;
  }
  const auto record = st.columnBlob(0);
  const auto device = st.columnBlob(2);
  if (record.size() != 16 || device.size() != 16) {
    return ids;
  }
  WriteKey key;
  std::copy(record.begin(), record.end(), key.recordId.bytes.begin());
  std::copy(device.begin(), device.end(), key.deviceId.bytes.begin());
  key.hlc = sync::Hlc{static_cast<std::uint64_t>(st.columnInt(1))};
  for (const StoredField& f : decodeStoredFields(chars(st.columnBlob(3)), key)) {
    ids.push_back(f.changeId.bytes);
  }
  return ids;
}

/// A stored change list, the ids of runs read from their write rows.
std::optional<std::vector<AuditedChange>>
readChangeList(sql::Database& db, std::span<const unsigned char> blob, std::int64_t format) {
  if (format == static_cast<std::int64_t>(ChangeList::explicitIds)) {
    return decodeChanges(blob);
  }
  std::vector<bool> fromRow;
  auto changes = format == static_cast<std::int64_t>(ChangeList::writeRuns)
                     ? decodeRuns(blob, fromRow)
                     : std::nullopt;
  if (!changes) {
    return std::nullopt;
  }
  std::int64_t seq = 0;
  std::vector<protocol::Uuid> ids;
  std::size_t next = 0;
  for (std::size_t i = 0; i < changes->size(); ++i) {
    AuditedChange& c = (*changes)[i];
    if (!fromRow[i]) {
      continue;
    }
    if (c.seq != seq) {
      seq = c.seq;
      ids = writeIds(db, seq);
      next = 0;
    }
    if (next == ids.size()) {
      return std::nullopt; // the row is gone or holds fewer changes: `audit verify` says more
    }
    c.changeId = ids[next++];
  }
  return changes;
}

} // namespace

std::vector<AuditEntry> list(sql::Database& db, std::int64_t afterSeq, std::size_t limit) {
  sql::Statement st(db, "SELECT seq, at_ms, kind, actor, device_id, detail, changes, rows_hash,"
                        " hash, changes_format FROM audit_log WHERE seq > ?1 ORDER BY seq"
                        " LIMIT ?2");
  st.bind(1, afterSeq).bind(2, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
  std::vector<AuditEntry> out;
  while (st.step()) {
    AuditEntry e;
    e.seq = st.columnInt(0);
    e.atMs = st.columnInt(1);
    const auto kind = parseAuditKind(st.columnText(2));
    auto changes = readChangeList(db, st.columnBlob(6), st.columnInt(9));
    const auto device = st.columnBlob(4);
    if (!kind || !changes || device.size() != 16) {
      throw Error(Errc::corrupt, "audit entry " + std::to_string(e.seq) +
                                     " is damaged; run 'outpostctl audit verify'");
    }
    e.kind = *kind;
    e.actor = std::string(st.columnText(3));
    std::copy(device.begin(), device.end(), e.device.begin());
    e.detail = std::string(st.columnText(5));
    e.changes = std::move(*changes);
    e.rowsHash = hashColumn(st, 7);
    e.hash = hashColumn(st, 8);
    out.push_back(std::move(e));
  }
  return out;
}

AuditVerification verify(sql::Database& db, const std::array<std::uint8_t, 32>& publicKey) {
  AuditVerification v;
  const auto fail = [&](std::int64_t seq, std::string problem) {
    v.intact = false;
    v.firstBadSeq = seq;
    v.problem = std::move(problem);
    return v;
  };

  // Entries up to the legacy head stored change rows (now `legacy_changes`, kept as
  // they were); later ones stored write rows. Each log is walked once, in sequence
  // order, alongside the entries: every row must be the next one some entry stored,
  // and no entry may name a missing row.
  std::int64_t legacyHead = 0;
  {
    sql::Statement head(db, "SELECT value FROM server_settings WHERE key = ?1");
    head.bind(1, kLegacyHeadSetting);
    if (head.step()) {
      legacyHead = std::stoll(std::string(head.columnText(0)));
    }
  }
  const bool hasLegacy = db.queryInt("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND"
                                     " name = 'legacy_changes'") > 0;
  std::optional<sql::Statement> legacy;
  bool legacyPending = false;
  if (hasLegacy) {
    legacy.emplace(db, "SELECT " + std::string(kRowColumns) + " FROM legacy_changes ORDER BY seq");
    legacyPending = legacy->step();
  }
  sql::Statement writes(db, "SELECT " + std::string(kWriteColumns) + " FROM writes ORDER BY seq");
  bool writePending = writes.step();

  sql::Statement st(db, "SELECT seq, at_ms, kind, actor, device_id, detail, changes, rows_hash,"
                        " hash, signature, changes_format FROM audit_log ORDER BY seq");
  Hash previous{};
  std::int64_t expected = 1;
  while (st.step()) {
    const std::int64_t seq = st.columnInt(0);
    if (seq != expected) {
      return fail(expected, seq > expected ? "entry " + std::to_string(expected) +
                                                 " is missing: the chain skips from " +
                                                 std::to_string(expected - 1) + " to " +
                                                 std::to_string(seq) + " (deleted)"
                                           : "entries out of order");
    }
    const auto device = st.columnBlob(4);
    const auto changesBlob = st.columnBlob(6);
    const auto rowsHash = st.columnBlob(7);
    const auto stored = st.columnBlob(8);
    const auto signature = st.columnBlob(9);
    if (device.size() != 16 || rowsHash.size() != 32 || stored.size() != 32 ||
        signature.size() != crypto_sign_BYTES) {
      return fail(seq, "entry " + std::to_string(seq) + " is malformed (altered)");
    }
    const std::int64_t format = st.columnInt(10);
    const bool runs = format == static_cast<std::int64_t>(ChangeList::writeRuns);
    if (!runs && format != static_cast<std::int64_t>(ChangeList::explicitIds)) {
      return fail(seq,
                  "entry " + std::to_string(seq) + " has an unknown change list format (altered)");
    }
    const std::string canonical = canonicalEntry(
        seq, st.columnInt(1), st.columnText(2), st.columnText(3), device, st.columnText(5),
        blake2b(runs ? kRunsContext : kChangesContext, chars(changesBlob)), rowsHash);
    const Hash hash = chain(previous, canonical);
    if (sodium_memcmp(hash.data(), stored.data(), hash.size()) != 0) {
      return fail(seq, "entry " + std::to_string(seq) + " (" + std::string(st.columnText(2)) +
                           ") does not match its hash: the entry was altered, or one before it "
                           "was replaced");
    }
    const std::string message = signedMessage(seq, stored);
    if (crypto_sign_verify_detached(signature.data(), bytesOf(message).data(), message.size(),
                                    publicKey.data()) != 0) {
      return fail(seq, "entry " + std::to_string(seq) +
                           " is not signed by this server's audit key (forged or re-signed)");
    }
    ++v.signaturesChecked;

    std::vector<bool> fromRow; // runs: the id is the row's (nothing to compare)
    const auto changes = runs ? decodeRuns(changesBlob, fromRow) : decodeChanges(changesBlob);
    if (!changes || (runs && seq <= legacyHead)) {
      return fail(seq, "entry " + std::to_string(seq) + " has a malformed change list (altered)");
    }
    const bool legacyEntry = seq <= legacyHead;
    sql::Statement* rows = legacyEntry ? (legacy ? &*legacy : nullptr) : &writes;
    bool& rowPending = legacyEntry ? legacyPending : writePending;
    const std::string_view log = legacyEntry ? "legacy change log" : "write log";
    // The rows this entry stored must be exactly the next ones of its log.
    const auto nextRow = [&](std::int64_t wanted) -> std::optional<std::string> {
      if (rows == nullptr) {
        return "seq " + std::to_string(wanted) + " of entry " + std::to_string(seq) +
               " is missing: the " + std::string(log) + " was deleted after the fact";
      }
      if (rowPending && rows->columnInt(0) < wanted) {
        return "seq " + std::to_string(rows->columnInt(0)) + " of the " + std::string(log) +
               " is in no audit entry: added after the fact (found before entry " +
               std::to_string(seq) + ")";
      }
      if (!rowPending || rows->columnInt(0) > wanted) {
        return "seq " + std::to_string(wanted) + " of entry " + std::to_string(seq) +
               " is missing from the " + std::string(log) + " (deleted after the fact)";
      }
      return std::nullopt;
    };
    RowsHash recomputed;
    std::int64_t rowSeq = 0;            // the write row being matched
    std::vector<StoredField> rowFields; // its fields
    std::size_t matched = 0;            // how many of them the entry listed so far
    const auto rowIncomplete = [&] {
      return "write seq " + std::to_string(rowSeq) + " holds changes that entry " +
             std::to_string(seq) + " does not list: altered after the fact";
    };
    for (std::size_t i = 0; i < changes->size(); ++i) {
      const AuditedChange& c = (*changes)[i];
      if (c.seq == 0) {
        continue; // duplicate or rejected: nothing was stored
      }
      if (legacyEntry) {
        if (auto problem = nextRow(c.seq)) {
          return fail(seq, "change " + *problem);
        }
        const ChangeRow row = rowFrom(*rows, 0);
        if (row.changeId.size() != 16 ||
            !std::equal(row.changeId.begin(), row.changeId.end(), c.changeId.begin())) {
          return fail(seq, "change seq " + std::to_string(c.seq) + " of entry " +
                               std::to_string(seq) + " has another change id (" +
                               uuidText(row.changeId) + ") than the one recorded (" +
                               uuidText(c.changeId) + "): altered after the fact");
        }
        recomputed.add(row);
        ++v.changesChecked;
        rowPending = rows->step();
        continue;
      }
      if (c.seq != rowSeq) {
        if (rowSeq != 0 && matched != rowFields.size()) {
          return fail(seq, rowIncomplete());
        }
        if (auto problem = nextRow(c.seq)) {
          return fail(seq, "write " + *problem);
        }
        const WriteRow row = writeRowFrom(*rows, 0);
        recomputed.add(row);
        WriteKey key;
        if (row.recordId.size() != 16 || row.deviceId.size() != 16) {
          return fail(seq, "write seq " + std::to_string(c.seq) + " is malformed (altered)");
        }
        std::copy(row.recordId.begin(), row.recordId.end(), key.recordId.bytes.begin());
        std::copy(row.deviceId.begin(), row.deviceId.end(), key.deviceId.bytes.begin());
        key.hlc = sync::Hlc{static_cast<std::uint64_t>(row.hlc)};
        try {
          rowFields = decodeStoredFields(chars(row.fields), key);
        } catch (const Error&) {
          return fail(seq, "write seq " + std::to_string(c.seq) + " is malformed (altered)");
        }
        rowSeq = c.seq;
        matched = 0;
        rowPending = rows->step();
      }
      if (matched == rowFields.size() ||
          (!(runs && fromRow[i]) && rowFields[matched].changeId.bytes != c.changeId)) {
        return fail(seq, "write seq " + std::to_string(c.seq) + " of entry " + std::to_string(seq) +
                             " does not hold change " + uuidText(c.changeId) +
                             " where the entry lists it: altered after "
                             "the fact");
      }
      ++matched;
      ++v.changesChecked;
    }
    if (rowSeq != 0 && matched != rowFields.size()) {
      return fail(seq, rowIncomplete());
    }
    const Hash rowsNow = recomputed.finish();
    if (sodium_memcmp(rowsNow.data(), rowsHash.data(), rowsNow.size()) != 0) {
      return fail(seq, "a row stored by entry " + std::to_string(seq) +
                           " was altered after the fact (its content no longer matches)");
    }
    if (st.columnText(2) == auditKindName(AuditKind::push)) {
      ++v.pushes;
    }
    previous = hash;
    v.headSeq = seq;
    v.headHash = hash;
    ++v.entries;
    ++expected;
  }
  for (auto [pending, rows, log] :
       {std::tuple{legacyPending, legacy ? &*legacy : nullptr,
                   std::string_view("legacy change log")},
        std::tuple{writePending, &writes, std::string_view("write log")}}) {
    if (pending) {
      return fail(0, "seq " + std::to_string(rows->columnInt(0)) + " of the " + std::string(log) +
                         " is in no audit entry: added after the fact (after the last entry, " +
                         std::to_string(v.headSeq) + ")");
    }
  }
  return v;
}

} // namespace outpost::server::audit
