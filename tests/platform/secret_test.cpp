#include <outpost/context.hpp>
#include <outpost/secret.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

using outpost::SecretBytes;

namespace {

bool allZero(const unsigned char* p, std::size_t n) {
  return std::all_of(p, p + n, [](unsigned char b) { return b == 0; });
}

} // namespace

TEST_SUITE("platform.secret") {
  TEST_CASE("secrets of up to 64 bytes share the pool's slabs, larger ones have their own") {
    const outpost::Context context;
    const SecretBytes empty;
    CHECK_FALSE(empty.pooled());
    for (const std::size_t size : {std::size_t{1}, std::size_t{32}, SecretBytes::kPooledMax}) {
      const SecretBytes s(size);
      CHECK(s.size() == size);
      CHECK(s.pooled());
      CHECK(allZero(s.data(), size));
    }
    const SecretBytes large(SecretBytes::kPooledMax + 1);
    CHECK_FALSE(large.pooled());
    CHECK(allZero(large.data(), large.size()));
  }

  TEST_CASE("a pooled secret's slot is wiped when it is freed, and handed out again zeroed") {
    const outpost::Context context;
    SecretBytes s(SecretBytes::kPooledMax);
    std::fill(s.data(), s.data() + s.size(), 0xA5);
    unsigned char* slot = s.data();
    s.reset();
    CHECK(s.empty());
    // The slot stays mapped in its slab: what the key was is gone from it.
    CHECK(allZero(slot, SecretBytes::kPooledMax));

    SecretBytes t(16);
    std::fill(t.data(), t.data() + t.size(), 0x5A);
    slot = t.data();
    { const SecretBytes moved = std::move(t); }
    CHECK(allZero(slot, SecretBytes::kPooledMax));
    // The next small secret takes the slot just freed, and it reads as zeros.
    const SecretBytes again(8);
    CHECK(again.data() == slot);
    CHECK(allZero(again.data(), again.size()));
  }

  TEST_CASE("secrets alive at once never share bytes, across slabs, and slabs are reused") {
    const outpost::Context context;
    const std::size_t slabsBefore = SecretBytes::poolSlabs();
    std::vector<SecretBytes> live;
    constexpr std::size_t kCount = 1000; // more than three slabs' worth
    for (std::size_t i = 0; i < kCount; ++i) {
      live.push_back(SecretBytes::copyOf(std::array<unsigned char, 32>{
          static_cast<unsigned char>(i), static_cast<unsigned char>(i >> 8)}));
    }
    std::set<const unsigned char*> slots;
    for (std::size_t i = 0; i < kCount; ++i) {
      CHECK(live[i].data()[0] == static_cast<unsigned char>(i));
      CHECK(live[i].data()[1] == static_cast<unsigned char>(i >> 8));
      CHECK((reinterpret_cast<std::uintptr_t>(live[i].data()) % SecretBytes::kPooledMax) == 0);
      slots.insert(live[i].data());
    }
    CHECK(slots.size() == kCount);
    const std::size_t slabsAtPeak = SecretBytes::poolSlabs();
    CHECK(slabsAtPeak >= slabsBefore);
    CHECK(slabsAtPeak >= kCount / 256);
    live.clear();
    for (std::size_t i = 0; i < kCount; ++i) {
      live.emplace_back(32);
    }
    CHECK(SecretBytes::poolSlabs() == slabsAtPeak);
  }

  TEST_CASE("threads allocate and free pooled secrets at once") {
    const outpost::Context context;
    std::vector<std::thread> threads;
    std::array<bool, 4> ok{};
    for (std::size_t t = 0; t < ok.size(); ++t) {
      threads.emplace_back([t, &ok] {
        bool good = true;
        std::vector<SecretBytes> mine;
        for (int round = 0; round < 200; ++round) {
          for (int i = 0; i < 20; ++i) {
            SecretBytes s(32);
            std::fill(s.data(), s.data() + s.size(), static_cast<unsigned char>(t + 1));
            mine.push_back(std::move(s));
          }
          for (const SecretBytes& s : mine) {
            good = good && std::all_of(s.data(), s.data() + s.size(), [t](unsigned char b) {
                     return b == static_cast<unsigned char>(t + 1);
                   });
          }
          mine.clear();
        }
        ok[t] = good;
      });
    }
    for (std::thread& th : threads) {
      th.join();
    }
    for (const bool good : ok) {
      CHECK(good);
    }
  }
}
