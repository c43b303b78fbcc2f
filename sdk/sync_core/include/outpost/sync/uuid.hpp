#pragma once
/// \file
/// Record and change identifiers: 16-byte UUIDs, version 4 (random) when made here.

#include <array>
#include <bit>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace outpost::sync {

/// A 16-byte UUID. Value type; the all-zero UUID is the "nil" UUID.
struct Uuid {
  std::array<std::uint8_t, 16> bytes{};

  constexpr Uuid() noexcept = default;
  /// A UUID is its 16 bytes: the wire's ids (plain arrays) convert implicitly.
  constexpr Uuid(const std::array<std::uint8_t, 16>& raw) noexcept : bytes(raw) {}

  /// A random version-4 UUID from libsodium's CSPRNG. Requires an
  /// `outpost::Context` to exist (libsodium initialised).
  [[nodiscard]] static Uuid random();

  /// Parses lowercase or uppercase `8-4-4-4-12` hex text; nullopt for anything
  /// else (wrong length, misplaced dashes, non-hex digits).
  [[nodiscard]] static std::optional<Uuid> parse(std::string_view text) noexcept;

  /// Exactly 16 bytes, or nullopt.
  [[nodiscard]] static std::optional<Uuid> fromBytes(std::span<const std::uint8_t> raw) noexcept;

  /// Lowercase `8-4-4-4-12` text.
  [[nodiscard]] std::string toString() const;

  [[nodiscard]] bool isNil() const noexcept {
    std::uint64_t half[2];
    std::memcpy(half, bytes.data(), sizeof half);
    return (half[0] | half[1]) == 0;
  }
  /// The version nibble (4 for random UUIDs).
  [[nodiscard]] int version() const noexcept { return bytes[6] >> 4; }

  friend auto operator<=>(const Uuid&, const Uuid&) noexcept = default;
  /// Two 8-byte compares, inline (the merge compares ids of every change).
  friend bool operator==(const Uuid& a, const Uuid& b) noexcept {
    std::uint64_t x[2];
    std::uint64_t y[2];
    std::memcpy(x, a.bytes.data(), sizeof x);
    std::memcpy(y, b.bytes.data(), sizeof y);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
  }
};

} // namespace outpost::sync

/// Both halves of the id, mixed (murmur3's finaliser): every bit of the id moves
/// the low bits, which open-addressing tables use, and ids an app chose need not be
/// random.
template <>
struct std::hash<outpost::sync::Uuid> {
  std::size_t operator()(const outpost::sync::Uuid& id) const noexcept {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::memcpy(&a, id.bytes.data(), 8);
    std::memcpy(&b, id.bytes.data() + 8, 8);
    std::uint64_t h = a ^ std::rotl(b * 0x9E3779B97F4A7C15ULL, 31);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    return static_cast<std::size_t>(h);
  }
};
