#include "outpost/sync/uuid.hpp"

#include <sodium.h>

#include <array>
#include <cstdint>

namespace outpost::sync {

namespace {

/// Each byte's value as a hex digit, or -1: a table, so that parsing takes no
/// branch that depends on the digits (ids are random).
constexpr std::array<std::int8_t, 256> kHexValue = [] {
  std::array<std::int8_t, 256> t{};
  t.fill(-1);
  for (int c = 0; c < 10; ++c) {
    t[static_cast<std::size_t>('0' + c)] = static_cast<std::int8_t>(c);
  }
  for (int c = 0; c < 6; ++c) {
    t[static_cast<std::size_t>('a' + c)] = static_cast<std::int8_t>(10 + c);
    t[static_cast<std::size_t>('A' + c)] = static_cast<std::int8_t>(10 + c);
  }
  return t;
}();

/// Where each of the 16 bytes' two digits start in the 36-character form.
constexpr std::array<std::uint8_t, 16> kDigitAt = {0,  2,  4,  6,  9,  11, 14, 16,
                                                   19, 21, 24, 26, 28, 30, 32, 34};

} // namespace

Uuid Uuid::random() {
  Uuid id;
  randombytes_buf(id.bytes.data(), id.bytes.size());
  id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | 0x40);
  id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3F) | 0x80);
  return id;
}

std::optional<Uuid> Uuid::parse(std::string_view text) noexcept {
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
      text[23] != '-') {
    return std::nullopt;
  }
  Uuid id;
  int bad = 0; // any digit's -1 sets the sign bit
  for (std::size_t k = 0; k < kDigitAt.size(); ++k) {
    const int hi = kHexValue[static_cast<unsigned char>(text[kDigitAt[k]])];
    const int lo = kHexValue[static_cast<unsigned char>(text[kDigitAt[k] + 1u])];
    bad |= hi | lo;
    id.bytes[k] = static_cast<std::uint8_t>(((hi & 0x0F) << 4) | (lo & 0x0F));
  }
  if (bad < 0) {
    return std::nullopt;
  }
  return id;
}

std::optional<Uuid> Uuid::fromBytes(std::span<const std::uint8_t> raw) noexcept {
  if (raw.size() != 16) {
    return std::nullopt;
  }
  Uuid id;
  std::copy(raw.begin(), raw.end(), id.bytes.begin());
  return id;
}

std::string Uuid::toString() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      s.push_back('-');
    }
    s.push_back(kHex[bytes[i] >> 4]);
    s.push_back(kHex[bytes[i] & 0x0F]);
  }
  return s;
}

} // namespace outpost::sync
