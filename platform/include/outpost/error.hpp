#pragma once
/// \file
/// The one error type of Outpost and its stable codes.
///
/// Expected outcomes (not found, wrong PIN, out of scope, ...) are values in the
/// APIs that produce them. Bugs, I/O failure, corruption, tampering and protocol
/// violations throw `outpost::Error`. Codes are stable: they cross the C ABI and
/// the wire, so a code's number never changes and a retired number is never reused.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace outpost {

// X(name, number, what a person should do about it). Listed once, here.
#define OUTPOST_ERROR_CODES(X)                                                                     \
  X(ok, 0, "no error")                                                                             \
  X(invalid_argument, 1, "check the value given and try again")                                    \
  X(io, 2, "check that the storage is present and writable, then retry")                           \
  X(disk_full, 3, "free some space on the device, then retry; nothing was changed")                \
  X(corrupt, 4, "the stored data is damaged; restore from the server by re-enrolling")             \
  X(tampered, 5, "the stored data was altered outside Outpost; do not trust this device")          \
  X(wrong_pin, 6, "enter the correct PIN")                                                         \
  X(locked, 7, "unlock the vault with the worker's PIN first")                                     \
  X(shredded, 8, "the key was destroyed; the data cannot be recovered, re-enroll the device")      \
  X(not_found, 9, "check the identifier")                                                          \
  X(already_exists, 10, "choose another name or open the existing one")                            \
  X(protocol, 11, "the peer sent something Outpost does not accept; update both sides")            \
  X(version_mismatch, 12, "update the app or the server so that their protocol versions overlap")  \
  X(auth_failed, 13, "the peer's key is not the expected one; check enrollment")                   \
  X(revoked, 14, "this device was revoked by the central team")                                    \
  X(out_of_scope, 15, "the worker's teams do not cover this record")                               \
  X(timeout, 16, "the network is slow or down; retry later")                                       \
  X(network, 17, "the network failed; retry later")                                                \
  X(invalid_template, 18, "fix the template at the reported path")                                 \
  X(validation, 19, "fix the reported field and submit again")                                     \
  X(conflict, 20, "review the competing values and resolve the conflict")                          \
  X(rollback, 21, "an older copy of the vault was put back; re-enroll the device")                 \
  X(unsupported, 22, "this operation is not available on this platform or version")                \
  X(internal, 23, "a bug in Outpost; report it with the log")                                      \
  X(busy, 24, "the store is in use by another process; retry")                                     \
  X(clock_skew, 25, "the device clock is far ahead of the server's; sync again to adopt its time") \
  X(cancelled, 26, "the operation was cancelled; start it again when wanted")

/// Stable error codes. The numbers are part of the C ABI and the wire protocol.
enum class Errc : std::uint16_t {
#define OUTPOST_ERRC_ENUM(name, number, advice) name = number,
  OUTPOST_ERROR_CODES(OUTPOST_ERRC_ENUM)
#undef OUTPOST_ERRC_ENUM
};

/// The code's stable name, e.g. "wrong_pin". "unknown" for a number not listed.
[[nodiscard]] std::string_view errcName(Errc code) noexcept;

/// What a person should do about an error with this code.
[[nodiscard]] std::string_view errcAdvice(Errc code) noexcept;

/// The single exception type Outpost throws. `what()` is "<name>: <message>".
/// Messages never contain record contents or key material.
class Error : public std::runtime_error {
public:
  Error(Errc code, const std::string& message);

  [[nodiscard]] Errc code() const noexcept { return code_; }
  /// The message without the code prefix.
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

private:
  Errc code_;
  std::string message_;
};

} // namespace outpost
