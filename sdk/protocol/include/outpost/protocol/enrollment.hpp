#pragma once
/// \file
/// Device enrollment: the out-of-band payload, one-time codes, and the registries
/// the server keeps (docs/protocol.md, "Enrollment").
///
/// An administrator issues a code bound to a worker and a team. The code is
/// 16 Crockford base-32 characters shown as `XXXX-XXXX-XXXX-XXXX`: the first group
/// names the code (lookup), the other 12 characters (60 bits) are the secret. The
/// server stores only a keyed BLAKE2b hash of the code (key: a server secret), the
/// expiry and an attempt counter: a wrong secret counts against the code, and after
/// `kMaxAttempts` wrong tries the code is locked. A code is used once.
///
/// The payload that reaches the device (text or QR) is
/// `outpost-enroll:v1:<host>:<port>:<server key, base64url>:<code>`.

#include "outpost/protocol/messages.hpp"
#include "outpost/protocol/noise.hpp"
#include "outpost/protocol/secret.hpp"
#include "outpost/sqlite.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace outpost {
class Context;
}

namespace outpost::protocol {

using Clock = std::chrono::system_clock;

/// What the device needs to enroll, parsed from the text/QR payload.
struct EnrollmentPayload {
  std::string host;
  std::uint16_t port = 0;
  noise::PublicKey serverKey{};
  std::string code; ///< canonical form, XXXX-XXXX-XXXX-XXXX
  bool operator==(const EnrollmentPayload&) const = default;
};

/// The payload text. Throws `Error{invalid_argument}` for an invalid host or code.
[[nodiscard]] std::string formatEnrollmentPayload(const EnrollmentPayload& payload);
/// Parses a payload (as typed or scanned). Throws `Error{invalid_argument}` saying
/// which part is wrong.
[[nodiscard]] EnrollmentPayload parseEnrollmentPayload(std::string_view text);
/// The canonical form of a typed code: case, spaces and dashes do not matter, and
/// the Crockford look-alikes O->0, I/L->1 are accepted. Throws
/// `Error{invalid_argument}` when it is not 16 base-32 characters.
[[nodiscard]] std::string canonicalEnrollmentCode(std::string_view typed);

/// base64url without padding (RFC 4648 §5), as the payload uses it.
[[nodiscard]] std::string toBase64Url(std::span<const std::uint8_t> bytes);
/// Throws `Error{invalid_argument}` for anything that is not canonical base64url.
[[nodiscard]] Bytes fromBase64Url(std::string_view text);

/// A device the server knows.
struct DeviceRecord {
  Uuid deviceId{};
  noise::PublicKey publicKey{};
  std::string workerId;
  std::string teamId;
  bool revoked = false;
  bool operator==(const DeviceRecord&) const = default;
};

/// Devices by static public key: what the session handshake consults. Stores its
/// table (`protocol_devices`) in the given database, created if missing. Not
/// thread-safe (one per connection to the database).
class DeviceRegistry {
public:
  explicit DeviceRegistry(sql::Database& db);

  [[nodiscard]] std::optional<DeviceRecord> findByKey(const noise::PublicKey& key);
  [[nodiscard]] std::optional<DeviceRecord> findById(const Uuid& deviceId);
  /// Registers a device. Throws `Error{already_exists}` when the key is registered.
  void add(const DeviceRecord& device, Clock::time_point now);
  /// Marks a device revoked: its sessions are refused from now on. Returns false
  /// when the device is unknown.
  bool revoke(const Uuid& deviceId);

private:
  sql::Database& db_;
};

/// A freshly issued code: show it once (text or QR), it is not stored in clear.
struct IssuedCode {
  std::string code; ///< XXXX-XXXX-XXXX-XXXX
  Clock::time_point expiresAt;
};

enum class RedeemOutcome : std::uint8_t {
  enrolled,    ///< the device is registered
  wrongCode,   ///< unknown code, or wrong secret (counted)
  expired,     ///< ask for a new code
  alreadyUsed, ///< codes are one-time
  locked,      ///< too many wrong attempts; ask for a new code
  keyInUse,    ///< that device key is already enrolled
};

struct RedeemResult {
  RedeemOutcome outcome = RedeemOutcome::wrongCode;
  std::optional<DeviceRecord> device; ///< when enrolled
};

/// One-time enrollment codes (table `protocol_enrollment_codes`). Not thread-safe.
class EnrollmentRegistry {
public:
  static constexpr int kMaxAttempts = 5;

  /// `serverSecret` (32 bytes, from the server's key store) keys the code hashes.
  /// Throws `Error{invalid_argument}` for a secret of another size.
  EnrollmentRegistry(const Context& context, sql::Database& db, SecretBytes serverSecret,
                     DeviceRegistry& devices);

  /// Issues a code for `workerId` in `teamId`, valid for `ttl` from `now`.
  /// Throws `Error{invalid_argument}` for empty or over-long ids or ttl <= 0.
  [[nodiscard]] IssuedCode issueEnrollmentCode(std::string_view workerId, std::string_view teamId,
                                               std::chrono::seconds ttl, Clock::time_point now);

  /// Redeems `typedCode` for the device key the enrollment handshake authenticated.
  /// Expected refusals are outcomes, not exceptions; a code that does not even parse
  /// counts as wrongCode.
  [[nodiscard]] RedeemResult redeem(std::string_view typedCode, const noise::PublicKey& deviceKey,
                                    Clock::time_point now);

private:
  [[nodiscard]] Bytes hashCode(std::string_view canonical) const;

  const Context& context_;
  sql::Database& db_;
  SecretBytes secret_;
  DeviceRegistry& devices_;
};

/// A person-readable sentence for an outcome (what happened, what to do).
[[nodiscard]] std::string_view describe(RedeemOutcome outcome) noexcept;

} // namespace outpost::protocol
