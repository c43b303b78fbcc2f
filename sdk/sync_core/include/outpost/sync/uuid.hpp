#pragma once
/// \file
/// Record and change identifiers: 16-byte UUIDs, version 4 (random) when made here.

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace outpost::sync {

/// A 16-byte UUID. Value type; the all-zero UUID is the "nil" UUID.
struct Uuid {
  std::array<std::uint8_t, 16> bytes{};

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

  [[nodiscard]] bool isNil() const noexcept;
  /// The version nibble (4 for random UUIDs).
  [[nodiscard]] int version() const noexcept { return bytes[6] >> 4; }

  friend auto operator<=>(const Uuid&, const Uuid&) noexcept = default;
};

} // namespace outpost::sync

template <>
struct std::hash<outpost::sync::Uuid> {
  std::size_t operator()(const outpost::sync::Uuid& id) const noexcept {
    std::size_t h = 0;
    for (const std::uint8_t b : id.bytes) {
      h = h * 131 + b;
    }
    return h;
  }
};
