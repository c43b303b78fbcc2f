#include "page_aead.hpp"

#include <sodium.h>

#if OUTPOST_HAVE_OPENSSL
#include <openssl/evp.h>
#endif

#include <array>
#include <climits>
#include <cstring>
#include <memory>

namespace outpost::vault::aead {

namespace {

void sodiumSeal(std::span<const unsigned char, kKeyBytes> key,
                std::span<const unsigned char, kNonceBytes> nonce,
                std::span<const unsigned char> aad, std::span<const unsigned char> plain,
                unsigned char* out, unsigned char* tag) noexcept {
  crypto_aead_xchacha20poly1305_ietf_encrypt_detached(out, tag, nullptr, plain.data(), plain.size(),
                                                      aad.data(), aad.size(), nullptr, nonce.data(),
                                                      key.data());
}

bool sodiumOpen(std::span<const unsigned char, kKeyBytes> key,
                std::span<const unsigned char, kNonceBytes> nonce,
                std::span<const unsigned char> aad, std::span<const unsigned char> sealed,
                const unsigned char* tag, unsigned char* out) noexcept {
  // libsodium checks the tag before it writes anything to `out`.
  if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
          out, nullptr, sealed.data(), sealed.size(), tag, aad.data(), aad.size(), nonce.data(),
          key.data()) != 0) {
    if (!sealed.empty()) {
      std::memset(out, 0, sealed.size());
    }
    return false;
  }
  return true;
}

#if OUTPOST_HAVE_OPENSSL

enum class Result { ok, rejected, unavailable };

/// The ChaCha20-Poly1305 key and nonce of one message: HChaCha20(key, nonce[0..16])
/// and 0^4 | nonce[16..24]. Wiped when it goes.
struct Subkey {
  std::array<unsigned char, 32> key{};
  std::array<unsigned char, 12> iv{};

  Subkey(std::span<const unsigned char, kKeyBytes> k,
         std::span<const unsigned char, kNonceBytes> nonce) noexcept {
    crypto_core_hchacha20(key.data(), nonce.data(), k.data(), nullptr);
    std::memcpy(iv.data() + 4, nonce.data() + 16, 8);
  }
  ~Subkey() { sodium_memzero(key.data(), key.size()); }
  Subkey(const Subkey&) = delete;
  Subkey& operator=(const Subkey&) = delete;
};

const EVP_CIPHER* chachaPoly() noexcept {
  // Fetched once: an implicit fetch on every init costs more than a page's
  // encryption. Kept for the life of the process.
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  return cipher;
}

struct ContextFree {
  void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};

/// One cipher context per thread (a vault connection is used by one thread at a
/// time, but several vaults may be open on several threads), set to the cipher
/// once: each message then only sets its key and nonce. libcrypto wipes its key
/// when it frees it. nullptr if libcrypto cannot give one.
EVP_CIPHER_CTX* threadContext() noexcept {
  thread_local const std::unique_ptr<EVP_CIPHER_CTX, ContextFree> ctx(EVP_CIPHER_CTX_new());
  thread_local const bool ready =
      ctx != nullptr && chachaPoly() != nullptr &&
      EVP_CipherInit_ex2(ctx.get(), chachaPoly(), nullptr, nullptr, 1, nullptr) == 1;
  return ready ? ctx.get() : nullptr;
}

/// Leaves no message key in the thread's context between uses: the context is
/// re-keyed with zeros.
void forgetKey(EVP_CIPHER_CTX* ctx) noexcept {
  static constexpr std::array<unsigned char, 32> kZeroKey{};
  (void)EVP_CipherInit_ex2(ctx, nullptr, kZeroKey.data(), nullptr, -1, nullptr);
}

bool fitsInt(std::size_t n) noexcept { return n <= static_cast<std::size_t>(INT_MAX); }

/// Encrypts or decrypts `n` bytes (n <= INT_MAX). libcrypto's vector code takes
/// whole 64-byte blocks: a page's 4,040 bytes go as 4,032 and then 8, which is
/// ~10 % faster than one call that ends in a partial block.
bool cryptUpdate(EVP_CIPHER_CTX* ctx, unsigned char* out, const unsigned char* in,
                 std::size_t n) noexcept {
  int len = 0;
  const std::size_t whole = n - n % 64;
  if (whole > 0 && EVP_CipherUpdate(ctx, out, &len, in, static_cast<int>(whole)) != 1) {
    return false;
  }
  return whole == n ||
         EVP_CipherUpdate(ctx, out + whole, &len, in + whole, static_cast<int>(n - whole)) == 1;
}

Result sslSeal(std::span<const unsigned char, kKeyBytes> key,
               std::span<const unsigned char, kNonceBytes> nonce,
               std::span<const unsigned char> aad, std::span<const unsigned char> plain,
               unsigned char* out, unsigned char* tag) noexcept {
  EVP_CIPHER_CTX* ctx = threadContext();
  if (ctx == nullptr || !fitsInt(plain.size()) || !fitsInt(aad.size())) {
    return Result::unavailable;
  }
  const Subkey sub(key, nonce);
  int len = 0;
  int tail = 0;
  const bool ok =
      EVP_CipherInit_ex2(ctx, nullptr, sub.key.data(), sub.iv.data(), 1, nullptr) == 1 &&
      (aad.empty() ||
       EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1) &&
      cryptUpdate(ctx, out, plain.data(), plain.size()) &&
      EVP_EncryptFinal_ex(ctx, out, &tail) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagBytes), tag) == 1;
  forgetKey(ctx);
  return ok ? Result::ok : Result::unavailable;
}

Result sslOpen(std::span<const unsigned char, kKeyBytes> key,
               std::span<const unsigned char, kNonceBytes> nonce,
               std::span<const unsigned char> aad, std::span<const unsigned char> sealed,
               const unsigned char* tag, unsigned char* out) noexcept {
  EVP_CIPHER_CTX* ctx = threadContext();
  if (ctx == nullptr || !fitsInt(sealed.size()) || !fitsInt(aad.size())) {
    return Result::unavailable;
  }
  const Subkey sub(key, nonce);
  std::array<unsigned char, kTagBytes> expected{};
  std::memcpy(expected.data(), tag, expected.size());
  int len = 0;
  int tail = 0;
  const bool ready =
      EVP_CipherInit_ex2(ctx, nullptr, sub.key.data(), sub.iv.data(), 0, nullptr) == 1 &&
      (aad.empty() ||
       EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1) &&
      cryptUpdate(ctx, out, sealed.data(), sealed.size()) &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(expected.size()),
                          expected.data()) == 1;
  const bool authentic = ready && EVP_DecryptFinal_ex(ctx, out, &tail) == 1;
  forgetKey(ctx);
  if (!authentic && !sealed.empty()) {
    // Decrypted before the tag was checked: nothing of it may stay.
    sodium_memzero(out, sealed.size());
  }
  if (!ready) {
    return Result::unavailable;
  }
  return authentic ? Result::ok : Result::rejected;
}

/// The self-test of the first use: libcrypto must give libsodium's bytes for a page
/// and for a short odd-sized message, open them, and refuse a changed tag.
bool opensslAgrees() noexcept {
  std::array<unsigned char, kKeyBytes> key{};
  std::array<unsigned char, kNonceBytes> nonce{};
  std::array<unsigned char, 40> aad{};
  std::array<unsigned char, 4040> plain{};
  for (std::size_t i = 0; i < plain.size(); ++i) {
    plain[i] = static_cast<unsigned char>(i * 31 + 7);
  }
  for (std::size_t i = 0; i < key.size(); ++i) {
    key[i] = static_cast<unsigned char>(0x80 + i);
  }
  for (std::size_t i = 0; i < nonce.size(); ++i) {
    nonce[i] = static_cast<unsigned char>(0x40 + i);
  }
  for (std::size_t i = 0; i < aad.size(); ++i) {
    aad[i] = static_cast<unsigned char>(i);
  }
  for (const std::size_t size : {plain.size(), std::size_t{61}}) {
    const auto message = std::span<const unsigned char>(plain).first(size);
    std::array<unsigned char, 4040> expected{};
    std::array<unsigned char, 4040> got{};
    std::array<unsigned char, 4040> back{};
    std::array<unsigned char, kTagBytes> expectedTag{};
    std::array<unsigned char, kTagBytes> gotTag{};
    sodiumSeal(key, nonce, aad, message, expected.data(), expectedTag.data());
    if (sslSeal(key, nonce, aad, message, got.data(), gotTag.data()) != Result::ok ||
        got != expected || gotTag != expectedTag) {
      return false;
    }
    const auto sealed = std::span<const unsigned char>(expected).first(size);
    if (sslOpen(key, nonce, aad, sealed, expectedTag.data(), back.data()) != Result::ok ||
        !std::equal(message.begin(), message.end(), back.begin())) {
      return false;
    }
    expectedTag[0] ^= 1;
    if (sslOpen(key, nonce, aad, sealed, expectedTag.data(), back.data()) != Result::rejected) {
      return false;
    }
  }
  return true;
}

bool useOpenssl() noexcept {
  static const bool use = opensslAgrees();
  return use;
}

#endif // OUTPOST_HAVE_OPENSSL

} // namespace

void seal(std::span<const unsigned char, kKeyBytes> key,
          std::span<const unsigned char, kNonceBytes> nonce, std::span<const unsigned char> aad,
          std::span<const unsigned char> plain, unsigned char* out, unsigned char* tag) noexcept {
#if OUTPOST_HAVE_OPENSSL
  if (useOpenssl() && sslSeal(key, nonce, aad, plain, out, tag) == Result::ok) {
    return;
  }
#endif
  sodiumSeal(key, nonce, aad, plain, out, tag);
}

bool open(std::span<const unsigned char, kKeyBytes> key,
          std::span<const unsigned char, kNonceBytes> nonce, std::span<const unsigned char> aad,
          std::span<const unsigned char> sealed, const unsigned char* tag,
          unsigned char* out) noexcept {
#if OUTPOST_HAVE_OPENSSL
  if (useOpenssl()) {
    const Result r = sslOpen(key, nonce, aad, sealed, tag, out);
    if (r != Result::unavailable) {
      return r == Result::ok;
    }
  }
#endif
  return sodiumOpen(key, nonce, aad, sealed, tag, out);
}

std::string_view implementation() noexcept {
#if OUTPOST_HAVE_OPENSSL
  if (useOpenssl()) {
    return "openssl";
  }
#endif
  return "libsodium";
}

} // namespace outpost::vault::aead
