#include <outpost/error.hpp>

#include <doctest/doctest.h>

#include <set>
#include <string>

using outpost::Errc;

TEST_SUITE("platform.error") {
  TEST_CASE("every code has a distinct stable name and advice") {
    std::set<std::string> names;
    int listed = 0;
#define OUTPOST_COUNT(name, number, advice)                                                        \
  ++listed;                                                                                        \
  CHECK(outpost::errcName(Errc::name) == #name);                                                   \
  CHECK(!outpost::errcAdvice(Errc::name).empty());                                                 \
  names.insert(std::string(outpost::errcName(Errc::name)));
    OUTPOST_ERROR_CODES(OUTPOST_COUNT)
#undef OUTPOST_COUNT
    CHECK(names.size() == static_cast<std::size_t>(listed));
  }

  TEST_CASE("codes keep their numbers (they cross the C ABI and the wire)") {
    CHECK(static_cast<int>(Errc::ok) == 0);
    CHECK(static_cast<int>(Errc::wrong_pin) == 6);
    CHECK(static_cast<int>(Errc::tampered) == 5);
    CHECK(static_cast<int>(Errc::protocol) == 11);
    CHECK(static_cast<int>(Errc::busy) == 24);
  }

  TEST_CASE("an unlisted number is unknown, not a crash") {
    CHECK(outpost::errcName(static_cast<Errc>(9999)) == "unknown");
  }

  TEST_CASE("Error carries its code and prefixes what() with the name") {
    const outpost::Error e(Errc::locked, "vault is locked");
    CHECK(e.code() == Errc::locked);
    CHECK(e.message() == "vault is locked");
    CHECK(std::string(e.what()) == "locked: vault is locked");
  }
}
