#pragma once
/// \file
/// Time as a dependency, so that tests can move it.

#include <chrono>
#include <cstdint>

namespace outpost::platform {

class Clock {
public:
  virtual ~Clock() = default;
  /// Monotonic time, for timeouts and inactivity.
  [[nodiscard]] virtual std::chrono::steady_clock::time_point monotonic() const = 0;
  /// Wall-clock time in milliseconds since the Unix epoch, for records and HLCs.
  [[nodiscard]] virtual std::int64_t unixMillis() const = 0;
};

/// The operating system's clocks.
class SystemClock final : public Clock {
public:
  [[nodiscard]] std::chrono::steady_clock::time_point monotonic() const override;
  [[nodiscard]] std::int64_t unixMillis() const override;
};

} // namespace outpost::platform
