#include "outpost/sync/hlc.hpp"

#include <algorithm>

namespace outpost::sync {

HlcClock::HlcClock(const platform::Clock& clock, std::chrono::milliseconds maxSkew) noexcept
    : clock_(clock), maxSkew_(maxSkew) {}

std::uint64_t HlcClock::physicalNow() const noexcept {
  const std::int64_t ms = clock_.unixMillis();
  // A clock before the epoch is treated as the epoch: the HLC only moves forward.
  return ms < 0 ? 0 : std::min(static_cast<std::uint64_t>(ms), Hlc::kMaxPhysicalMs);
}

// The smallest timestamp above `floor` whose physical part is at least `physical`.
Hlc HlcClock::advance(Hlc floor, std::uint64_t physical) noexcept {
  Hlc next{};
  if (physical > floor.physicalMs()) {
    next = Hlc::make(physical, 0);
  } else if (floor.logical() < Hlc::kLogicalMask) {
    next = Hlc{floor.value + 1};
  } else {
    // The logical counter is full: borrow a millisecond from the future rather
    // than wrap (which would go backwards).
    next = Hlc::make(floor.physicalMs() + 1, 0);
  }
  last_ = next;
  return next;
}

Hlc HlcClock::now() noexcept { return advance(last_, physicalNow()); }

HlcUpdate HlcClock::update(Hlc remote) noexcept {
  const std::uint64_t physical = physicalNow();
  const auto skew = static_cast<std::uint64_t>(maxSkew_.count() < 0 ? 0 : maxSkew_.count());
  if (remote.physicalMs() > physical + skew) {
    return HlcUpdate{std::nullopt, HlcRejection::tooFarAhead};
  }
  return HlcUpdate{advance(std::max(last_, remote), physical), std::nullopt};
}

Hlc HlcClock::adoptServerTime(Hlc serverTime) noexcept {
  return advance(std::max(last_, serverTime), physicalNow());
}

void HlcClock::restore(Hlc persisted) noexcept { last_ = std::max(last_, persisted); }

} // namespace outpost::sync
