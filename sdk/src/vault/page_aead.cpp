#include "page_aead.hpp"

#include <sodium.h>

#if OUTPOST_HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/evp.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

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
  // Fetched once, from OpenSSL's default provider (not whatever a configuration
  // file offers): an implicit fetch on every init costs more than a page's
  // encryption. Kept for the life of the process.
  static EVP_CIPHER* const cipher =
      EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", "provider=default");
  return cipher;
}

/// A new context set to the cipher (each message then only sets its key and
/// nonce), or nullptr if libcrypto cannot give one.
EVP_CIPHER_CTX* newContext() noexcept {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr || chachaPoly() == nullptr ||
      EVP_CipherInit_ex2(ctx, chachaPoly(), nullptr, nullptr, 1, nullptr) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

/// One thread's cipher context. The last message's key stays in it until the
/// thread's next message or until forgetMessages(), which a vault calls when it
/// drops its page keys (lock, close, wipe): re-keying after every message cost a
/// sixth of a page's seal and open.
struct ThreadCipher {
  std::mutex mutex;              // held by the thread for each message, and by forgetMessages()
  EVP_CIPHER_CTX* ctx = nullptr; // nullptr: libcrypto failed; the thread uses libsodium
  bool holdsMessage = false;     // a message's key or state may be in ctx
  std::uint64_t messages = 0;    // sealed or opened by libcrypto (tests)
};

/// Every thread's cipher, for forgetMessages(). Never destroyed: threads can end
/// after static destruction.
struct CipherRegistry {
  std::mutex mutex;
  std::vector<ThreadCipher*> ciphers;
};

/// nullptr only if the registry could not be allocated (then no thread uses
/// libcrypto).
CipherRegistry* registry() noexcept {
  static auto* const r = new (std::nothrow) CipherRegistry;
  return r;
}

/// Set at exit, just before libcrypto cleans itself up: from then on libsodium
/// seals and opens every page, and contexts are no longer touched.
std::atomic<bool> libcryptoClosed{false};

// The thread's cipher. Plain thread_locals (no destructor of their own), so that
// a seal from a destructor that runs after the owner's finds either the cipher or
// `threadCipherGone`, and falls back to libsodium.
thread_local ThreadCipher* threadCipherPtr = nullptr;
thread_local bool threadCipherGone = false;

/// Failures injected by tests (testing::failLibcrypto), counted down per thread
/// (messages, and clearing a context in forgetMessages).
thread_local int injectedFailures = 0;

bool injectedFailure() noexcept {
  if (injectedFailures > 0) {
    --injectedFailures;
    return true;
  }
  return false;
}

/// Contexts freed and made again because libcrypto failed to clear them (tests).
std::atomic<std::uint64_t> replacedContexts{0};

/// Leaves nothing of the last message in `ctx`: re-keyed with zeros, which replaces
/// the key, then one byte encrypted under that, which replaces the buffered
/// keystream block (the message's last one, or its Poly1305 key) and the Poly1305
/// state. False if libcrypto failed to.
bool forgetMessage(EVP_CIPHER_CTX* ctx) noexcept {
  static constexpr std::array<unsigned char, 32> kZeroKey{};
  static constexpr std::array<unsigned char, 12> kZeroIv{};
  unsigned char scratch = 0;
  int len = 0;
  return EVP_CipherInit_ex2(ctx, nullptr, kZeroKey.data(), kZeroIv.data(), 1, nullptr) == 1 &&
         EVP_CipherUpdate(ctx, &scratch, &len, &scratch, 1) == 1;
}

/// Clears the cipher's last message (its mutex held). If libcrypto fails to, the
/// context is freed, which wipes it, and a new one takes its place.
void clearMessage(ThreadCipher& cipher) noexcept {
  if (!cipher.holdsMessage) {
    return;
  }
  if (cipher.ctx != nullptr && (injectedFailure() || !forgetMessage(cipher.ctx))) {
    EVP_CIPHER_CTX_free(cipher.ctx);
    cipher.ctx = newContext();
    replacedContexts.fetch_add(1, std::memory_order_relaxed);
  }
  cipher.holdsMessage = false;
}

struct ThreadCipherOwner {
  ThreadCipherOwner() = default;
  ~ThreadCipherOwner() {
    ThreadCipher* const cipher = std::exchange(threadCipherPtr, nullptr);
    threadCipherGone = true;
    if (cipher == nullptr) {
      return;
    }
    CipherRegistry* const r = registry(); // not null: the cipher is registered in it
    {
      const std::lock_guard lock(r->mutex);
      std::erase(r->ciphers, cipher);
    }
    if (!libcryptoClosed.load()) {
      EVP_CIPHER_CTX_free(cipher->ctx); // libcrypto wipes the key it holds
    }                                   // else: forgotten at exit already, and libcrypto is gone
    delete cipher;
  }
  ThreadCipherOwner(const ThreadCipherOwner&) = delete;
  ThreadCipherOwner& operator=(const ThreadCipherOwner&) = delete;
};

/// One cipher per thread (a vault connection is used by one thread at a time, but
/// several vaults may be open on several threads). nullptr if libcrypto cannot
/// give one.
ThreadCipher* threadCipher() noexcept {
  if (threadCipherPtr != nullptr || threadCipherGone) {
    return threadCipherPtr;
  }
  CipherRegistry* const r = registry();
  if (r == nullptr) {
    return nullptr;
  }
  thread_local const ThreadCipherOwner owner;
  EVP_CIPHER_CTX* const ctx = newContext();
  auto* const cipher = ctx != nullptr ? new (std::nothrow) ThreadCipher : nullptr;
  if (cipher == nullptr) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  cipher->ctx = ctx;
  try {
    const std::lock_guard lock(r->mutex);
    r->ciphers.push_back(cipher);
  } catch (const std::exception&) { // std::bad_alloc, std::system_error
    EVP_CIPHER_CTX_free(ctx);
    delete cipher;
    return nullptr;
  }
  threadCipherPtr = cipher;
  return cipher;
}

/// Clears every thread's last message, each cipher's mutex held in turn (waiting
/// for a message in progress). With `close`, first stops libcrypto's use (under the
/// registry's lock, so a message that starts after its cipher is cleared finds the
/// flag set and uses libsodium).
void clearEveryCipher(bool close) noexcept;

/// Registered with atexit after libcrypto's first use, so it runs before
/// libcrypto's own clean-up.
void closeLibcrypto() noexcept { clearEveryCipher(true); }

bool fitsInt(std::size_t n) noexcept { return n <= static_cast<std::size_t>(INT_MAX); }

/// Errors libcrypto queues on this thread during one message are dropped with it,
/// so that they never reach another user of OpenSSL in the app.
struct ErrorQueueMark {
  ErrorQueueMark() noexcept { (void)ERR_set_mark(); }
  ~ErrorQueueMark() { (void)ERR_pop_to_mark(); }
  ErrorQueueMark(const ErrorQueueMark&) = delete;
  ErrorQueueMark& operator=(const ErrorQueueMark&) = delete;
};

/// The calling thread's cipher, held (its mutex locked) for one message, which it
/// marks as held in the context. ctx() is nullptr when libcrypto is not to be used:
/// no context, or libcrypto closing at exit.
class HeldCipher {
public:
  HeldCipher() noexcept : cipher_(threadCipher()) {
    if (cipher_ == nullptr) {
      return;
    }
    cipher_->mutex.lock();
    if (cipher_->ctx == nullptr || libcryptoClosed.load(std::memory_order_relaxed)) {
      cipher_->mutex.unlock();
      cipher_ = nullptr;
      return;
    }
    cipher_->holdsMessage = true;
  }
  ~HeldCipher() {
    if (cipher_ != nullptr) {
      cipher_->mutex.unlock();
    }
  }
  HeldCipher(const HeldCipher&) = delete;
  HeldCipher& operator=(const HeldCipher&) = delete;

  [[nodiscard]] EVP_CIPHER_CTX* ctx() const noexcept {
    return cipher_ != nullptr ? cipher_->ctx : nullptr;
  }
  /// Counts a message libcrypto completed (tests).
  void counted(bool done) noexcept { cipher_->messages += done ? 1 : 0; }

private:
  ThreadCipher* cipher_;
};

Result sslSeal(std::span<const unsigned char, kKeyBytes> key,
               std::span<const unsigned char, kNonceBytes> nonce,
               std::span<const unsigned char> aad, std::span<const unsigned char> plain,
               unsigned char* out, unsigned char* tag) noexcept {
  if (libcryptoClosed.load(std::memory_order_acquire) || !fitsInt(plain.size()) ||
      !fitsInt(aad.size())) {
    return Result::unavailable;
  }
  const ErrorQueueMark mark;
  HeldCipher cipher;
  EVP_CIPHER_CTX* const ctx = cipher.ctx();
  if (ctx == nullptr) {
    return Result::unavailable;
  }
  const Subkey sub(key, nonce);
  int len = 0;
  int tail = 0;
  const bool ok =
      EVP_CipherInit_ex2(ctx, nullptr, sub.key.data(), sub.iv.data(), 1, nullptr) == 1 &&
      (aad.empty() ||
       EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1) &&
      (plain.empty() ||
       EVP_EncryptUpdate(ctx, out, &len, plain.data(), static_cast<int>(plain.size())) == 1) &&
      !injectedFailure() && EVP_EncryptFinal_ex(ctx, out, &tail) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagBytes), tag) == 1;
  cipher.counted(ok);
  return ok ? Result::ok : Result::unavailable;
}

Result sslOpen(std::span<const unsigned char, kKeyBytes> key,
               std::span<const unsigned char, kNonceBytes> nonce,
               std::span<const unsigned char> aad, std::span<const unsigned char> sealed,
               const unsigned char* tag, unsigned char* out) noexcept {
  if (libcryptoClosed.load(std::memory_order_acquire) || !fitsInt(sealed.size()) ||
      !fitsInt(aad.size())) {
    return Result::unavailable;
  }
  const ErrorQueueMark mark;
  HeldCipher cipher;
  EVP_CIPHER_CTX* const ctx = cipher.ctx();
  if (ctx == nullptr) {
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
      (sealed.empty() ||
       EVP_DecryptUpdate(ctx, out, &len, sealed.data(), static_cast<int>(sealed.size())) == 1) &&
      !injectedFailure() &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(expected.size()),
                          expected.data()) == 1;
  const bool authentic = ready && EVP_DecryptFinal_ex(ctx, out, &tail) == 1;
  if (!authentic && !sealed.empty()) {
    // Decrypted before the tag was checked: nothing of it may stay.
    sodium_memzero(out, sealed.size());
  }
  if (!ready) {
    return Result::unavailable;
  }
  cipher.counted(authentic);
  return authentic ? Result::ok : Result::rejected;
}

/// The self-test of the first use: libcrypto must give libsodium's bytes for a page
/// and for a short odd-sized message, open them, and refuse a changed tag.
bool opensslAgreesOnSamples() noexcept {
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
    if (sslOpen(key, nonce, aad, sealed, expectedTag.data(), back.data()) != Result::rejected ||
        !std::all_of(back.begin(), back.begin() + static_cast<std::ptrdiff_t>(size),
                     [](unsigned char b) { return b == 0; })) {
      return false;
    }
  }
  return true;
}

bool opensslAgrees() noexcept {
  // Failures a test injected before the first use are meant for its own message,
  // not for this test of the library.
  const int injected = std::exchange(injectedFailures, 0);
  const bool agrees = opensslAgreesOnSamples();
  injectedFailures = injected;
  return agrees;
}

bool useOpenssl() noexcept {
  static const bool use = [] {
    const bool agrees = opensslAgrees();
    // libcrypto is initialised now (and registered its clean-up at exit, if it
    // does): this handler runs before that clean-up.
    (void)std::atexit(closeLibcrypto);
    return agrees;
  }();
  return use;
}

#endif // OUTPOST_HAVE_OPENSSL

} // namespace

namespace {
/// Whether [a, a+n) and [b, b+n) share no byte (std::less: a total order on pointers).
[[maybe_unused]] bool disjoint(const unsigned char* a, const unsigned char* b,
                               std::size_t n) noexcept {
  const std::less<const unsigned char*> before;
  return n == 0 || !before(b, a + n) || !before(a, b + n);
}
} // namespace

void seal(std::span<const unsigned char, kKeyBytes> key,
          std::span<const unsigned char, kNonceBytes> nonce, std::span<const unsigned char> aad,
          std::span<const unsigned char> plain, unsigned char* out, unsigned char* tag) noexcept {
  // libsodium seals again from `plain` if libcrypto fails half-way: `out` must not
  // overlap `plain`.
  assert(disjoint(out, plain.data(), plain.size()));
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
  assert(disjoint(out, sealed.data(), sealed.size()));
#if OUTPOST_HAVE_OPENSSL
  if (useOpenssl() && sslOpen(key, nonce, aad, sealed, tag, out) == Result::ok) {
    return true;
  }
  // A page libcrypto refused or could not open: libsodium decides, so a failure of
  // the library is never taken for a forged page (a forged one costs two checks).
#endif
  return sodiumOpen(key, nonce, aad, sealed, tag, out);
}

namespace {
void clearEveryCipher(bool close) noexcept {
#if OUTPOST_HAVE_OPENSSL
  CipherRegistry* const r = registry();
  if (r == nullptr) { // no thread ever had a context
    if (close) {
      libcryptoClosed.store(true);
    }
    return;
  }
  const std::lock_guard lock(r->mutex);
  if (libcryptoClosed.load()) {
    return; // cleared when it closed, and libcrypto may be gone
  }
  libcryptoClosed.store(close);
  const ErrorQueueMark mark;
  for (ThreadCipher* const cipher : r->ciphers) {
    const std::lock_guard held(cipher->mutex);
    clearMessage(*cipher);
  }
#else
  (void)close;
#endif
}
} // namespace

void forgetMessages() noexcept { clearEveryCipher(false); }

namespace testing {
namespace {
/// Sums `what` over every registered thread's cipher.
template <typename What>
std::uint64_t sumOverCiphers([[maybe_unused]] What what) noexcept {
  std::uint64_t n = 0;
#if OUTPOST_HAVE_OPENSSL
  CipherRegistry* const r = registry();
  if (r == nullptr) {
    return 0;
  }
  const std::lock_guard lock(r->mutex);
  for (ThreadCipher* const cipher : r->ciphers) {
    const std::lock_guard held(cipher->mutex);
    n += what(*cipher);
  }
#endif
  return n;
}
} // namespace

std::size_t contextsHoldingMessage() noexcept {
#if OUTPOST_HAVE_OPENSSL
  return static_cast<std::size_t>(
      sumOverCiphers([](const ThreadCipher& c) -> std::uint64_t { return c.holdsMessage; }));
#else
  return 0;
#endif
}

std::uint64_t replacedContexts() noexcept {
#if OUTPOST_HAVE_OPENSSL
  return aead::replacedContexts.load();
#else
  return 0;
#endif
}

std::uint64_t libcryptoMessages() noexcept {
#if OUTPOST_HAVE_OPENSSL
  return sumOverCiphers([](const ThreadCipher& c) { return c.messages; });
#else
  return 0;
#endif
}

void failLibcrypto(int calls) noexcept {
#if OUTPOST_HAVE_OPENSSL
  injectedFailures = calls;
#else
  (void)calls;
#endif
}
} // namespace testing

std::string_view implementation() noexcept {
#if OUTPOST_HAVE_OPENSSL
  if (useOpenssl()) {
    return "openssl";
  }
#endif
  return "libsodium";
}

} // namespace outpost::vault::aead
