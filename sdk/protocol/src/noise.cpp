#include "outpost/protocol/noise.hpp"

#include "outpost/context.hpp"
#include "outpost/error.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace outpost::protocol::noise {

namespace {

constexpr std::uint64_t kMaxNonce = std::numeric_limits<std::uint64_t>::max();

std::size_t blockLength(Hash hash) noexcept { return hash == Hash::sha256 ? 64 : 128; }
/// The longest hash of a suite (BLAKE2b, SHA-512).
constexpr std::size_t kMaxHashLength = 64;

/// HASH(a || b): the handshake only hashes small inputs, so one contiguous buffer
/// is simpler than three incremental APIs.
Bytes digest(Hash hash, std::span<const std::uint8_t> a, std::span<const std::uint8_t> b = {}) {
  Bytes out(hashLength(hash));
  switch (hash) {
  case Hash::blake2b: {
    crypto_generichash_blake2b_state st;
    crypto_generichash_blake2b_init(&st, nullptr, 0, out.size());
    crypto_generichash_blake2b_update(&st, a.data(), a.size());
    crypto_generichash_blake2b_update(&st, b.data(), b.size());
    crypto_generichash_blake2b_final(&st, out.data(), out.size());
    sodium_memzero(&st, sizeof st);
    break;
  }
  case Hash::sha512: {
    crypto_hash_sha512_state st;
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, a.data(), a.size());
    crypto_hash_sha512_update(&st, b.data(), b.size());
    crypto_hash_sha512_final(&st, out.data());
    sodium_memzero(&st, sizeof st);
    break;
  }
  case Hash::sha256: {
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, a.data(), a.size());
    crypto_hash_sha256_update(&st, b.data(), b.size());
    crypto_hash_sha256_final(&st, out.data());
    sodium_memzero(&st, sizeof st);
    break;
  }
  }
  return out;
}

std::array<std::uint8_t, 12> nonceBytes(std::uint64_t n) noexcept {
  // ChaChaPoly: 32 bits of zeros, then the 64-bit counter little-endian.
  std::array<std::uint8_t, 12> nonce{};
  for (std::size_t i = 0; i < 8; ++i) {
    nonce[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  }
  return nonce;
}

void wipe(Bytes& bytes) noexcept {
  if (!bytes.empty()) {
    sodium_memzero(bytes.data(), bytes.size());
  }
}

} // namespace

std::string_view hashName(Hash hash) noexcept {
  switch (hash) {
  case Hash::blake2b:
    return "BLAKE2b";
  case Hash::sha512:
    return "SHA512";
  case Hash::sha256:
    return "SHA256";
  }
  return "?";
}

std::size_t hashLength(Hash hash) noexcept { return hash == Hash::sha256 ? 32 : 64; }

// ---------------------------------------------------------------------------
// Keys

KeyPair KeyPair::generate(const Context& /*context: libsodium is initialised*/) {
  KeyPair kp;
  randombytes_buf(kp.secretKey.data(), kKeySize);
  crypto_scalarmult_base(kp.publicKey.data(), kp.secretKey.data());
  return kp;
}

KeyPair KeyPair::fromSecret(std::span<const std::uint8_t> secret) {
  if (secret.size() != kKeySize) {
    throw Error(Errc::invalid_argument, "an X25519 secret key is 32 bytes");
  }
  KeyPair kp;
  std::memcpy(kp.secretKey.data(), secret.data(), kKeySize);
  crypto_scalarmult_base(kp.publicKey.data(), kp.secretKey.data());
  return kp;
}

KeyPair KeyPair::clone() const {
  KeyPair kp;
  kp.publicKey = publicKey;
  kp.secretKey = secretKey.clone();
  return kp;
}

// ---------------------------------------------------------------------------
// HMAC and HKDF (Noise §4.3)

Bytes hmac(Hash hash, std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  const std::size_t block = blockLength(hash);
  Bytes k(block, 0);
  if (key.size() > block) {
    Bytes hk = digest(hash, key);
    std::copy(hk.begin(), hk.end(), k.begin());
    wipe(hk);
  } else {
    std::copy(key.begin(), key.end(), k.begin());
  }
  Bytes pad(block);
  for (std::size_t i = 0; i < block; ++i) {
    pad[i] = static_cast<std::uint8_t>(k[i] ^ 0x36);
  }
  Bytes inner = digest(hash, pad, data);
  for (std::size_t i = 0; i < block; ++i) {
    pad[i] = static_cast<std::uint8_t>(k[i] ^ 0x5c);
  }
  Bytes out = digest(hash, pad, inner);
  wipe(k);
  wipe(pad);
  wipe(inner);
  return out;
}

void hkdfInto(Hash hash, std::span<const std::uint8_t> chainingKey,
              std::span<const std::uint8_t> inputKeyMaterial,
              std::span<const std::span<std::uint8_t>> outputs) {
  if (outputs.size() != 2 && outputs.size() != 3) {
    throw Error(Errc::internal, "HKDF produces two or three outputs");
  }
  for (const auto& o : outputs) {
    if (o.size() != hashLength(hash)) {
      throw Error(Errc::internal, "an HKDF output is the hash's length");
    }
  }
  Bytes temp = hmac(hash, chainingKey, inputKeyMaterial); // the last read of chainingKey
  Bytes previous;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    previous.push_back(static_cast<std::uint8_t>(i + 1));
    Bytes next = hmac(hash, temp, previous);
    std::memcpy(outputs[i].data(), next.data(), next.size());
    wipe(previous);
    previous = std::move(next);
  }
  wipe(previous);
  wipe(temp);
}

std::vector<SecretBytes> hkdf(Hash hash, std::span<const std::uint8_t> chainingKey,
                              std::span<const std::uint8_t> inputKeyMaterial, int outputs) {
  if (outputs != 2 && outputs != 3) {
    throw Error(Errc::internal, "HKDF produces two or three outputs");
  }
  std::vector<SecretBytes> out;
  std::vector<std::span<std::uint8_t>> spans;
  for (int i = 0; i < outputs; ++i) {
    out.emplace_back(hashLength(hash));
  }
  for (auto& o : out) {
    spans.emplace_back(o.data(), o.size());
  }
  hkdfInto(hash, chainingKey, inputKeyMaterial, spans);
  return out;
}

// ---------------------------------------------------------------------------
// CipherState

CipherState::CipherState(std::span<const std::uint8_t> key) { initializeKey(key); }

void CipherState::initializeKey(std::span<const std::uint8_t> key) {
  if (key.size() < kKeySize) {
    throw Error(Errc::internal, "a cipher key is 32 bytes");
  }
  std::memcpy(k_.data(), key.data(), kKeySize);
  n_ = 0;
  hasKey_ = true;
}

Bytes CipherState::encrypt(std::span<const std::uint8_t> ad,
                           std::span<const std::uint8_t> plaintext) {
  if (!hasKey_) {
    if (plaintext.size() > kMaxMessage) {
      throw Error(Errc::invalid_argument, "a Noise message is at most 65535 bytes");
    }
    return Bytes(plaintext.begin(), plaintext.end());
  }
  if (plaintext.size() + kTagSize > kMaxMessage) {
    throw Error(Errc::invalid_argument, "a Noise message is at most 65535 bytes");
  }
  if (n_ == kMaxNonce) {
    throw Error(Errc::protocol, "the session's nonces are exhausted; reconnect");
  }
  Bytes out(plaintext.size() + kTagSize);
  const auto nonce = nonceBytes(n_);
  unsigned long long written = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &written, plaintext.data(),
                                            plaintext.size(), ad.data(), ad.size(), nullptr,
                                            nonce.data(), k_.data());
  ++n_;
  return out;
}

Bytes CipherState::decrypt(std::span<const std::uint8_t> ad,
                           std::span<const std::uint8_t> ciphertext) {
  if (ciphertext.size() > kMaxMessage) {
    throw Error(Errc::protocol, "a Noise message is at most 65535 bytes");
  }
  if (!hasKey_) {
    return Bytes(ciphertext.begin(), ciphertext.end());
  }
  if (ciphertext.size() < kTagSize) {
    throw Error(Errc::protocol, "an encrypted message is shorter than its tag");
  }
  if (n_ == kMaxNonce) {
    throw Error(Errc::protocol, "the session's nonces are exhausted; reconnect");
  }
  Bytes out(ciphertext.size() - kTagSize);
  const auto nonce = nonceBytes(n_);
  unsigned long long written = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data(), &written, nullptr, ciphertext.data(),
                                                ciphertext.size(), ad.data(), ad.size(),
                                                nonce.data(), k_.data()) != 0) {
    throw Error(Errc::protocol, "a message failed authentication (tampered, replayed or "
                                "out of order)");
  }
  ++n_;
  return out;
}

void CipherState::rekey() {
  if (!hasKey_) {
    throw Error(Errc::internal, "rekey without a key");
  }
  std::array<std::uint8_t, kKeySize + kTagSize> out{};
  const std::array<std::uint8_t, kKeySize> zeros{};
  const auto nonce = nonceBytes(kMaxNonce);
  unsigned long long written = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &written, zeros.data(), zeros.size(),
                                            nullptr, 0, nullptr, nonce.data(), k_.data());
  std::memcpy(k_.data(), out.data(), kKeySize);
  sodium_memzero(out.data(), out.size());
}

// ---------------------------------------------------------------------------
// SymmetricState

SymmetricState::SymmetricState(Hash hash, std::string_view protocolName)
    : hash_(hash), ck_(hashLength(hash)) {
  const auto name =
      std::span(reinterpret_cast<const std::uint8_t*>(protocolName.data()), protocolName.size());
  if (name.size() <= hashLength(hash)) {
    h_.assign(hashLength(hash), 0);
    std::copy(name.begin(), name.end(), h_.begin());
  } else {
    h_ = digest(hash, name);
  }
  std::memcpy(ck_.data(), h_.data(), h_.size());
}

// The chaining key and the cipher are updated in place (no guarded allocation per
// DH); the outputs that are not kept pass through a stack buffer, wiped after.
void SymmetricState::mixKey(std::span<const std::uint8_t> inputKeyMaterial) {
  std::array<std::uint8_t, kMaxHashLength> key{};
  const std::array<std::span<std::uint8_t>, 2> outputs = {
      std::span<std::uint8_t>(ck_.data(), ck_.size()),
      std::span<std::uint8_t>(key).first(hashLength(hash_))};
  hkdfInto(hash_, ck_.span(), inputKeyMaterial, outputs);
  cipher_.initializeKey(std::span(key).first(kKeySize)); // truncate a 64-byte output
  sodium_memzero(key.data(), key.size());
}

void SymmetricState::mixHash(std::span<const std::uint8_t> data) { h_ = digest(hash_, h_, data); }

void SymmetricState::mixKeyAndHash(std::span<const std::uint8_t> inputKeyMaterial) {
  std::array<std::uint8_t, kMaxHashLength> hashInput{};
  std::array<std::uint8_t, kMaxHashLength> key{};
  const std::size_t n = hashLength(hash_);
  const std::array<std::span<std::uint8_t>, 3> outputs = {
      std::span<std::uint8_t>(ck_.data(), ck_.size()), std::span<std::uint8_t>(hashInput).first(n),
      std::span<std::uint8_t>(key).first(n)};
  hkdfInto(hash_, ck_.span(), inputKeyMaterial, outputs);
  mixHash(std::span(hashInput).first(n));
  cipher_.initializeKey(std::span(key).first(kKeySize));
  sodium_memzero(hashInput.data(), hashInput.size());
  sodium_memzero(key.data(), key.size());
}

Bytes SymmetricState::encryptAndHash(std::span<const std::uint8_t> plaintext) {
  Bytes c = cipher_.encrypt(h_, plaintext);
  mixHash(c);
  return c;
}

Bytes SymmetricState::decryptAndHash(std::span<const std::uint8_t> ciphertext) {
  Bytes p = cipher_.decrypt(h_, ciphertext);
  mixHash(ciphertext);
  return p;
}

std::pair<CipherState, CipherState> SymmetricState::split() {
  auto out = hkdf(hash_, ck_.span(), {}, 2);
  return {CipherState(out[0].span().first(kKeySize)), CipherState(out[1].span().first(kKeySize))};
}

// ---------------------------------------------------------------------------
// Patterns

HandshakePattern HandshakePattern::withPsk(int position) const {
  HandshakePattern p = *this;
  if (position < 0 || static_cast<std::size_t>(position) > p.messages.size()) {
    throw Error(Errc::invalid_argument, "psk modifier position out of range");
  }
  if (position == 0) {
    p.messages.front().insert(p.messages.front().begin(), Token::psk);
  } else {
    p.messages[static_cast<std::size_t>(position) - 1].push_back(Token::psk);
  }
  p.name += "psk" + std::to_string(position);
  return p;
}

bool HandshakePattern::usesPsk() const noexcept {
  return std::any_of(messages.begin(), messages.end(), [](const std::vector<Token>& m) {
    return std::find(m.begin(), m.end(), Token::psk) != m.end();
  });
}

const HandshakePattern& patternIK() {
  static const HandshakePattern p{
      "IK",
      {},
      {Token::s},
      {{Token::e, Token::es, Token::s, Token::ss}, {Token::e, Token::ee, Token::se}}};
  return p;
}

const HandshakePattern& patternXK() {
  static const HandshakePattern p{
      "XK", {}, {Token::s}, {{Token::e, Token::es}, {Token::e, Token::ee}, {Token::s, Token::se}}};
  return p;
}

// ---------------------------------------------------------------------------
// HandshakeState

HandshakeState::HandshakeState(const Context& context, HandshakeConfig config)
    : context_(context), pattern_(std::move(config.pattern)), hash_(config.hash),
      role_(config.role), protocolName_("Noise_" + pattern_.name + "_25519_ChaChaPoly_" +
                                        std::string(hashName(config.hash))),
      symmetric_(hash_, protocolName_), s_(std::move(config.localStatic)),
      e_(std::move(config.localEphemeral)), rs_(config.remoteStatic), re_(config.remoteEphemeral),
      psks_(std::move(config.psks)) {
  if (pattern_.messages.empty()) {
    throw Error(Errc::invalid_argument, "a handshake pattern needs at least one message");
  }
  for (const auto& psk : psks_) {
    if (psk.size() != kKeySize) {
      throw Error(Errc::invalid_argument, "a Noise PSK is 32 bytes");
    }
  }
  symmetric_.mixHash(config.prologue);
  const bool psk = pattern_.usesPsk();
  // Pre-messages: the initiator's first, then the responder's (§7.1).
  auto pre = [&](const std::vector<Token>& tokens, bool mine) {
    for (Token t : tokens) {
      if (t == Token::s) {
        symmetric_.mixHash(mine ? requireLocalStatic().publicKey : requireRemoteStatic());
      } else if (t == Token::e) {
        const PublicKey& pub = mine ? requireLocalEphemeral().publicKey : requireRemoteEphemeral();
        symmetric_.mixHash(pub);
        if (psk) {
          symmetric_.mixKey(pub);
        }
      } else {
        throw Error(Errc::invalid_argument, "a pre-message holds only e and s");
      }
    }
  };
  pre(pattern_.initiatorPreMessage, role_ == Role::initiator);
  pre(pattern_.responderPreMessage, role_ == Role::responder);
}

void HandshakeState::injectEphemeralForTestsOnly(KeyPair ephemeral) {
  injectedEphemeral_ = std::move(ephemeral);
}

bool HandshakeState::isMyTurn() const noexcept {
  if (isComplete()) {
    return false;
  }
  const bool initiatorTurn = messageIndex_ % 2 == 0;
  return initiatorTurn == (role_ == Role::initiator);
}

bool HandshakeState::isComplete() const noexcept {
  return messageIndex_ >= pattern_.messages.size();
}

const KeyPair& HandshakeState::requireLocalStatic() const {
  if (!s_) {
    throw Error(Errc::invalid_argument, "this handshake needs a local static key");
  }
  return *s_;
}

const PublicKey& HandshakeState::requireRemoteStatic() const {
  if (!rs_) {
    throw Error(Errc::invalid_argument, "this handshake needs the peer's static key");
  }
  return *rs_;
}

const KeyPair& HandshakeState::requireLocalEphemeral() const {
  if (!e_) {
    throw Error(Errc::invalid_argument, "this handshake needs a local ephemeral key");
  }
  return *e_;
}

const PublicKey& HandshakeState::requireRemoteEphemeral() const {
  if (!re_) {
    throw Error(Errc::protocol, "the peer's ephemeral key is missing");
  }
  return *re_;
}

void HandshakeState::dh(const KeyPair& local, const PublicKey& remote) {
  std::array<std::uint8_t, kKeySize> shared{};
  // libsodium refuses low-order points (all-zero output): fail closed.
  if (crypto_scalarmult(shared.data(), local.secretKey.data(), remote.data()) != 0) {
    throw Error(Errc::protocol, "the peer sent an invalid public key");
  }
  symmetric_.mixKey(shared);
  sodium_memzero(shared.data(), shared.size());
}

void HandshakeState::mixToken(Token token, bool initiator) {
  switch (token) {
  case Token::ee:
    dh(requireLocalEphemeral(), requireRemoteEphemeral());
    break;
  case Token::es:
    if (initiator) {
      dh(requireLocalEphemeral(), requireRemoteStatic());
    } else {
      dh(requireLocalStatic(), requireRemoteEphemeral());
    }
    break;
  case Token::se:
    if (initiator) {
      dh(requireLocalStatic(), requireRemoteEphemeral());
    } else {
      dh(requireLocalEphemeral(), requireRemoteStatic());
    }
    break;
  case Token::ss:
    dh(requireLocalStatic(), requireRemoteStatic());
    break;
  case Token::psk:
    if (nextPsk_ >= psks_.size()) {
      throw Error(Errc::invalid_argument, "this handshake needs another PSK");
    }
    symmetric_.mixKeyAndHash(psks_[nextPsk_++].span());
    break;
  default:
    throw Error(Errc::internal, "not a key-mixing token");
  }
}

Bytes HandshakeState::writeMessage(std::span<const std::uint8_t> payload) {
  if (!isMyTurn()) {
    throw Error(Errc::invalid_argument, "writeMessage called out of turn");
  }
  const bool initiator = role_ == Role::initiator;
  const bool psk = pattern_.usesPsk();
  Bytes out;
  for (Token t : pattern_.messages[messageIndex_]) {
    switch (t) {
    case Token::e: {
      if (injectedEphemeral_) {
        e_ = std::move(injectedEphemeral_);
        injectedEphemeral_.reset();
      } else {
        e_ = KeyPair::generate(context_);
      }
      out.insert(out.end(), e_->publicKey.begin(), e_->publicKey.end());
      symmetric_.mixHash(e_->publicKey);
      if (psk) {
        symmetric_.mixKey(e_->publicKey);
      }
      break;
    }
    case Token::s: {
      Bytes c = symmetric_.encryptAndHash(requireLocalStatic().publicKey);
      out.insert(out.end(), c.begin(), c.end());
      break;
    }
    case Token::ee:
    case Token::es:
    case Token::se:
    case Token::ss:
    case Token::psk:
      mixToken(t, initiator);
      break;
    }
  }
  Bytes c = symmetric_.encryptAndHash(payload);
  out.insert(out.end(), c.begin(), c.end());
  if (out.size() > kMaxMessage) {
    throw Error(Errc::invalid_argument, "a Noise message is at most 65535 bytes");
  }
  ++messageIndex_;
  if (isComplete()) {
    split_ = symmetric_.split();
  }
  return out;
}

Bytes HandshakeState::readMessage(std::span<const std::uint8_t> message) {
  if (isComplete()) {
    throw Error(Errc::protocol, "a handshake message arrived after the handshake");
  }
  if (isMyTurn()) {
    throw Error(Errc::invalid_argument, "readMessage called out of turn");
  }
  if (message.size() > kMaxMessage) {
    throw Error(Errc::protocol, "a Noise message is at most 65535 bytes");
  }
  const bool initiator = role_ == Role::initiator;
  const bool psk = pattern_.usesPsk();
  auto take = [&](std::size_t n) {
    if (message.size() < n) {
      throw Error(Errc::protocol, "a handshake message is truncated");
    }
    auto part = message.first(n);
    message = message.subspan(n);
    return part;
  };
  for (Token t : pattern_.messages[messageIndex_]) {
    switch (t) {
    case Token::e: {
      PublicKey re{};
      auto part = take(kKeySize);
      std::copy(part.begin(), part.end(), re.begin());
      re_ = re;
      symmetric_.mixHash(re);
      if (psk) {
        symmetric_.mixKey(re);
      }
      break;
    }
    case Token::s: {
      auto part = take(symmetric_.hasKey() ? kKeySize + kTagSize : kKeySize);
      Bytes plain = symmetric_.decryptAndHash(part);
      PublicKey rs{};
      std::copy(plain.begin(), plain.end(), rs.begin());
      rs_ = rs;
      break;
    }
    case Token::ee:
    case Token::es:
    case Token::se:
    case Token::ss:
    case Token::psk:
      mixToken(t, initiator);
      break;
    }
  }
  Bytes payload = symmetric_.decryptAndHash(message);
  ++messageIndex_;
  if (isComplete()) {
    split_ = symmetric_.split();
  }
  return payload;
}

TransportCiphers HandshakeState::finish() {
  if (!split_ || finished_) {
    throw Error(Errc::invalid_argument, "the handshake is not complete");
  }
  finished_ = true;
  auto [c1, c2] = std::move(*split_);
  split_.reset();
  if (role_ == Role::initiator) {
    return {std::move(c1), std::move(c2), symmetric_.handshakeHash()};
  }
  return {std::move(c2), std::move(c1), symmetric_.handshakeHash()};
}

} // namespace outpost::protocol::noise
