#pragma once
/// \file
/// The Noise Protocol Framework, revision 34, on libsodium: DH 25519, cipher
/// ChaChaPoly (IETF ChaCha20-Poly1305), hash BLAKE2b, SHA512 or SHA256.
///
/// Outpost uses two patterns (docs/protocol.md):
///  - `Noise_IK_25519_ChaChaPoly_BLAKE2b` for sessions: the device knows the
///    server's static key (pinned at enrollment) and sends its own, encrypted;
///  - `Noise_XK_25519_ChaChaPoly_BLAKE2b` for enrollment: the device knows the server
///    key from the enrollment payload and transmits its fresh static key in the
///    third message, under a key that already authenticates both ephemerals and the
///    server.
/// The engine interprets any handshake pattern given as tokens (with `pskN`
/// modifiers), so the conformance tests can run the published vectors.

#include "outpost/protocol/secret.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost {
class Context;
}

namespace outpost::protocol::noise {

/// Noise's limit on any handshake or transport message, in bytes.
inline constexpr std::size_t kMaxMessage = 65535;
/// ChaChaPoly authentication tag length.
inline constexpr std::size_t kTagSize = 16;
/// X25519 key length (public and secret).
inline constexpr std::size_t kKeySize = 32;

using Bytes = std::vector<std::uint8_t>;
using PublicKey = std::array<std::uint8_t, kKeySize>;

/// The hash function of a suite.
enum class Hash : std::uint8_t { blake2b, sha512, sha256 };
[[nodiscard]] std::string_view hashName(Hash hash) noexcept;
/// HASHLEN of the suite (64 for BLAKE2b and SHA512, 32 for SHA256).
[[nodiscard]] std::size_t hashLength(Hash hash) noexcept;

/// An X25519 key pair; the secret half lives in guarded memory.
struct KeyPair {
  PublicKey publicKey{};
  SecretBytes secretKey{kKeySize};

  /// A fresh random key pair. `Context` proves libsodium is initialised.
  [[nodiscard]] static KeyPair generate(const Context& context);
  /// The key pair of a 32-byte secret key (the public half is derived).
  /// Throws `Error{invalid_argument}` for a wrong length.
  [[nodiscard]] static KeyPair fromSecret(std::span<const std::uint8_t> secret);
  [[nodiscard]] KeyPair clone() const;
};

/// One AEAD key and its nonce counter (Noise §5.1). Not thread-safe.
class CipherState {
public:
  CipherState() = default;
  /// InitializeKey(key): key must be 32 bytes; resets the nonce to 0.
  explicit CipherState(std::span<const std::uint8_t> key);
  /// InitializeKey(key) on this state, reusing its guarded key buffer (a handshake
  /// re-keys its cipher at every DH; a fresh guarded allocation each time costs more
  /// than the DH).
  void initializeKey(std::span<const std::uint8_t> key);

  [[nodiscard]] bool hasKey() const noexcept { return hasKey_; }
  [[nodiscard]] std::uint64_t nonce() const noexcept { return n_; }
  /// SetNonce, for the spec's out-of-order use; Outpost never rewinds a live session.
  void setNonce(std::uint64_t n) noexcept { n_ = n; }

  /// EncryptWithAd: returns ciphertext || tag (plaintext copied when there is no
  /// key). Throws `Error{protocol}` when the nonce space is exhausted (n = 2^64-1
  /// is reserved) and `Error{invalid_argument}` for more than 65535 output bytes.
  [[nodiscard]] Bytes encrypt(std::span<const std::uint8_t> ad,
                              std::span<const std::uint8_t> plaintext);
  /// DecryptWithAd: throws `Error{protocol}` when authentication fails; the nonce
  /// advances only on success.
  [[nodiscard]] Bytes decrypt(std::span<const std::uint8_t> ad,
                              std::span<const std::uint8_t> ciphertext);
  /// Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, "", zeros(32)). The nonce is
  /// unchanged.
  void rekey();

private:
  SecretBytes k_{kKeySize};
  std::uint64_t n_ = 0;
  bool hasKey_ = false;
};

/// Chaining key, handshake hash and the current CipherState (Noise §5.2).
class SymmetricState {
public:
  SymmetricState(Hash hash, std::string_view protocolName);

  void mixKey(std::span<const std::uint8_t> inputKeyMaterial);
  void mixHash(std::span<const std::uint8_t> data);
  void mixKeyAndHash(std::span<const std::uint8_t> inputKeyMaterial);
  [[nodiscard]] Bytes encryptAndHash(std::span<const std::uint8_t> plaintext);
  [[nodiscard]] Bytes decryptAndHash(std::span<const std::uint8_t> ciphertext);
  [[nodiscard]] bool hasKey() const noexcept { return cipher_.hasKey(); }
  [[nodiscard]] const Bytes& handshakeHash() const noexcept { return h_; }
  /// Split(): the initiator-to-responder and responder-to-initiator ciphers.
  [[nodiscard]] std::pair<CipherState, CipherState> split();

private:
  Hash hash_;
  SecretBytes ck_;
  Bytes h_;
  CipherState cipher_;
};

/// HMAC (RFC 2104) and HKDF as Noise §4.3 defines them, over the suite's hash.
[[nodiscard]] Bytes hmac(Hash hash, std::span<const std::uint8_t> key,
                         std::span<const std::uint8_t> data);
/// HKDF(chaining_key, ikm, num_outputs) with num_outputs 2 or 3.
[[nodiscard]] std::vector<SecretBytes> hkdf(Hash hash, std::span<const std::uint8_t> chainingKey,
                                            std::span<const std::uint8_t> inputKeyMaterial,
                                            int outputs);
/// The same, written into `outputs` (two or three buffers of the hash's length). An
/// output may be the chaining key's own buffer: it is read before any is written.
void hkdfInto(Hash hash, std::span<const std::uint8_t> chainingKey,
              std::span<const std::uint8_t> inputKeyMaterial,
              std::span<const std::span<std::uint8_t>> outputs);

enum class Token : std::uint8_t { e, s, ee, es, se, ss, psk };

/// A handshake pattern as the spec writes it. Message i is sent by the initiator
/// when i is even.
struct HandshakePattern {
  std::string name; ///< e.g. "IK", "XXpsk3"
  std::vector<Token> initiatorPreMessage;
  std::vector<Token> responderPreMessage;
  std::vector<std::vector<Token>> messages;

  /// This pattern with a `pskN` modifier applied (psk0: start of the first message;
  /// pskN: end of message N).
  [[nodiscard]] HandshakePattern withPsk(int position) const;
  /// True when the pattern has a psk token (PSK handshakes also MixKey on `e`).
  [[nodiscard]] bool usesPsk() const noexcept;
};

/// -> e, s / <- s ... : `IK`.
[[nodiscard]] const HandshakePattern& patternIK();
/// <- s ... -> e, es / <- e, ee / -> s, se : `XK`.
[[nodiscard]] const HandshakePattern& patternXK();

enum class Role : std::uint8_t { initiator, responder };

/// What a handshake starts from (Noise §5.3 Initialize()).
struct HandshakeConfig {
  HandshakePattern pattern;
  Hash hash = Hash::blake2b;
  Role role = Role::initiator;
  Bytes prologue;
  std::optional<KeyPair> localStatic;
  std::optional<PublicKey> remoteStatic;
  /// Pre-message ephemerals (only for patterns that have them; none of Outpost's).
  std::optional<KeyPair> localEphemeral;
  std::optional<PublicKey> remoteEphemeral;
  std::vector<SecretBytes> psks;
};

/// The two transport ciphers after a completed handshake, from this side's view.
struct TransportCiphers {
  CipherState send;
  CipherState receive;
  Bytes handshakeHash;
};

/// A handshake in progress (Noise §5.3). Not thread-safe; one per connection.
/// Every method throws `Error{protocol}` on a malformed or unauthentic message,
/// `Error{invalid_argument}` when called out of turn or with a missing key.
class HandshakeState {
public:
  HandshakeState(const Context& context, HandshakeConfig config);

  /// FOR TESTS ONLY (conformance vectors): makes the next `e` token use this
  /// ephemeral instead of a fresh random one. Production code never calls it;
  /// reusing an ephemeral destroys the handshake's security.
  void injectEphemeralForTestsOnly(KeyPair ephemeral);

  /// The full protocol name, e.g. "Noise_IK_25519_ChaChaPoly_BLAKE2b".
  [[nodiscard]] const std::string& protocolName() const noexcept { return protocolName_; }
  [[nodiscard]] bool isMyTurn() const noexcept;
  [[nodiscard]] bool isComplete() const noexcept;

  [[nodiscard]] Bytes writeMessage(std::span<const std::uint8_t> payload);
  [[nodiscard]] Bytes readMessage(std::span<const std::uint8_t> message);

  /// The peer's static key once it was received or pre-known.
  [[nodiscard]] const std::optional<PublicKey>& remoteStatic() const noexcept { return rs_; }
  /// The handshake hash h (channel binding), valid once complete.
  [[nodiscard]] const Bytes& handshakeHash() const noexcept { return symmetric_.handshakeHash(); }
  /// The transport ciphers; only once complete, and only once.
  [[nodiscard]] TransportCiphers finish();

private:
  void dh(const KeyPair& local, const PublicKey& remote);
  /// The DH and PSK tokens: the same on both sides of a message (Noise §5.3).
  void mixToken(Token token, bool initiator);
  [[nodiscard]] const KeyPair& requireLocalStatic() const;
  [[nodiscard]] const PublicKey& requireRemoteStatic() const;
  [[nodiscard]] const PublicKey& requireRemoteEphemeral() const;
  [[nodiscard]] const KeyPair& requireLocalEphemeral() const;

  const Context& context_;
  HandshakePattern pattern_;
  Hash hash_;
  Role role_;
  std::string protocolName_;
  SymmetricState symmetric_;
  std::optional<KeyPair> s_;
  std::optional<KeyPair> e_;
  std::optional<KeyPair> injectedEphemeral_;
  std::optional<PublicKey> rs_;
  std::optional<PublicKey> re_;
  std::vector<SecretBytes> psks_;
  std::size_t nextPsk_ = 0;
  std::size_t messageIndex_ = 0;
  std::optional<std::pair<CipherState, CipherState>> split_;
  bool finished_ = false;
};

} // namespace outpost::protocol::noise
