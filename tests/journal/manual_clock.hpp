#pragma once
// A clock that tests move by hand.

#include <outpost/platform/clock.hpp>

#include <chrono>
#include <cstdint>

namespace outpost::test {

class ManualClock final : public platform::Clock {
public:
  explicit ManualClock(std::int64_t unixMs = 1'767'225'600'000) : ms_(unixMs) {} // 2026-01-01
  [[nodiscard]] std::chrono::steady_clock::time_point monotonic() const override {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms_));
  }
  [[nodiscard]] std::int64_t unixMillis() const override { return ms_; }
  void set(std::int64_t unixMs) { ms_ = unixMs; }
  void advance(std::chrono::milliseconds by) { ms_ += by.count(); }

private:
  std::int64_t ms_;
};

} // namespace outpost::test
