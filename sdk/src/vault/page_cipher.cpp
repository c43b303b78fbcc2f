#include "page_cipher.hpp"

#include "page_aead.hpp"

#include <outpost/error.hpp>

#include <sodium.h>

#include <cassert>
#include <cstring>

namespace outpost::vault {

namespace {
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "OPvault1";
enum SubkeyId : std::uint64_t {
  kDatabaseSubkey = 1,
  // 2 is retired (WAL pages use the database key since on-disk version 1)
  kWalMaskSubkey = 3,
  kJournalSubkey = 4,
  kJournalMaskSubkey = 5,
  kWalMacSubkey = 6,
  // 7 seals the commit counter (page_cipher.hpp)
  kPageTableSubkey = 8,
};

/// A page key as the cipher takes it (every page key is kKeyBytes long).
std::span<const unsigned char, aead::kKeyBytes> keySpan(const SecretBytes& key) noexcept {
  assert(key.size() == aead::kKeyBytes);
  return std::span<const unsigned char, aead::kKeyBytes>(key.data(), aead::kKeyBytes);
}

} // namespace

SecretBytes deriveSubkey(std::span<const unsigned char> databaseKey, std::uint64_t id) {
  if (databaseKey.size() != crypto_kdf_KEYBYTES) {
    throw Error(Errc::internal, "database key has the wrong size");
  }
  SecretBytes key(kKeyBytes);
  if (crypto_kdf_derive_from_key(key.data(), key.size(), id, kKdfContext, databaseKey.data()) !=
      0) {
    throw Error(Errc::internal, "key derivation failed");
  }
  return key;
}

PageKeys PageKeys::derive(std::span<const unsigned char> databaseKey, const DatabaseId& id) {
  PageKeys keys;
  keys.databaseId = id;
  keys.database = deriveSubkey(databaseKey, kDatabaseSubkey);
  keys.walMask = deriveSubkey(databaseKey, kWalMaskSubkey);
  keys.walMac = deriveSubkey(databaseKey, kWalMacSubkey);
  keys.journal = deriveSubkey(databaseKey, kJournalSubkey);
  keys.journalMask = deriveSubkey(databaseKey, kJournalMaskSubkey);
  keys.pageTable = deriveSubkey(databaseKey, kPageTableSubkey);
  return keys;
}

PageAad::PageAad(const DatabaseId& id, FileRole role, std::uint64_t position,
                 std::span<const unsigned char> extra) {
  std::memcpy(buf_.data(), id.data(), id.size());
  std::size_t at = id.size();
  buf_[at++] = static_cast<unsigned char>(role);
  for (int shift = 56; shift >= 0; shift -= 8) {
    buf_[at++] = static_cast<unsigned char>(position >> shift);
  }
  const std::size_t n = std::min(extra.size(), buf_.size() - at);
  if (n > 0) {
    std::memcpy(buf_.data() + at, extra.data(), n);
  }
  len_ = at + n;
}

NonceSource::NonceSource() : seed_(crypto_stream_chacha20_KEYBYTES) {
  randombytes_buf(seed_.data(), seed_.size());
}

Nonce NonceSource::next() noexcept {
  std::array<unsigned char, crypto_stream_chacha20_NONCEBYTES> position{};
  for (std::size_t i = 0; i < position.size(); ++i) {
    position[i] = static_cast<unsigned char>(counter_ >> (8 * i));
  }
  ++counter_;
  Nonce nonce{};
  crypto_stream_chacha20(nonce.data(), nonce.size(), position.data(), seed_.data());
  return nonce;
}

void sealPage(const SecretBytes& key, const PageAad& aad, const Nonce& nonce,
              std::span<const unsigned char> plain, std::span<unsigned char> out) noexcept {
  unsigned char* storedNonce = out.data() + kUsableBytes;
  unsigned char* tag = storedNonce + kNonceBytes;
  std::memcpy(storedNonce, nonce.data(), kNonceBytes);
  aead::seal(keySpan(key), nonce, aad.bytes(), plain.first(kUsableBytes), out.data(), tag);
  std::memset(tag + kTagBytes, 0, kFrameMacBytes);
}

bool openPage(const SecretBytes& key, const PageAad& aad, std::span<const unsigned char> sealed,
              std::span<unsigned char> out) noexcept {
  const unsigned char* nonce = sealed.data() + kUsableBytes;
  const unsigned char* tag = nonce + kNonceBytes;
  const bool ok =
      aead::open(keySpan(key), std::span<const unsigned char, kNonceBytes>(nonce, kNonceBytes),
                 aad.bytes(), sealed.first(kUsableBytes), tag, out.data());
  std::memset(out.data() + kUsableBytes, 0, kReserveBytes);
  return ok;
}

std::span<const unsigned char, kNonceBytes>
pageNonce(std::span<const unsigned char> sealed) noexcept {
  return std::span<const unsigned char, kNonceBytes>(sealed.data() + kUsableBytes, kNonceBytes);
}

void maskWithNonce(const SecretBytes& key, std::span<const unsigned char, kNonceBytes> nonce,
                   std::span<unsigned char> data) noexcept {
  crypto_stream_xchacha20_xor(data.data(), data.data(), data.size(), nonce.data(), key.data());
}

} // namespace outpost::vault
