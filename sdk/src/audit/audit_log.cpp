// The hash-chained, checkpoint-signed audit trail.

#include "../model/record_store_impl.hpp"

#include <outpost/error.hpp>

#include <sodium.h>

#include <algorithm>
#include <array>
#include <optional>

namespace outpost::model {

namespace {

constexpr std::string_view kSignContext = "outpost-audit-checkpoint-v1";

/// `v` in `width` bytes (at most 8), big-endian.
void putBigEndian(std::string& out, std::uint64_t v, int width) {
  std::array<char, 8> b{};
  for (int k = width - 1; k >= 0; --k) {
    b[static_cast<std::size_t>(k)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  out.append(b.data(), static_cast<std::size_t>(width));
}

void putU64(std::string& out, std::uint64_t v) { putBigEndian(out, v, 8); }

/// The number in the first `width` bytes of `in`, big-endian (`in` holds them).
std::uint64_t getBigEndian(std::span<const unsigned char> in, std::size_t width) {
  std::uint64_t v = 0;
  for (std::size_t k = 0; k < width; ++k) {
    v = (v << 8) | in[k];
  }
  return v;
}

void putChunk(std::string& out, std::string_view s) {
  putU64(out, s.size());
  out.append(s);
}

/// The canonical bytes of an event, in `b` (replacing what it held; a buffer
/// kept across events saves an allocation each): fixed-width numbers and
/// length-prefixed text, so no two different events have the same bytes.
void canonicalBytes(std::string& b, std::int64_t seq, std::int64_t atMs, std::string_view actor,
                    const Uuid& device, AuditAction action, const Uuid& record,
                    std::string_view type, std::string_view detail) {
  b.clear();
  b.reserve(96 + actor.size() + type.size() + detail.size());
  b.append("outpost-audit-v1");
  putU64(b, static_cast<std::uint64_t>(seq));
  putU64(b, static_cast<std::uint64_t>(atMs));
  putChunk(b, actor);
  b.append(reinterpret_cast<const char*>(device.bytes.data()), device.bytes.size());
  b.push_back(static_cast<char>(action));
  b.append(reinterpret_cast<const char*>(record.bytes.data()), record.bytes.size());
  putChunk(b, type);
  putChunk(b, detail);
}

std::array<std::uint8_t, 32> chainHash(const std::array<std::uint8_t, 32>& prev,
                                       std::string_view bytes) {
  std::array<std::uint8_t, 32> h{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, h.size());
  crypto_generichash_update(&st, prev.data(), prev.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(bytes.data()),
                            bytes.size());
  crypto_generichash_final(&st, h.data(), h.size());
  return h;
}

std::string checkpointMessage(std::int64_t seq, const std::array<std::uint8_t, 32>& hash) {
  std::string m(kSignContext);
  putU64(m, static_cast<std::uint64_t>(seq));
  m.append(reinterpret_cast<const char*>(hash.data()), hash.size());
  return m;
}

std::array<std::uint8_t, 32> hashColumn(const sql::Statement& s, int column) {
  const auto b = s.columnBlob(column);
  if (b.size() != 32) {
    throw Error(Errc::corrupt, "a stored audit hash is malformed");
  }
  std::array<std::uint8_t, 32> h{};
  std::copy(b.begin(), b.end(), h.begin());
  return h;
}

} // namespace

void createAuditTables(sql::Database& db) {
  db.exec("CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, "
          "actor TEXT NOT NULL, device BLOB NOT NULL, action INTEGER NOT NULL, record BLOB NOT "
          "NULL, type TEXT NOT NULL, detail TEXT NOT NULL, hash BLOB NOT NULL, sig BLOB, "
          "earlier BLOB);"
          "CREATE TABLE IF NOT EXISTS device_keys(name TEXT PRIMARY KEY, secret BLOB NOT NULL, "
          "public BLOB NOT NULL) WITHOUT ROWID;");
  // A trail begun before rows held several events has no `earlier` column.
  if (db.queryInt("SELECT count(*) FROM pragma_table_info('audit') WHERE name = 'earlier'") == 0) {
    db.exec("ALTER TABLE audit ADD COLUMN earlier BLOB");
  }
}

void loadAuditKey(RecordStore::Impl& store, sql::Database& db) {
  sql::Statement s(db, "SELECT secret, public FROM device_keys WHERE name = 'audit'");
  if (s.step()) {
    const auto secret = s.columnBlob(0);
    const auto pub = s.columnBlob(1);
    if (secret.size() != crypto_sign_SECRETKEYBYTES || pub.size() != crypto_sign_PUBLICKEYBYTES) {
      throw Error(Errc::corrupt, "the stored audit signing key is malformed");
    }
    store.signingKey = SecretBytes::copyOf(secret);
    std::copy(pub.begin(), pub.end(), store.publicKey.begin());
    return;
  }
  store.signingKey = SecretBytes(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(store.publicKey.data(), store.signingKey.data());
  sql::Statement(db, "INSERT INTO device_keys(name, secret, public) VALUES ('audit', ?1, ?2)")
      .bindBlob(1, store.signingKey.bytes())
      .bindBlob(2, store.publicKey)
      .run();
}

namespace {

void loadTail(RecordStore::Impl& store, sql::Database& db, AuditTail& tail) {
  if (tail.loaded) {
    return;
  }
  StatementUse s(store.stmt(db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
  if (s->step()) {
    tail.seq = s->columnInt(0); // a row's seq is the position of its (last) event
    tail.hash = hashColumn(*s, 1);
  }
  tail.loaded = true;
}

/// Whether the events at positions first..last include a checkpoint (a multiple of
/// `every`): the row that holds them then carries a signature of its chain head.
bool holdsCheckpoint(std::int64_t first, std::int64_t last, unsigned every) noexcept {
  return every > 0 && last / every > (first - 1) / every;
}

/// Appends one row: the event `e` at position `last` and the events before it
/// (`earlier`, from position tail.seq + 1; encoded by encodeEvents). `head` is the
/// chain's hash after `e`.
void insertRow(RecordStore::Impl& store, sql::Database& db, AuditTail& tail, const PendingEvent& e,
               const std::string* earlier, std::int64_t last,
               const std::array<std::uint8_t, 32>& head) {
  const std::int64_t first = tail.seq + 1;
  StatementUse ins(store.stmt(db, "INSERT INTO audit(seq, at, actor, device, action, record, "
                                  "type, detail, hash, sig, earlier) VALUES (?1, ?2, ?3, ?4, ?5, "
                                  "?6, ?7, ?8, ?9, ?10, ?11)"));
  ins->bind(1, last)
      .bind(2, e.atMs)
      .bindStatic(3, store.options.workerId)
      .bindBlob(4, uuidBytes(store.device))
      .bind(5, static_cast<std::int64_t>(e.action))
      .bindBlob(6, uuidBytes(e.record))
      .bindStatic(7, e.type)
      .bindStatic(8, e.detail);
  ins->bindBlob(9, head);
  if (holdsCheckpoint(first, last, store.options.auditSignEvery)) {
    const std::string m = checkpointMessage(last, head);
    std::array<std::uint8_t, crypto_sign_BYTES> sig{};
    crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(m.data()),
                         m.size(), store.signingKey.data());
    ins->bindBlob(10, sig);
  } else {
    ins->bindNull(10);
  }
  if (earlier) {
    ins->bindBlob(
        11, std::span(reinterpret_cast<const unsigned char*>(earlier->data()), earlier->size()));
  } else {
    ins->bindNull(11);
  }
  ins->run();
  tail.seq = last;
  tail.hash = head;
}

/// Events per row at most.
constexpr std::size_t kEventsPerRow = 256;

void putText(std::string& out, std::string_view text) {
  putBigEndian(out, static_cast<std::uint32_t>(text.size()), 4);
  out.append(text);
}

/// The events of a row before its own (last) one, in order: for each, the time (8
/// bytes), the action (1), the record id (16), the type and the detail (each a
/// 4-byte length, then the text); numbers big-endian. The actor and the device are
/// the row's.
std::string encodeEvents(std::span<const PendingEvent> events) {
  std::string out;
  out.reserve(events.size() * 64);
  for (const PendingEvent& e : events) {
    putU64(out, static_cast<std::uint64_t>(e.atMs));
    out.push_back(static_cast<char>(e.action));
    out.append(reinterpret_cast<const char*>(e.record.bytes.data()), e.record.bytes.size());
    putText(out, e.type);
    putText(out, e.detail);
  }
  return out;
}

} // namespace

void appendAudit(WriteState& state, std::int64_t atMs, AuditAction action, const Uuid& record,
                 std::string_view recordType, std::string_view detail) {
  state.events.push_back({atMs, action, record, std::string(recordType), std::string(detail)});
}

void appendAuditEvents(RecordStore::Impl& store, sql::Database& db, WriteState& state) {
  if (state.events.empty()) {
    return;
  }
  AuditTail& tail = state.audit;
  loadTail(store, db, tail);
  std::span<const PendingEvent> events = state.events;
  while (!events.empty()) {
    const auto row = events.first(std::min(events.size(), kEventsPerRow));
    events = events.subspan(row.size());
    // Each is an event of the chain, hashed as it would be alone.
    std::int64_t seq = tail.seq;
    auto head = tail.hash;
    std::string bytes;
    for (const PendingEvent& e : row) {
      canonicalBytes(bytes, ++seq, e.atMs, store.options.workerId, store.device, e.action, e.record,
                     e.type, e.detail);
      head = chainHash(head, bytes);
    }
    const std::string earlier = encodeEvents(row.first(row.size() - 1));
    insertRow(store, db, tail, row.back(), row.size() > 1 ? &earlier : nullptr, seq, head);
  }
  state.events.clear();
}

std::string_view auditActionName(AuditAction action) noexcept {
  switch (action) {
  case AuditAction::view:
    return "view";
  case AuditAction::create:
    return "create";
  case AuditAction::edit:
    return "edit";
  case AuditAction::sign:
    return "sign";
  case AuditAction::share:
    return "share";
  case AuditAction::exportData:
    return "export";
  case AuditAction::receive:
    return "receive";
  case AuditAction::purge:
    return "purge";
  case AuditAction::resolve:
    return "resolve";
  }
  return "unknown";
}

namespace {

constexpr const char* kSelectEvents =
    "SELECT seq, at, actor, device, action, record, type, detail, hash, sig, earlier FROM "
    "audit WHERE seq > ?1 ORDER BY seq LIMIT ?2";

/// Reads a 4-byte length and that many bytes of text from the front of `in`.
bool takeText(std::span<const unsigned char>& in, std::string& out) {
  if (in.size() < 4) {
    return false;
  }
  const auto n = static_cast<std::size_t>(getBigEndian(in, 4));
  if (in.size() - 4 < n) {
    return false;
  }
  out.assign(reinterpret_cast<const char*>(in.data()) + 4, n);
  in = in.subspan(4 + n);
  return true;
}

/// One stored row's events, in order: the events it holds before its own (column
/// `earlier`), then the row's event, which is at position `seq`. Hashes are the
/// stored one for the row's event and none (zero) for the ones before it: the
/// caller chains them. Returns nullopt for a row that is malformed.
std::optional<std::vector<AuditEvent>> rowEvents(const sql::Statement& s) {
  AuditEvent own;
  own.seq = s.columnInt(0);
  own.atMs = s.columnInt(1);
  own.actor = std::string(s.columnText(2));
  const auto device = Uuid::fromBytes(s.columnBlob(3));
  own.action = static_cast<AuditAction>(s.columnInt(4));
  const auto record = Uuid::fromBytes(s.columnBlob(5));
  own.recordType = std::string(s.columnText(6));
  own.detail = std::string(s.columnText(7));
  const auto stored = s.columnBlob(8);
  if (!device || !record || stored.size() != own.hash.size()) {
    return std::nullopt;
  }
  own.device = *device;
  own.record = *record;
  std::copy(stored.begin(), stored.end(), own.hash.begin());
  own.signedCheckpoint = !s.columnIsNull(9);
  std::vector<AuditEvent> events;
  if (!s.columnIsNull(10)) {
    auto in = s.columnBlob(10);
    while (!in.empty()) {
      if (in.size() < 25) {
        return std::nullopt;
      }
      AuditEvent e;
      e.atMs = static_cast<std::int64_t>(getBigEndian(in, 8));
      e.action = static_cast<AuditAction>(in[8]);
      std::copy(in.begin() + 9, in.begin() + 25, e.record.bytes.begin());
      in = in.subspan(25);
      if (!takeText(in, e.recordType) || !takeText(in, e.detail)) {
        return std::nullopt;
      }
      e.actor = own.actor;
      e.device = own.device;
      events.push_back(std::move(e));
    }
    if (events.empty()) {
      return std::nullopt;
    }
  }
  const auto firstSeq = own.seq - static_cast<std::int64_t>(events.size());
  for (std::size_t k = 0; k < events.size(); ++k) {
    events[k].seq = firstSeq + static_cast<std::int64_t>(k);
  }
  events.push_back(std::move(own));
  return events;
}

/// The chain's hash after event `e`, given the hash before it.
std::array<std::uint8_t, 32> eventHash(const std::array<std::uint8_t, 32>& prev,
                                       const AuditEvent& e) {
  std::string bytes;
  canonicalBytes(bytes, e.seq, e.atMs, e.actor, e.device, e.action, e.record, e.recordType,
                 e.detail);
  return chainHash(prev, bytes);
}

} // namespace

std::vector<AuditEvent> AuditLog::events(std::int64_t afterSeq, std::size_t limit) {
  std::vector<AuditEvent> out;
  store_.read([&](sql::Database& db) {
    StatementUse s(store_.stmt(db, kSelectEvents));
    // Every row holds at least one event after afterSeq: `limit` rows are enough.
    s->bind(1, afterSeq).bind(2, static_cast<std::int64_t>(limit));
    std::optional<std::array<std::uint8_t, 32>> prev; // the hash before the row
    while (out.size() < limit && s->step()) {
      auto events = rowEvents(*s);
      if (!events) {
        throw Error(Errc::corrupt, "the audit trail holds a malformed event: run verify()");
      }
      if (events->size() > 1 && !prev) {
        // The events before the row's own chain from the row before it.
        StatementUse p(
            store_.stmt(db, "SELECT hash FROM audit WHERE seq < ?1 ORDER BY seq DESC LIMIT 1"));
        p->bind(1, events->front().seq);
        prev = p->step() ? hashColumn(*p, 0) : std::array<std::uint8_t, 32>{};
      }
      for (std::size_t k = 0; k + 1 < events->size(); ++k) {
        (*events)[k].hash = eventHash(*prev, (*events)[k]);
        prev = (*events)[k].hash;
      }
      prev = events->back().hash;
      for (AuditEvent& e : *events) {
        if (e.seq > afterSeq && out.size() < limit) {
          out.push_back(std::move(e));
        }
      }
    }
  });
  return out;
}

std::int64_t AuditLog::size() {
  std::int64_t n = 0;
  // Positions run 1, 2, 3, ... and a row's seq is the position of its last event.
  store_.read(
      [&](sql::Database& db) { n = db.queryInt("SELECT coalesce(max(seq), 0) FROM audit"); });
  return n;
}

std::array<std::uint8_t, 32> AuditLog::publicKey() { return store_.publicKey; }

void AuditLog::recordShare(const Uuid& record, std::string_view recordType,
                           std::string_view detailJson) {
  store_.write([&](sql::Database&, WriteState& state) {
    appendAudit(state, store_.clock.unixMillis(), AuditAction::share, record, recordType,
                detailJson);
  });
}

AuditVerification AuditLog::verify() {
  AuditVerification v;
  const auto fail = [&](std::int64_t seq, std::string problem) {
    v.intact = false;
    v.firstBadSeq = seq;
    v.problem = std::move(problem);
  };
  store_.read([&](sql::Database& db) {
    sql::Statement s(db, "SELECT seq, at, actor, device, action, record, type, detail, hash, "
                         "sig, earlier FROM audit ORDER BY rowid");
    std::array<std::uint8_t, 32> prev{};
    std::int64_t expected = 1;
    const unsigned every = store_.options.auditSignEvery;
    while (s.step()) {
      const auto events = rowEvents(s);
      if (!events) {
        fail(expected, "event malformed");
        return;
      }
      const std::int64_t first = events->front().seq;
      const std::int64_t last = events->back().seq;
      if (first != expected) {
        fail(expected, first > expected ? "event missing (the chain skips a position)"
                                        : "event out of order or inserted");
        return;
      }
      std::array<std::uint8_t, 32> hash = prev;
      for (const AuditEvent& e : *events) {
        hash = eventHash(hash, e);
      }
      // A row of several events is checked as a whole: a change to any shows here.
      if (sodium_memcmp(hash.data(), events->back().hash.data(), hash.size()) != 0) {
        fail(first, "event edited, removed before it, or reordered (hash does not chain)");
        return;
      }
      if (holdsCheckpoint(first, last, every)) {
        const auto sig = s.columnBlob(9);
        const std::string m = checkpointMessage(last, hash);
        if (sig.size() != crypto_sign_BYTES ||
            crypto_sign_verify_detached(sig.data(),
                                        reinterpret_cast<const unsigned char*>(m.data()), m.size(),
                                        store_.publicKey.data()) != 0) {
          fail(last, "checkpoint signature missing or invalid");
          return;
        }
        ++v.signaturesChecked;
      } else if (!s.columnIsNull(9)) {
        fail(last, "unexpected signature");
        return;
      }
      prev = hash;
      v.eventsChecked += static_cast<std::int64_t>(events->size());
      expected = last + 1;
    }
  });
  return v;
}

} // namespace outpost::model
