// The hash-chained, checkpoint-signed audit trail.

#include "../model/record_store_impl.hpp"

#include <outpost/error.hpp>

#include <sodium.h>

namespace outpost::model {

namespace {

constexpr std::string_view kSignContext = "outpost-audit-checkpoint-v1";

void putU64(std::string& out, std::uint64_t v) {
  for (int k = 7; k >= 0; --k) {
    out.push_back(static_cast<char>((v >> (8 * k)) & 0xFF));
  }
}

void putChunk(std::string& out, std::string_view s) {
  putU64(out, s.size());
  out.append(s);
}

/// The canonical bytes of an event: fixed-width numbers and length-prefixed text,
/// so no two different events have the same bytes.
std::string canonicalBytes(std::int64_t seq, std::int64_t atMs, std::string_view actor,
                           const Uuid& device, AuditAction action, const Uuid& record,
                           std::string_view type, std::string_view detail) {
  std::string b;
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
  return b;
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
          "NULL, type TEXT NOT NULL, detail TEXT NOT NULL, hash BLOB NOT NULL, sig BLOB);"
          "CREATE TABLE IF NOT EXISTS device_keys(name TEXT PRIMARY KEY, secret BLOB NOT NULL, "
          "public BLOB NOT NULL) WITHOUT ROWID;");
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

void appendAudit(RecordStore::Impl& store, sql::Database& db, WriteState& state, std::int64_t atMs,
                 AuditAction action, const Uuid& record, std::string_view recordType,
                 std::string_view detail) {
  AuditTail& tail = state.audit;
  if (!tail.loaded) {
    StatementUse s(store.stmt(db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
    if (s->step()) {
      tail.seq = s->columnInt(0);
      tail.hash = hashColumn(*s, 1);
    }
    tail.loaded = true;
  }
  const std::int64_t seq = tail.seq + 1;
  const std::string bytes = canonicalBytes(seq, atMs, store.options.workerId, store.device, action,
                                           record, recordType, detail);
  const auto hash = chainHash(tail.hash, bytes);
  StatementUse ins(store.stmt(db, "INSERT INTO audit(seq, at, actor, device, action, record, "
                                  "type, detail, hash, sig) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                                  "?8, ?9, ?10)"));
  ins->bind(1, seq)
      .bind(2, atMs)
      .bindStatic(3, store.options.workerId)
      .bindBlob(4, uuidBytes(store.device))
      .bind(5, static_cast<std::int64_t>(action))
      .bindBlob(6, uuidBytes(record))
      .bindStatic(7, recordType)
      .bindStatic(8, detail)
      .bindBlob(9, hash);
  const unsigned every = store.options.auditSignEvery;
  if (every > 0 && seq % every == 0) {
    const std::string m = checkpointMessage(seq, hash);
    std::array<std::uint8_t, crypto_sign_BYTES> sig{};
    crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(m.data()),
                         m.size(), store.signingKey.data());
    ins->bindBlob(10, sig);
  } else {
    ins->bindNull(10);
  }
  ins->run();
  tail.seq = seq;
  tail.hash = hash;
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
    "SELECT seq, at, actor, device, action, record, type, detail, hash, sig FROM audit "
    "WHERE seq > ?1 ORDER BY seq LIMIT ?2";

AuditEvent eventFromRow(const sql::Statement& s) {
  AuditEvent e;
  e.seq = s.columnInt(0);
  e.atMs = s.columnInt(1);
  e.actor = std::string(s.columnText(2));
  e.device = uuidColumn(s, 3);
  e.action = static_cast<AuditAction>(s.columnInt(4));
  e.record = uuidColumn(s, 5);
  e.recordType = std::string(s.columnText(6));
  e.detail = std::string(s.columnText(7));
  e.hash = hashColumn(s, 8);
  e.signedCheckpoint = !s.columnIsNull(9);
  return e;
}

} // namespace

std::vector<AuditEvent> AuditLog::events(std::int64_t afterSeq, std::size_t limit) {
  std::vector<AuditEvent> out;
  store_.read([&](sql::Database& db) {
    StatementUse s(store_.stmt(db, kSelectEvents));
    s->bind(1, afterSeq).bind(2, static_cast<std::int64_t>(limit));
    while (s->step()) {
      out.push_back(eventFromRow(*s));
    }
  });
  return out;
}

std::int64_t AuditLog::size() {
  std::int64_t n = 0;
  store_.read([&](sql::Database& db) { n = db.queryInt("SELECT count(*) FROM audit"); });
  return n;
}

std::array<std::uint8_t, 32> AuditLog::publicKey() { return store_.publicKey; }

void AuditLog::recordShare(const Uuid& record, std::string_view recordType,
                           std::string_view detailJson) {
  store_.write([&](sql::Database& db, WriteState& state) {
    appendAudit(store_, db, state, store_.clock.unixMillis(), AuditAction::share, record,
                recordType, detailJson);
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
    sql::Statement s(db, "SELECT seq, at, actor, device, action, record, type, detail, hash, sig "
                         "FROM audit ORDER BY rowid");
    std::array<std::uint8_t, 32> prev{};
    std::int64_t expected = 1;
    const unsigned every = store_.options.auditSignEvery;
    while (s.step()) {
      const std::int64_t seq = s.columnInt(0);
      if (seq != expected) {
        fail(expected, seq > expected ? "event missing (the chain skips a position)"
                                      : "event out of order or inserted");
        return;
      }
      const auto device = Uuid::fromBytes(s.columnBlob(3));
      const auto record = Uuid::fromBytes(s.columnBlob(5));
      const auto stored = s.columnBlob(8);
      if (!device || !record || stored.size() != 32) {
        fail(seq, "event malformed");
        return;
      }
      const std::string bytes = canonicalBytes(seq, s.columnInt(1), s.columnText(2), *device,
                                               static_cast<AuditAction>(s.columnInt(4)), *record,
                                               s.columnText(6), s.columnText(7));
      const auto hash = chainHash(prev, bytes);
      if (sodium_memcmp(hash.data(), stored.data(), hash.size()) != 0) {
        fail(seq, "event edited, removed before it, or reordered (hash does not chain)");
        return;
      }
      const bool checkpoint = every > 0 && seq % every == 0;
      if (checkpoint) {
        const auto sig = s.columnBlob(9);
        const std::string m = checkpointMessage(seq, hash);
        if (sig.size() != crypto_sign_BYTES ||
            crypto_sign_verify_detached(sig.data(),
                                        reinterpret_cast<const unsigned char*>(m.data()), m.size(),
                                        store_.publicKey.data()) != 0) {
          fail(seq, "checkpoint signature missing or invalid");
          return;
        }
        ++v.signaturesChecked;
      } else if (!s.columnIsNull(9)) {
        fail(seq, "unexpected signature");
        return;
      }
      prev = hash;
      ++v.eventsChecked;
      ++expected;
    }
  });
  return v;
}

} // namespace outpost::model
