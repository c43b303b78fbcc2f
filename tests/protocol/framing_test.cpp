// Framing without I/O: splitting and reassembly, and refusal of every bad shape.

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/protocol/framing.hpp>

#include <doctest/doctest.h>

#include <functional>

using namespace outpost;
using namespace outpost::protocol;

namespace {
Errc codeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::ok;
}

noise::Bytes patterned(std::size_t n) {
  noise::Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) {
    b[i] = static_cast<std::uint8_t>(i * 7 + 3);
  }
  return b;
}
} // namespace

TEST_SUITE("protocol.framing") {
  TEST_CASE("messages of every boundary size split and reassemble exactly") {
    for (std::size_t n :
         {std::size_t{1}, kFramePlaintext - kMessageHeader - 1, kFramePlaintext - kMessageHeader,
          kFramePlaintext - kMessageHeader + 1, kFramePlaintext * 3, std::size_t{1} << 20}) {
      CAPTURE(n);
      const auto message = patterned(n);
      const auto frames = splitMessage(message, kMaxApplicationMessage);
      CHECK(frames.size() == framesFor(n));
      MessageAssembler assembler(kMaxApplicationMessage);
      std::optional<noise::Bytes> out;
      for (std::size_t i = 0; i < frames.size(); ++i) {
        CHECK(frames[i].size() <= kFramePlaintext);
        out = assembler.add(frames[i]);
        CHECK(out.has_value() == (i + 1 == frames.size()));
      }
      REQUIRE(out.has_value());
      CHECK(*out == message);
    }
  }

  TEST_CASE("a 16 MiB message needs 257 frames and one byte more is refused") {
    CHECK(framesFor(kMaxApplicationMessage) == 257);
    CHECK(codeOf([] { (void)splitMessage(noise::Bytes(kMaxApplicationMessage + 1), ~0u); }) ==
          Errc::invalid_argument);
    CHECK(codeOf([] { (void)splitMessage(noise::Bytes{}, 100); }) == Errc::invalid_argument);
  }

  TEST_CASE("a length header over the receiver's limit is refused at the first frame") {
    const auto frames = splitMessage(patterned(2000), kMaxApplicationMessage);
    MessageAssembler small(1000);
    CHECK(codeOf([&] { (void)small.add(frames[0]); }) == Errc::protocol);
    MessageAssembler any(kMaxApplicationMessage);
    const noise::Bytes zero = {0, 0, 0, 0, 1};
    CHECK(codeOf([&] { (void)any.add(zero); }) == Errc::protocol);
  }

  TEST_CASE("short, long or overshooting frames are refused") {
    const auto frames = splitMessage(patterned(kFramePlaintext * 2), kMaxApplicationMessage);
    REQUIRE(frames.size() == 3);
    SUBCASE("a non-final first frame that is not full") {
      MessageAssembler a(kMaxApplicationMessage);
      auto f = frames[0];
      f.pop_back();
      CHECK(codeOf([&] { (void)a.add(f); }) == Errc::protocol);
    }
    SUBCASE("a continuation frame of the wrong size") {
      MessageAssembler a(kMaxApplicationMessage);
      REQUIRE_FALSE(a.add(frames[0]).has_value());
      auto f = frames[1];
      f.pop_back();
      CHECK(codeOf([&] { (void)a.add(f); }) == Errc::protocol);
    }
    SUBCASE("a final frame longer than the rest of the message") {
      MessageAssembler a(kMaxApplicationMessage);
      REQUIRE_FALSE(a.add(frames[0]).has_value());
      REQUIRE_FALSE(a.add(frames[1]).has_value());
      auto f = frames[2];
      f.push_back(0);
      CHECK(codeOf([&] { (void)a.add(f); }) == Errc::protocol);
    }
    SUBCASE("a single-frame message with bytes after its end") {
      MessageAssembler a(kMaxApplicationMessage);
      noise::Bytes f = {0, 0, 0, 2, 'h', 'i', '!'};
      CHECK(codeOf([&] { (void)a.add(f); }) == Errc::protocol);
    }
  }
}
