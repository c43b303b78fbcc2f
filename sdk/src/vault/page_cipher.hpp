#pragma once
/// \file
/// Page encryption for the vault's files: XChaCha20-Poly1305 (page_aead.hpp) with a
/// fresh random 24-byte nonce per write, nonce and tag kept in the last 40 bytes of
/// each page (SQLite's reserve bytes), and associated data that binds the database
/// id, the file role and the page's position.
///
/// Reserve layout (last 56 bytes of every 4096-byte page):
///   nonce 24 | tag 16 | frame MAC 16 (WAL frames only; zero elsewhere)

#include <outpost/secret.hpp>

#include <array>
#include <cstdint>
#include <span>

namespace outpost::vault {

inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kNonceBytes = 24;
inline constexpr std::size_t kTagBytes = 16;
inline constexpr std::size_t kFrameMacBytes = 16;
/// Reserve bytes per page, set with SQLITE_FCNTL_RESERVE_BYTES.
inline constexpr std::size_t kReserveBytes = kNonceBytes + kTagBytes + kFrameMacBytes;
/// Bytes of each page that SQLite uses and that are encrypted.
inline constexpr std::size_t kUsableBytes = kPageSize - kReserveBytes;
inline constexpr std::size_t kDatabaseIdBytes = 16;
inline constexpr std::size_t kKeyBytes = 32;

using DatabaseId = std::array<unsigned char, kDatabaseIdBytes>;

/// Which file a page lives in; part of the associated data.
enum class FileRole : std::uint8_t { database = 1, wal = 2, journal = 3 };

/// The per-file subkeys, derived from the database key (DEK) with
/// crypto_kdf_derive_from_key. Owned in guarded memory; wiped on destruction.
struct PageKeys {
  DatabaseId databaseId{};
  SecretBytes database;    ///< pages of the main file and page images in the WAL
  SecretBytes walMask;     ///< masks WAL frame-header checksums
  SecretBytes walMac;      ///< binds a WAL page to its frame (index, header)
  SecretBytes journal;     ///< page images in the rollback journal
  SecretBytes journalMask; ///< masks rollback-journal page checksums
  SecretBytes pageTable;   ///< authenticates the page table (page_table.hpp)

  static PageKeys derive(std::span<const unsigned char> databaseKey, const DatabaseId& id);
};

/// A 32-byte subkey of the database key, for purpose `id` (1-6 and 8 are the page
/// keys above; 7 seals the commit counter).
[[nodiscard]] SecretBytes deriveSubkey(std::span<const unsigned char> databaseKey,
                                       std::uint64_t id);
inline constexpr std::uint64_t kCounterSealSubkey = 7;

/// Associated data: database id | role | 64-bit position | optional extra bytes
/// (the WAL frame header).
class PageAad {
public:
  PageAad(const DatabaseId& id, FileRole role, std::uint64_t position,
          std::span<const unsigned char> extra = {});
  [[nodiscard]] std::span<const unsigned char> bytes() const noexcept {
    return {buf_.data(), len_};
  }

private:
  std::array<unsigned char, kDatabaseIdBytes + 1 + 8 + 32> buf_{};
  std::size_t len_ = 0;
};

using Nonce = std::array<unsigned char, kNonceBytes>;

/// Fresh random nonces without a system call per page: a ChaCha20 keystream
/// (a CSPRNG) keyed by 32 bytes from the OS, drawn once per source. Each nonce is
/// 24 unpredictable bytes; a source serves one vault connection.
class NonceSource {
public:
  NonceSource();
  [[nodiscard]] Nonce next() noexcept;

private:
  SecretBytes seed_;
  std::uint64_t counter_ = 0;
};

/// Encrypts the first kUsableBytes of `plain` (kPageSize bytes) into `out`
/// (kPageSize bytes) under `nonce`; nonce and tag go to the reserve, the frame-MAC
/// slot is zeroed. `plain` and `out` may not overlap.
void sealPage(const SecretBytes& key, const PageAad& aad, const Nonce& nonce,
              std::span<const unsigned char> plain, std::span<unsigned char> out) noexcept;

/// Authenticates and decrypts `sealed` (kPageSize bytes) into `out`; the reserve of
/// `out` is zero-filled (what SQLite had in memory). False if authentication fails,
/// in which case `out` is zero-filled.
[[nodiscard]] bool openPage(const SecretBytes& key, const PageAad& aad,
                            std::span<const unsigned char> sealed,
                            std::span<unsigned char> out) noexcept;

/// The nonce stored in a sealed page.
[[nodiscard]] std::span<const unsigned char, kNonceBytes>
pageNonce(std::span<const unsigned char> sealed) noexcept;

/// XORs `data` with the XChaCha20 keystream for (key, nonce): masks values that
/// SQLite computes from plaintext (checksums) so they do not confirm guesses.
void maskWithNonce(const SecretBytes& key, std::span<const unsigned char, kNonceBytes> nonce,
                   std::span<unsigned char> data) noexcept;

} // namespace outpost::vault
