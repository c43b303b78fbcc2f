#pragma once
/// \file
/// Framing, without I/O: how an application message becomes Noise transport
/// messages and back (docs/protocol.md, "Framing").
///
/// On the byte stream every Noise message (handshake or transport) is a frame:
/// a 2-byte big-endian length L (1..65535) followed by L bytes. An application
/// message of N bytes (1 <= N <= 16 MiB) is the plaintext stream
/// `u32 N (big-endian) || message`, cut into chunks of exactly 65519 bytes (the
/// last one shorter), each encrypted as one transport message. The receiver checks
/// that every chunk but the last is full and that no chunk overshoots N, so a
/// message has exactly one valid framing.

#include "outpost/protocol/noise.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace outpost::protocol {

/// Plaintext bytes per transport frame (Noise limit minus the AEAD tag).
inline constexpr std::size_t kFramePlaintext = noise::kMaxMessage - noise::kTagSize;
/// Bytes of the length header that starts every application message.
inline constexpr std::size_t kMessageHeader = 4;
/// Largest application message the protocol allows.
inline constexpr std::size_t kMaxApplicationMessage = 16u << 20;
/// Largest message a server accepts on an enrollment channel, whose peer is not yet
/// known to it.
inline constexpr std::size_t kMaxEnrollmentMessage = 4096;

/// Bounds one side of a channel enforces.
struct ChannelLimits {
  /// Largest application message accepted (<= kMaxApplicationMessage).
  std::size_t maxMessage = kMaxApplicationMessage;
  /// Longest wait for any read (a frame, or the rest of one) before Errc::timeout.
  std::chrono::milliseconds readTimeout{30000};
  /// Longest wait for a write to drain before Errc::timeout.
  std::chrono::milliseconds writeTimeout{30000};
};

/// How many frames a message of `size` bytes needs.
[[nodiscard]] std::size_t framesFor(std::size_t size) noexcept;

/// Cuts `message` into frame plaintexts. Throws `Error{invalid_argument}` for an
/// empty message or one over `maxMessage`.
[[nodiscard]] std::vector<noise::Bytes> splitMessage(std::span<const std::uint8_t> message,
                                                     std::size_t maxMessage);

/// Reassembles frame plaintexts into messages. Throws `Error{protocol}` for a bad
/// length header (0 or over the limit), a short non-final chunk, or an overshoot.
/// Not thread-safe.
class MessageAssembler {
public:
  explicit MessageAssembler(std::size_t maxMessage) : maxMessage_(maxMessage) {}

  /// Adds one decrypted frame; returns the message when it is complete.
  [[nodiscard]] std::optional<noise::Bytes> add(std::span<const std::uint8_t> plaintext);
  /// True between the first and the last frame of a message.
  [[nodiscard]] bool inMessage() const noexcept { return expected_ != 0; }

private:
  std::size_t maxMessage_;
  std::size_t expected_ = 0; // total of the message in progress, 0 when idle
  noise::Bytes buffer_;
};

} // namespace outpost::protocol
