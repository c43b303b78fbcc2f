#include "outpost/protocol/enrollment.hpp"

#include "outpost/context.hpp"
#include "outpost/error.hpp"

#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace outpost::protocol {

namespace {

constexpr std::string_view kPayloadPrefix = "outpost-enroll:v1:";
constexpr std::string_view kCrockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr std::size_t kCodeChars = 16;
constexpr std::string_view kCodeHashContext = "outpost enrollment code v1";

std::int64_t millis(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

void requireId(std::string_view id, const char* what) {
  if (id.empty() || id.size() > limits::kShortText) {
    throw Error(Errc::invalid_argument, std::string(what) + " must be 1..256 bytes");
  }
}

std::string grouped(std::string_view canonical16) {
  std::string out;
  for (std::size_t i = 0; i < canonical16.size(); ++i) {
    if (i != 0 && i % 4 == 0) {
      out.push_back('-');
    }
    out.push_back(canonical16[i]);
  }
  return out;
}

bool validHost(std::string_view host) {
  if (host.empty() || host.size() > 253) {
    return false;
  }
  if (host.front() == '[') { // IPv6 literal
    return host.size() > 2 && host.back() == ']' &&
           std::all_of(host.begin() + 1, host.end() - 1, [](char c) {
             return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
           });
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
  });
}

Uuid randomUuid() {
  Uuid u{};
  randombytes_buf(u.data(), u.size());
  u[6] = static_cast<std::uint8_t>((u[6] & 0x0F) | 0x40); // version 4
  u[8] = static_cast<std::uint8_t>((u[8] & 0x3F) | 0x80); // RFC 4122 variant
  return u;
}

std::span<const std::uint8_t> blob(const auto& a) { return {a.data(), a.size()}; }

template <std::size_t N>
std::array<std::uint8_t, N> fixed(std::span<const unsigned char> b, const char* what) {
  if (b.size() != N) {
    throw Error(Errc::corrupt, std::string("a stored ") + what + " has the wrong size");
  }
  std::array<std::uint8_t, N> a{};
  std::copy(b.begin(), b.end(), a.begin());
  return a;
}

} // namespace

// ---------------------------------------------------------------------------
// base64url and payloads

std::string toBase64Url(std::span<const std::uint8_t> bytes) {
  constexpr int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), variant);
  out.resize(out.size() - 1); // the encoder's terminating NUL
  return out;
}

Bytes fromBase64Url(std::string_view text) {
  Bytes out(text.size() * 3 / 4 + 1);
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size()) {
    throw Error(Errc::invalid_argument, "not valid base64url");
  }
  out.resize(len);
  if (toBase64Url(out) != text) { // refuse non-canonical trailing bits
    throw Error(Errc::invalid_argument, "not canonical base64url");
  }
  return out;
}

std::string canonicalEnrollmentCode(std::string_view typed) {
  std::string out;
  for (char c : typed) {
    if (c == '-' || c == ' ') {
      continue;
    }
    char u = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (u == 'O') {
      u = '0';
    } else if (u == 'I' || u == 'L') {
      u = '1';
    }
    if (kCrockford.find(u) == std::string_view::npos || out.size() == kCodeChars) {
      throw Error(Errc::invalid_argument,
                  "an enrollment code is 16 letters and digits; check what was typed");
    }
    out.push_back(u);
  }
  if (out.size() != kCodeChars) {
    throw Error(Errc::invalid_argument,
                "an enrollment code is 16 letters and digits; check what was typed");
  }
  return grouped(out);
}

std::string formatEnrollmentPayload(const EnrollmentPayload& payload) {
  if (!validHost(payload.host)) {
    throw Error(Errc::invalid_argument, "the server host is not a valid name or address");
  }
  if (payload.port == 0) {
    throw Error(Errc::invalid_argument, "the server port must be 1..65535");
  }
  return std::string(kPayloadPrefix) + payload.host + ":" + std::to_string(payload.port) + ":" +
         toBase64Url(payload.serverKey) + ":" + canonicalEnrollmentCode(payload.code);
}

EnrollmentPayload parseEnrollmentPayload(std::string_view text) {
  // Trailing whitespace is common when a payload is pasted.
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (text.substr(0, kPayloadPrefix.size()) != kPayloadPrefix) {
    throw Error(Errc::invalid_argument,
                "this is not an Outpost v1 enrollment payload (it starts with "
                "'outpost-enroll:v1:'); ask for a new one");
  }
  std::string_view rest = text.substr(kPayloadPrefix.size());
  // host may be an IPv6 literal with colons: take the last three fields from the right.
  auto cutLast = [&](const char* what) {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      throw Error(Errc::invalid_argument, std::string("the enrollment payload has no ") + what);
    }
    std::string_view field = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    return field;
  };
  const std::string_view code = cutLast("code");
  const std::string_view key = cutLast("server key");
  const std::string_view port = cutLast("port");
  EnrollmentPayload p;
  p.host = std::string(rest);
  if (!validHost(p.host)) {
    throw Error(Errc::invalid_argument, "the enrollment payload's host is not valid");
  }
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || ptr != port.data() + port.size() || value == 0 || value > 65535 ||
      port.front() == '0') {
    throw Error(Errc::invalid_argument, "the enrollment payload's port is not 1..65535");
  }
  p.port = static_cast<std::uint16_t>(value);
  Bytes k;
  try {
    k = fromBase64Url(key);
  } catch (const Error&) {
    k.clear();
  }
  if (k.size() != noise::kKeySize) {
    throw Error(Errc::invalid_argument, "the enrollment payload's server key is not valid");
  }
  std::copy(k.begin(), k.end(), p.serverKey.begin());
  p.code = canonicalEnrollmentCode(code);
  return p;
}

// ---------------------------------------------------------------------------
// DeviceRegistry

DeviceRegistry::DeviceRegistry(sql::Database& db) : db_(db) {
  db_.exec("CREATE TABLE IF NOT EXISTS protocol_devices("
           " public_key BLOB PRIMARY KEY,"
           " device_id BLOB NOT NULL UNIQUE,"
           " worker_id TEXT NOT NULL,"
           " team_id TEXT NOT NULL,"
           " revoked INTEGER NOT NULL DEFAULT 0,"
           " enrolled_ms INTEGER NOT NULL)");
}

namespace {
DeviceRecord readDevice(const sql::Statement& st) {
  DeviceRecord d;
  d.publicKey = fixed<noise::kKeySize>(st.columnBlob(0), "device key");
  d.deviceId = fixed<16>(st.columnBlob(1), "device id");
  d.workerId = std::string(st.columnText(2));
  d.teamId = std::string(st.columnText(3));
  d.revoked = st.columnInt(4) != 0;
  return d;
}
} // namespace

std::optional<DeviceRecord> DeviceRegistry::findByKey(const noise::PublicKey& key) {
  sql::Statement st(db_, "SELECT public_key, device_id, worker_id, team_id, revoked "
                         "FROM protocol_devices WHERE public_key = ?1");
  st.bindBlob(1, blob(key));
  if (!st.step()) {
    return std::nullopt;
  }
  return readDevice(st);
}

std::optional<DeviceRecord> DeviceRegistry::findById(const Uuid& deviceId) {
  sql::Statement st(db_, "SELECT public_key, device_id, worker_id, team_id, revoked "
                         "FROM protocol_devices WHERE device_id = ?1");
  st.bindBlob(1, blob(deviceId));
  if (!st.step()) {
    return std::nullopt;
  }
  return readDevice(st);
}

void DeviceRegistry::add(const DeviceRecord& device, Clock::time_point now) {
  if (findByKey(device.publicKey)) {
    throw Error(Errc::already_exists, "this device key is already enrolled");
  }
  sql::Statement st(db_, "INSERT INTO protocol_devices(public_key, device_id, worker_id, team_id,"
                         " revoked, enrolled_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  st.bindBlob(1, blob(device.publicKey))
      .bindBlob(2, blob(device.deviceId))
      .bind(3, std::string_view(device.workerId))
      .bind(4, std::string_view(device.teamId))
      .bind(5, std::int64_t{device.revoked ? 1 : 0})
      .bind(6, millis(now));
  st.run();
}

bool DeviceRegistry::revoke(const Uuid& deviceId) {
  sql::Statement st(db_, "UPDATE protocol_devices SET revoked = 1 WHERE device_id = ?1");
  st.bindBlob(1, blob(deviceId));
  st.run();
  return db_.changes() > 0;
}

// ---------------------------------------------------------------------------
// EnrollmentRegistry

EnrollmentRegistry::EnrollmentRegistry(const Context& context, sql::Database& db,
                                       SecretBytes serverSecret, DeviceRegistry& devices)
    : context_(context), db_(db), secret_(std::move(serverSecret)), devices_(devices) {
  if (secret_.size() != crypto_generichash_KEYBYTES) {
    throw Error(Errc::invalid_argument, "the enrollment secret is 32 bytes");
  }
  // state: 0 open, 1 used, 2 locked
  db_.exec("CREATE TABLE IF NOT EXISTS protocol_enrollment_codes("
           " handle TEXT PRIMARY KEY,"
           " code_hash BLOB NOT NULL,"
           " worker_id TEXT NOT NULL,"
           " team_id TEXT NOT NULL,"
           " expires_ms INTEGER NOT NULL,"
           " failed_attempts INTEGER NOT NULL DEFAULT 0,"
           " state INTEGER NOT NULL DEFAULT 0)");
}

Bytes EnrollmentRegistry::hashCode(std::string_view canonical) const {
  Bytes out(crypto_generichash_BYTES);
  crypto_generichash_state st;
  crypto_generichash_init(&st, secret_.data(), secret_.size(), out.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kCodeHashContext.data()),
                            kCodeHashContext.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(canonical.data()),
                            canonical.size());
  crypto_generichash_final(&st, out.data(), out.size());
  sodium_memzero(&st, sizeof st);
  return out;
}

IssuedCode EnrollmentRegistry::issueEnrollmentCode(std::string_view workerId,
                                                   std::string_view teamId,
                                                   std::chrono::seconds ttl,
                                                   Clock::time_point now) {
  requireId(workerId, "the worker id");
  requireId(teamId, "the team id");
  if (ttl.count() <= 0) {
    throw Error(Errc::invalid_argument, "an enrollment code needs a positive lifetime");
  }
  sql::Transaction tx(db_);
  // Forget codes a week past expiry, so their handles can be issued again.
  sql::Statement purge(db_, "DELETE FROM protocol_enrollment_codes WHERE expires_ms < ?1");
  purge.bind(1, millis(now - std::chrono::hours(24 * 7)));
  purge.run();
  for (int tries = 0; tries < 32; ++tries) {
    std::array<std::uint8_t, 10> raw{}; // 80 bits = 16 base-32 characters
    randombytes_buf(raw.data(), raw.size());
    std::string chars;
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::uint8_t b : raw) {
      acc = (acc << 8) | b;
      bits += 8;
      while (bits >= 5) {
        bits -= 5;
        chars.push_back(kCrockford[(acc >> bits) & 31u]);
      }
    }
    sodium_memzero(raw.data(), raw.size());
    const std::string code = grouped(chars);
    sodium_memzero(chars.data(), chars.size());
    const std::string handle = code.substr(0, 4);
    sql::Statement exists(db_, "SELECT 1 FROM protocol_enrollment_codes WHERE handle = ?1");
    exists.bind(1, std::string_view(handle));
    if (exists.step()) {
      continue; // handle taken by a live code: draw again
    }
    const Bytes hash = hashCode(code);
    const auto expires = now + ttl;
    sql::Statement ins(db_, "INSERT INTO protocol_enrollment_codes(handle, code_hash, worker_id,"
                            " team_id, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)");
    ins.bind(1, std::string_view(handle))
        .bindBlob(2, hash)
        .bind(3, workerId)
        .bind(4, teamId)
        .bind(5, millis(expires));
    ins.run();
    tx.commit();
    return {code, expires};
  }
  throw Error(Errc::busy, "too many live enrollment codes; let some expire and retry");
}

RedeemResult EnrollmentRegistry::redeem(std::string_view typedCode,
                                        const noise::PublicKey& deviceKey, Clock::time_point now) {
  std::string code;
  try {
    code = canonicalEnrollmentCode(typedCode);
  } catch (const Error&) {
    return {RedeemOutcome::wrongCode, std::nullopt};
  }
  sql::Transaction tx(db_);
  sql::Statement sel(db_, "SELECT code_hash, worker_id, team_id, expires_ms, failed_attempts, state"
                          " FROM protocol_enrollment_codes WHERE handle = ?1");
  const std::string handle = code.substr(0, 4);
  sel.bind(1, std::string_view(handle));
  if (!sel.step()) {
    return {RedeemOutcome::wrongCode, std::nullopt};
  }
  const auto stored = sel.columnBlob(0);
  const Bytes hash = hashCode(code);
  const bool matches =
      stored.size() == hash.size() && sodium_memcmp(stored.data(), hash.data(), hash.size()) == 0;
  DeviceRecord device;
  device.workerId = std::string(sel.columnText(1));
  device.teamId = std::string(sel.columnText(2));
  const std::int64_t expiresMs = sel.columnInt(3);
  const std::int64_t failed = sel.columnInt(4);
  const std::int64_t state = sel.columnInt(5);
  sel.reset();

  if (state == 2) {
    return {RedeemOutcome::locked, std::nullopt};
  }
  if (!matches) {
    sql::Statement upd(db_, "UPDATE protocol_enrollment_codes SET failed_attempts = ?2,"
                            " state = CASE WHEN ?2 >= ?3 THEN 2 ELSE state END WHERE handle = ?1");
    upd.bind(1, std::string_view(handle)).bind(2, failed + 1).bind(3, std::int64_t{kMaxAttempts});
    upd.run();
    tx.commit();
    return {failed + 1 >= kMaxAttempts ? RedeemOutcome::locked : RedeemOutcome::wrongCode,
            std::nullopt};
  }
  if (state == 1) {
    return {RedeemOutcome::alreadyUsed, std::nullopt};
  }
  if (millis(now) >= expiresMs) {
    return {RedeemOutcome::expired, std::nullopt};
  }
  if (devices_.findByKey(deviceKey)) {
    return {RedeemOutcome::keyInUse, std::nullopt};
  }
  device.publicKey = deviceKey;
  device.deviceId = randomUuid();
  devices_.add(device, now);
  sql::Statement used(db_, "UPDATE protocol_enrollment_codes SET state = 1 WHERE handle = ?1");
  used.bind(1, std::string_view(handle));
  used.run();
  tx.commit();
  (void)context_;
  return {RedeemOutcome::enrolled, device};
}

std::string_view describe(RedeemOutcome outcome) noexcept {
  switch (outcome) {
  case RedeemOutcome::enrolled:
    return "the device is enrolled";
  case RedeemOutcome::wrongCode:
    return "the enrollment code is wrong; check it and try again";
  case RedeemOutcome::expired:
    return "the enrollment code has expired; ask the central team for a new one";
  case RedeemOutcome::alreadyUsed:
    return "the enrollment code was already used; ask the central team for a new one";
  case RedeemOutcome::locked:
    return "the enrollment code is locked after too many wrong attempts; ask for a new one";
  case RedeemOutcome::keyInUse:
    return "this device is already enrolled";
  }
  return "unknown outcome";
}

} // namespace outpost::protocol
