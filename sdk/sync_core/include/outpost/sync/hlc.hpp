#pragma once
/// \file
/// Hybrid logical clocks (DESIGN.md §6): 48 bits of physical milliseconds since the
/// Unix epoch, then 16 bits of logical counter, in one 64-bit number whose integer
/// order is the causal order used by the merge.

#include <outpost/platform/clock.hpp>

#include <chrono>
#include <compare>
#include <cstdint>
#include <optional>

namespace outpost::sync {

/// One HLC timestamp. Value type; the zero timestamp means "none" (e.g. the base
/// of a field that had no value before).
struct Hlc {
  static constexpr int kLogicalBits = 16;
  static constexpr std::uint64_t kLogicalMask = (std::uint64_t{1} << kLogicalBits) - 1;
  static constexpr std::uint64_t kMaxPhysicalMs = (std::uint64_t{1} << 48) - 1;

  std::uint64_t value = 0;

  /// Builds a timestamp from its parts. `physicalMs` is clamped to 48 bits and
  /// `logical` to 16.
  [[nodiscard]] static constexpr Hlc make(std::uint64_t physicalMs,
                                          std::uint64_t logical) noexcept {
    const std::uint64_t p = physicalMs > kMaxPhysicalMs ? kMaxPhysicalMs : physicalMs;
    const std::uint64_t l = logical > kLogicalMask ? kLogicalMask : logical;
    return Hlc{(p << kLogicalBits) | l};
  }
  [[nodiscard]] constexpr std::uint64_t physicalMs() const noexcept {
    return value >> kLogicalBits;
  }
  [[nodiscard]] constexpr std::uint64_t logical() const noexcept { return value & kLogicalMask; }
  [[nodiscard]] constexpr bool isZero() const noexcept { return value == 0; }
  friend constexpr auto operator<=>(Hlc, Hlc) noexcept = default;
};

/// Why a remote timestamp was not taken into the clock.
enum class HlcRejection : std::uint8_t {
  tooFarAhead, ///< more than the allowed skew ahead of local physical time
};

/// The outcome of `HlcClock::update`: the new local time, or why the remote one was
/// refused (then the clock did not move).
struct HlcUpdate {
  std::optional<Hlc> time;
  std::optional<HlcRejection> rejected;
  [[nodiscard]] bool accepted() const noexcept { return time.has_value(); }
};

/// A hybrid logical clock over a platform clock. Monotonic: `now()` never returns a
/// timestamp at or below one it returned (or was told about) before, even when the
/// wall clock goes backwards. Not synchronised: one owner calls it (the record
/// store does, inside its write transaction).
class HlcClock {
public:
  /// Remote timestamps more than this far ahead of local physical time are refused.
  static constexpr std::chrono::milliseconds kDefaultMaxSkew = std::chrono::minutes(2);

  /// `clock` must outlive the HlcClock.
  explicit HlcClock(const platform::Clock& clock,
                    std::chrono::milliseconds maxSkew = kDefaultMaxSkew) noexcept;

  /// A new timestamp for a local event: max(physical, last physical), with the
  /// logical counter advanced when physical time did not move. When the counter
  /// would overflow, the physical part is advanced by one millisecond instead.
  [[nodiscard]] Hlc now() noexcept;

  /// Takes in a timestamp received from another node (standard HLC receive rule)
  /// and returns the local time after it, or a rejection if `remote` is more than
  /// the allowed skew ahead of local physical time (the clock is then unchanged).
  [[nodiscard]] HlcUpdate update(Hlc remote) noexcept;

  /// At the hello, the server's time is adopted: like `update`, but the skew
  /// bound does not apply (the server is the reference for bounding skew).
  Hlc adoptServerTime(Hlc serverTime) noexcept;

  /// Makes sure the clock never returns anything at or below `persisted` (used at
  /// start-up with the last timestamp the store saved).
  void restore(Hlc persisted) noexcept;

  /// The last timestamp returned or taken in (zero at first).
  [[nodiscard]] Hlc last() const noexcept { return last_; }
  [[nodiscard]] std::chrono::milliseconds maxSkew() const noexcept { return maxSkew_; }

private:
  [[nodiscard]] std::uint64_t physicalNow() const noexcept;
  [[nodiscard]] Hlc advance(Hlc candidateFloor, std::uint64_t physical) noexcept;

  const platform::Clock& clock_;
  std::chrono::milliseconds maxSkew_;
  Hlc last_{};
};

} // namespace outpost::sync
