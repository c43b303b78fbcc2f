#include "wal_format.hpp"

#include <sodium.h>

#include <array>
#include <cstring>
#include <vector>

namespace outpost::vault {

namespace {
constexpr std::uint32_t kWalMagic = 0x377f0682;
constexpr std::uint32_t kWalVersion = 3007000;

std::uint32_t loadWord(bool bigEndian, const unsigned char* p) noexcept {
  if (bigEndian) {
    return getBigEndian32(p);
  }
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
} // namespace

std::uint32_t getBigEndian32(const unsigned char* p) noexcept {
  return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
         (static_cast<std::uint32_t>(p[2]) << 8) | static_cast<std::uint32_t>(p[3]);
}

void walChecksum(bool bigEndian, std::span<const unsigned char> data, std::uint32_t& s1,
                 std::uint32_t& s2) noexcept {
  for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
    s1 += loadWord(bigEndian, data.data() + i) + s2;
    s2 += loadWord(bigEndian, data.data() + i + 4) + s1;
  }
}

namespace {
void frameMac(const PageKeys& keys, std::uint32_t index,
              std::span<const unsigned char, kFrameHeaderBytes> header,
              std::span<const unsigned char> sealedPage, unsigned char* mac) noexcept {
  std::array<unsigned char, 4 + kFrameHeaderBytes + kNonceBytes + kTagBytes> msg{};
  msg[0] = static_cast<unsigned char>(index >> 24);
  msg[1] = static_cast<unsigned char>(index >> 16);
  msg[2] = static_cast<unsigned char>(index >> 8);
  msg[3] = static_cast<unsigned char>(index);
  std::memcpy(msg.data() + 4, header.data(), kFrameHeaderBytes);
  std::memcpy(msg.data() + 4 + kFrameHeaderBytes, sealedPage.data() + kUsableBytes,
              kNonceBytes + kTagBytes);
  crypto_generichash(mac, kFrameMacBytes, msg.data(), msg.size(), keys.walMac.data(),
                     keys.walMac.size());
}

PageAad pageAadOf(const PageKeys& keys, const unsigned char* header) {
  return PageAad(keys.databaseId, FileRole::database, getBigEndian32(header));
}
} // namespace

void sealFrame(const PageKeys& keys, std::uint32_t index,
               std::span<const unsigned char, kFrameHeaderBytes> header,
               std::span<const unsigned char> page, const Nonce& nonce,
               std::span<unsigned char> out) noexcept {
  const auto sealed = out.subspan(kFrameHeaderBytes, kPageSize);
  sealPage(keys.database, pageAadOf(keys, header.data()), nonce, page, sealed);
  frameMac(keys, index, header, sealed, sealed.data() + kUsableBytes + kNonceBytes + kTagBytes);
  std::memcpy(out.data(), header.data(), kFrameHeaderBytes);
  maskWithNonce(keys.walMask, pageNonce(sealed), out.subspan(16, 8));
}

bool openFrame(const PageKeys& keys, std::uint32_t index, std::span<const unsigned char> stored,
               std::span<unsigned char> out) noexcept {
  std::array<unsigned char, kFrameHeaderBytes> header{};
  std::memcpy(header.data(), stored.data(), kFrameHeaderBytes);
  const auto sealed = stored.subspan(kFrameHeaderBytes, kPageSize);
  maskWithNonce(keys.walMask, pageNonce(sealed), std::span(header).subspan(16, 8));
  std::array<unsigned char, kFrameMacBytes> mac{};
  frameMac(keys, index, header, sealed, mac.data());
  const bool macOk =
      sodium_memcmp(mac.data(), sealed.data() + kUsableBytes + kNonceBytes + kTagBytes,
                    kFrameMacBytes) == 0;
  if (!macOk || !openPage(keys.database, pageAadOf(keys, header.data()), sealed,
                          out.subspan(kFrameHeaderBytes, kPageSize))) {
    std::memset(out.data(), 0, kFrameBytes);
    return false;
  }
  std::memcpy(out.data(), header.data(), kFrameHeaderBytes);
  return true;
}

WalScan scanWal(const PageKeys& keys, std::span<const unsigned char> wal, bool syncedCommits) {
  WalScan scan;
  if (wal.size() < kWalHeaderBytes) {
    return scan;
  }
  scan.totalFrames = static_cast<std::uint32_t>((wal.size() - kWalHeaderBytes) / kFrameBytes);
  const unsigned char* hdr = wal.data();
  const std::uint32_t magic = getBigEndian32(hdr);
  const bool bigEndian = (magic & 1u) != 0;
  std::uint32_t s1 = 0;
  std::uint32_t s2 = 0;
  walChecksum(bigEndian, wal.subspan(0, 24), s1, s2);
  const bool headerValid = (magic & ~1u) == kWalMagic && getBigEndian32(hdr + 4) == kWalVersion &&
                           getBigEndian32(hdr + 8) == kPageSize && s1 == getBigEndian32(hdr + 24) &&
                           s2 == getBigEndian32(hdr + 28);

  std::vector<unsigned char> frame(kFrameBytes);
  const auto frameAt = [&](std::uint32_t index) {
    return wal.subspan(static_cast<std::size_t>(frameOffset(index)), kFrameBytes);
  };
  const auto sameSalts = [&](const unsigned char* frameHeader) {
    return std::memcmp(frameHeader + 8, hdr + 16, 8) == 0;
  };

  if (!headerValid) {
    // SQLite ignores every frame. The honest cause is a crash while a new header
    // was written after a complete checkpoint; a damaged header is
    // indistinguishable from that here (docs/security-model.md: the sealed commit
    // counter catches the rollback it causes).
    return scan;
  }

  std::uint32_t c1 = getBigEndian32(hdr + 24);
  std::uint32_t c2 = getBigEndian32(hdr + 28);
  std::uint32_t index = 1;
  for (; index <= scan.totalFrames; ++index) {
    if (!openFrame(keys, index, frameAt(index), frame) || !sameSalts(frame.data()) ||
        getBigEndian32(frame.data()) == 0) {
      break;
    }
    walChecksum(bigEndian, std::span(frame).subspan(0, 8), c1, c2);
    walChecksum(bigEndian, std::span(frame).subspan(kFrameHeaderBytes, kPageSize), c1, c2);
    if (c1 != getBigEndian32(frame.data() + 16) || c2 != getBigEndian32(frame.data() + 20)) {
      break;
    }
    scan.validFrames = index;
  }

  // Commits after the first invalid frame. That frame counts too when its stored
  // header (in clear but for the checksums) says it is a commit of this
  // generation: after it, no frame of the same generation is honest.
  int laterCommits = 0;
  if (index <= scan.totalFrames) {
    const auto raw = frameAt(index);
    if (sameSalts(raw.data()) && getBigEndian32(raw.data() + 4) != 0) {
      ++laterCommits;
    }
  }
  for (std::uint32_t j = index + 1; j <= scan.totalFrames; ++j) {
    if (openFrame(keys, j, frameAt(j), frame) && sameSalts(frame.data()) &&
        getBigEndian32(frame.data() + 4) != 0) {
      ++laterCommits;
    }
  }
  scan.tampered = syncedCommits && laterCommits >= 2;
  return scan;
}

} // namespace outpost::vault
