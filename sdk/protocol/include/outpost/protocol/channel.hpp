#pragma once
/// \file
/// A Noise-secured, framed, full-duplex message channel over TCP (Asio coroutines).
///
/// Connection start (docs/protocol.md): the device sends an 8-byte preamble
/// ("OPST", wire version 1, purpose, two zero bytes), then the Noise handshake runs
/// in frames: IK for a session, XK for enrollment, suite 25519/ChaChaPoly/BLAKE2b,
/// prologue "outpost" || preamble. Handshake payloads are empty. After it, each
/// `send()` is one application message of up to 16 MiB spanning as many frames as
/// needed.
///
/// Threading: a channel belongs to one strand (or one-threaded io_context); at most
/// one send and one receive may be outstanding at a time. Any failure ends the
/// session: the socket is closed and every later call throws `Error{protocol}`.

#include "outpost/asio.hpp"
#include "outpost/protocol/framing.hpp"
#include "outpost/protocol/messages.hpp"
#include "outpost/protocol/noise.hpp"

#include <memory>

namespace outpost {
class Context;
}

namespace outpost::protocol {

/// What a connection is for; selects the handshake pattern.
enum class Purpose : std::uint8_t { session = 1, enrollment = 2 };

/// The wire version of the preamble and framing (not the message protocol version,
/// which Hello negotiates).
inline constexpr std::uint8_t kWireVersion = 1;
inline constexpr std::size_t kPreambleSize = 8;

/// The preamble bytes for a purpose; also the tail of the Noise prologue.
[[nodiscard]] std::array<std::uint8_t, kPreambleSize> preambleFor(Purpose purpose) noexcept;
/// The Noise prologue for a purpose: "outpost" || preamble.
[[nodiscard]] noise::Bytes prologueFor(Purpose purpose);
/// Parses a received preamble. Throws `Error{version_mismatch}` for another wire
/// version, `Error{protocol}` for anything else that is wrong.
[[nodiscard]] Purpose parsePreamble(std::span<const std::uint8_t> preamble);

class SecureChannel {
public:
  /// Device side: connects the handshake over `socket` (already connected) for
  /// `purpose`, authenticating as `deviceStatic` and pinning `serverStatic`.
  /// Throws `Error{auth_failed}` when the server's answer does not authenticate,
  /// `Error{network}` / `Error{timeout}` for transport failures.
  static asio::awaitable<SecureChannel> connect(const Context& context,
                                                asio::ip::tcp::socket socket, Purpose purpose,
                                                const noise::KeyPair& deviceStatic,
                                                const noise::PublicKey& serverStatic,
                                                ChannelLimits limits = {});

  /// Server side: reads the preamble and runs the responder handshake the purpose
  /// asks for. The device's static key is then `remoteStatic()`; deciding whether it
  /// is admitted is the caller's (see session.hpp). On an enrollment channel the
  /// message limit is at most kMaxEnrollmentMessage. Throws `Error{auth_failed}` when
  /// the device's message does not authenticate (e.g. it pinned another server key).
  static asio::awaitable<SecureChannel> accept(const Context& context, asio::ip::tcp::socket socket,
                                               const noise::KeyPair& serverStatic,
                                               ChannelLimits limits = {});

  SecureChannel(SecureChannel&&) noexcept;
  SecureChannel& operator=(SecureChannel&&) noexcept;
  ~SecureChannel();

  /// Sends one application message (1 byte .. limits.maxMessage).
  asio::awaitable<void> send(std::span<const std::uint8_t> message);
  /// Receives the next application message. Throws `Error{protocol}` for a frame
  /// that fails authentication (tampered, replayed, reordered, truncated) or breaks
  /// the framing rules, `Error{network}` when the peer closes, `Error{timeout}`.
  asio::awaitable<noise::Bytes> receive();

  /// From now on, messages this side sends and receives carry a first byte saying
  /// whether the rest is a zstd frame (1) or the plain message (0). Both sides turn
  /// it on after a Hello exchange in which both named `kCapabilityZstd`; the device
  /// once it has the HelloReply, the server once it has sent it.
  void compressMessages() noexcept;
  /// From now on, messages this side sends lay change lists out as RecordWrites
  /// (EncodeOptions::recordWrites); turned on after a Hello exchange in which both
  /// named `kCapabilityRecordWrites`. Receiving takes either layout regardless.
  void groupWrites() noexcept;
  /// From now on, PushAcks this side sends use the compact layout
  /// (EncodeOptions::compactAcks); turned on by the server after a Hello exchange in
  /// which both named `kCapabilityCompactAcks`. Receiving takes either layout.
  void compactAcks() noexcept;

  /// encode() + send().
  asio::awaitable<void> sendMessage(const Message& message);
  /// receive() + decode().
  asio::awaitable<Message> receiveMessage();

  [[nodiscard]] Purpose purpose() const noexcept;
  /// The peer's static public key, authenticated by the handshake.
  [[nodiscard]] const noise::PublicKey& remoteStatic() const noexcept;
  /// The Noise handshake hash (channel binding).
  [[nodiscard]] const noise::Bytes& handshakeHash() const noexcept;
  /// TCP payload bytes written and read so far (preamble, handshake and frames).
  [[nodiscard]] std::uint64_t bytesSent() const noexcept;
  [[nodiscard]] std::uint64_t bytesReceived() const noexcept;
  /// True until a failure or close() ended the session.
  [[nodiscard]] bool isOpen() const noexcept;
  /// Closes the socket; pending operations fail.
  void close() noexcept;

  struct State;

private:
  explicit SecureChannel(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

} // namespace outpost::protocol
