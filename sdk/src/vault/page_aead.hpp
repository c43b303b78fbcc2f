#pragma once
/// \file
/// XChaCha20-Poly1305 (IETF, detached tag) for the vault's pages: the one cipher
/// every page of every vault file is sealed with.
///
/// The construction is libsodium's `crypto_aead_xchacha20poly1305_ietf`: HChaCha20
/// of the key and the first 16 nonce bytes gives a subkey, and ChaCha20-Poly1305
/// (RFC 8439) under that subkey, with the nonce `0^4 | nonce[16..24]`, seals the
/// message. libsodium computes HChaCha20. The ChaCha20-Poly1305 step is computed by
/// OpenSSL's libcrypto when the build has it (`OUTPOST_OPENSSL`, on by default):
/// its vectorised code takes about 30 % less time per 4 KiB page than libsodium
/// 1.0.18 on the development machine (docs/benchmarks.md). Both give the same bytes,
/// so a vault written by one build opens in the other.
///
/// The first use in a process (a seal, an open or `implementation()`) seals and
/// opens a fixed page both ways. If libcrypto's result differs from libsodium's (a
/// broken or replaced library), the process uses libsodium for every page and
/// `implementation()` says so. A seal that libcrypto fails half-way is done again by
/// libsodium; a page libcrypto refuses is checked again by libsodium.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace outpost::vault::aead {

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kNonceBytes = 24;
inline constexpr std::size_t kTagBytes = 16;

/// Seals `plain` into `out` (same size, not overlapping it) and writes the tag.
void seal(std::span<const unsigned char, kKeyBytes> key,
          std::span<const unsigned char, kNonceBytes> nonce, std::span<const unsigned char> aad,
          std::span<const unsigned char> plain, unsigned char* out, unsigned char* tag) noexcept;

/// Opens `sealed` into `out` (same size, not overlapping it) if `tag` authenticates
/// it with `aad`. On failure returns false and `out` holds zeros: libcrypto decrypts
/// before it checks the tag, and what it wrote is wiped before this returns.
[[nodiscard]] bool open(std::span<const unsigned char, kKeyBytes> key,
                        std::span<const unsigned char, kNonceBytes> nonce,
                        std::span<const unsigned char> aad, std::span<const unsigned char> sealed,
                        const unsigned char* tag, unsigned char* out) noexcept;

/// Wipes the key and state of the last message from every thread's libcrypto
/// context. A context keeps its thread's last message key until that thread's next
/// message; a vault calls this when it drops its page keys (EncryptingVfs's
/// destructor), so that none outlives them. Waits for a message in progress on
/// another thread.
void forgetMessages() noexcept;

/// Which library computes ChaCha20-Poly1305 in this process: "openssl" or
/// "libsodium".
[[nodiscard]] std::string_view implementation() noexcept;

namespace testing {
/// Makes libcrypto's step fail, after it processed the data, for the next `calls`
/// seals and opens on this thread (0 stops it): the fallback to libsodium is then
/// what runs. A forgetMessages() on this thread counts too: the context it fails
/// to clear is replaced. For tests; without libcrypto it does nothing.
void failLibcrypto(int calls) noexcept;
/// Threads whose libcrypto context may hold a message's key now (tests).
[[nodiscard]] std::size_t contextsHoldingMessage() noexcept;
/// Contexts that libcrypto failed to clear, and that were freed and made again.
[[nodiscard]] std::uint64_t replacedContexts() noexcept;
/// Messages libcrypto sealed or opened, over the threads alive now (tests).
[[nodiscard]] std::uint64_t libcryptoMessages() noexcept;
} // namespace testing

} // namespace outpost::vault::aead
