#include "manual_clock.hpp"

#include <outpost/sync/hlc.hpp>

#include <doctest/doctest.h>

#include <chrono>

using outpost::sync::Hlc;
using outpost::sync::HlcClock;
using outpost::sync::HlcRejection;
using outpost::test::ManualClock;
using namespace std::chrono_literals;

TEST_SUITE("sync.hlc") {
  TEST_CASE("an HLC packs 48 bits of milliseconds above 16 logical bits") {
    const Hlc h = Hlc::make(1'700'000'000'000, 7);
    CHECK(h.physicalMs() == 1'700'000'000'000u);
    CHECK(h.logical() == 7u);
    CHECK(h.value == ((std::uint64_t{1'700'000'000'000} << 16) | 7));
    CHECK(Hlc::make(5, 0) > Hlc::make(4, 65535));
  }

  TEST_CASE("now follows physical time and counts within one millisecond") {
    ManualClock clock;
    HlcClock hlc(clock);
    const Hlc a = hlc.now();
    CHECK(a.physicalMs() == static_cast<std::uint64_t>(clock.unixMillis()));
    CHECK(a.logical() == 0u);
    const Hlc b = hlc.now();
    CHECK(b.physicalMs() == a.physicalMs());
    CHECK(b.logical() == 1u);
    clock.advance(1ms);
    const Hlc c = hlc.now();
    CHECK(c.physicalMs() == a.physicalMs() + 1);
    CHECK(c.logical() == 0u);
  }

  TEST_CASE("now stays monotonic when the wall clock goes backwards") {
    ManualClock clock;
    HlcClock hlc(clock);
    Hlc previous = hlc.now();
    clock.advance(-10min);
    for (int i = 0; i < 1000; ++i) {
      const Hlc next = hlc.now();
      CHECK(next > previous);
      previous = next;
      if (i % 100 == 0) {
        clock.advance(-1s);
      }
    }
    clock.advance(20min);
    const Hlc later = hlc.now();
    CHECK(later > previous);
    CHECK(later.physicalMs() == static_cast<std::uint64_t>(clock.unixMillis()));
  }

  TEST_CASE("a full logical counter moves to the next millisecond instead of wrapping") {
    ManualClock clock;
    HlcClock hlc(clock);
    hlc.restore(Hlc::make(static_cast<std::uint64_t>(clock.unixMillis()), Hlc::kLogicalMask));
    const Hlc next = hlc.now();
    CHECK(next.physicalMs() == static_cast<std::uint64_t>(clock.unixMillis()) + 1);
    CHECK(next.logical() == 0u);
    CHECK(next == hlc.last());
  }

  TEST_CASE("receiving a remote time ahead of local time moves past it") {
    ManualClock clock;
    HlcClock hlc(clock);
    (void)hlc.now();
    const auto now = static_cast<std::uint64_t>(clock.unixMillis());
    const Hlc remote = Hlc::make(now + 30'000, 4);
    const auto updated = hlc.update(remote);
    REQUIRE(updated.accepted());
    CHECK(*updated.time == Hlc::make(now + 30'000, 5));
    CHECK(hlc.now() > remote);
  }

  TEST_CASE("receiving an older remote time only advances the logical counter") {
    ManualClock clock;
    HlcClock hlc(clock);
    const Hlc local = hlc.now();
    const auto updated = hlc.update(Hlc::make(local.physicalMs() - 5000, 9));
    REQUIRE(updated.accepted());
    CHECK(*updated.time == Hlc::make(local.physicalMs(), 1));
  }

  TEST_CASE("a remote time beyond the skew bound is refused and changes nothing") {
    ManualClock clock;
    HlcClock hlc(clock, 2min);
    const Hlc before = hlc.now();
    const auto now = static_cast<std::uint64_t>(clock.unixMillis());
    const auto refused = hlc.update(Hlc::make(now + 120'001, 0));
    CHECK_FALSE(refused.accepted());
    CHECK(refused.rejected == HlcRejection::tooFarAhead);
    CHECK(hlc.last() == before);
    CHECK(hlc.update(Hlc::make(now + 120'000, 0)).accepted());
  }

  TEST_CASE("the server time is adopted at hello even beyond the skew bound") {
    ManualClock clock;
    HlcClock hlc(clock);
    const auto now = static_cast<std::uint64_t>(clock.unixMillis());
    const Hlc server = Hlc::make(now + 3'600'000, 2);
    const Hlc adopted = hlc.adoptServerTime(server);
    CHECK(adopted > server);
    CHECK(hlc.now() > adopted);
  }

  TEST_CASE("a restored timestamp is never returned again") {
    ManualClock clock;
    HlcClock hlc(clock);
    const Hlc saved = Hlc::make(static_cast<std::uint64_t>(clock.unixMillis()) + 50'000, 3);
    hlc.restore(saved);
    CHECK(hlc.now() > saved);
    hlc.restore(Hlc::make(1, 0)); // an older value does not move it back
    CHECK(hlc.last() > saved);
  }
}
