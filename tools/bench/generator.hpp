#pragma once
/// \file
/// The deterministic record generator of bench/WORKLOADS.md, shared by W1 and W2.
/// Record `i` of a set of `n` depends only on `(i, n)`.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace outpost::bench {

/// MurmurHash3's 32-bit finaliser.
[[nodiscard]] std::uint32_t fmix32(std::uint32_t h) noexcept;

/// Marsaglia xorshift32 seeded through fmix32 (a state of 0 becomes 1).
class Stream {
public:
  explicit Stream(std::uint32_t seed) noexcept;
  /// Advances the state and returns it.
  std::uint32_t next() noexcept;

private:
  std::uint32_t state_;
};

/// Tags of the derived streams (seeded 0x5EED2024 XOR tag).
inline constexpr std::uint32_t kReadTag = 0x52454144;   // "READ": W1 point-read indices
inline constexpr std::uint32_t kQueryTag = 0x51555259;  // "QURY": W1 query subjects
inline constexpr std::uint32_t kModifyTag = 0x4D4F4449; // "MODI": W2 records to modify
[[nodiscard]] Stream derivedStream(std::uint32_t tag) noexcept;

inline constexpr int kBoolIndicators = 10; // ind_01..ind_10
inline constexpr int kIntIndicators = 8;   // ind_11..ind_18
inline constexpr int kTextIndicators = 7;  // ind_19..ind_25
inline constexpr int kIndicators = kBoolIndicators + kIntIndicators + kTextIndicators;

/// One generated assessment-like record.
struct Record {
  std::string id;          ///< lowercase UUIDv4 text
  std::string subjectId;   ///< "subj-%06u"
  std::string assessorId;  ///< "user-%03u"
  std::string_view status; ///< "draft" | "final"
  std::string_view riskLevel;
  std::int64_t created = 0; ///< Unix seconds
  std::int64_t updated = 0;
  std::array<bool, kBoolIndicators> flags{};
  std::array<std::uint32_t, kIntIndicators> counts{};
  std::array<std::string_view, kTextIndicators> states{};
  std::string note;

  /// The compact JSON form, keys in the order WORKLOADS.md fixes.
  [[nodiscard]] std::string json() const;
  [[nodiscard]] std::string updatedAt() const;
  [[nodiscard]] std::string createdAt() const;
};

/// Number of subjects (children) in a set of `n`: max(1, n / 10).
[[nodiscard]] std::uint32_t subjectCount(std::uint32_t n) noexcept;

/// Record `i` of a data set of `n` records.
[[nodiscard]] Record generate(std::uint32_t i, std::uint32_t n);

/// "subj-%06u".
[[nodiscard]] std::string subjectName(std::uint32_t subject);

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds.
[[nodiscard]] std::string isoTime(std::int64_t unixSeconds);

} // namespace outpost::bench
