#pragma once
/// \file
/// SQLite's WAL file format, as far as the vault's VFS needs it: header and frame
/// layout, SQLite's running checksum, and the scan that tells a crash-torn tail
/// from tampering when a vault is opened.

#include "page_cipher.hpp"

#include <cstdint>
#include <span>

namespace outpost::vault {

inline constexpr std::size_t kWalHeaderBytes = 32;
inline constexpr std::size_t kFrameHeaderBytes = 24;
inline constexpr std::size_t kFrameBytes = kFrameHeaderBytes + kPageSize;

/// Offset of frame `index` (1-based) in the WAL.
[[nodiscard]] constexpr std::int64_t frameOffset(std::uint32_t index) noexcept {
  return static_cast<std::int64_t>(kWalHeaderBytes) +
         static_cast<std::int64_t>(index - 1) * static_cast<std::int64_t>(kFrameBytes);
}

[[nodiscard]] std::uint32_t getBigEndian32(const unsigned char* p) noexcept;

/// SQLite's WAL checksum over `data` (a multiple of 8 bytes), continuing from
/// (s1, s2). `bigEndian` follows the low bit of the WAL magic.
void walChecksum(bool bigEndian, std::span<const unsigned char> data, std::uint32_t& s1,
                 std::uint32_t& s2) noexcept;

/// Turns a plaintext frame (header as SQLite wrote it + page) into its stored form:
/// - the page sealed exactly as it will be in the database file (database key,
///   AAD = database id | database role | page number), so that a checkpoint can
///   copy the sealed page without sealing it again;
/// - a frame MAC (keyed BLAKE2b over frame index | plaintext header | page nonce
///   and tag) in the page's last 16 reserve bytes, binding page, header and
///   position together;
/// - the header's two checksum words (a function of the plaintext) masked with
///   the XChaCha20 keystream of the page's nonce.
void sealFrame(const PageKeys& keys, std::uint32_t index,
               std::span<const unsigned char, kFrameHeaderBytes> header,
               std::span<const unsigned char> page, const Nonce& nonce,
               std::span<unsigned char> out) noexcept;

/// The inverse of sealFrame. False if the frame does not authenticate (then `out`
/// is zero-filled).
[[nodiscard]] bool openFrame(const PageKeys& keys, std::uint32_t index,
                             std::span<const unsigned char> stored,
                             std::span<unsigned char> out) noexcept;

/// What the open-time scan of a WAL found.
struct WalScan {
  bool tampered = false;
  /// Frames 1..validFrames authenticate, carry the header's salts and continue
  /// SQLite's checksum chain: the prefix SQLite's recovery will accept.
  std::uint32_t validFrames = 0;
  std::uint32_t totalFrames = 0;
};

/// Scans a whole WAL file's bytes. When every commit syncs the WAL
/// (`syncedCommits`, synchronous=FULL), a crash can tear only the frames written
/// after the last sync, i.e. the transaction in flight; so an invalid frame
/// followed by two or more authentic commit frames of the same generation (the
/// invalid frame itself counting as one when its clear header says it is a
/// commit of this generation) is tampering. Without synced commits a power loss may keep later
/// frames and lose earlier ones, so that case cannot be told from tampering.
[[nodiscard]] WalScan scanWal(const PageKeys& keys, std::span<const unsigned char> wal,
                              bool syncedCommits);

} // namespace outpost::vault
