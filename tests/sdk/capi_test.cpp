#include "outpost.h"

#include <doctest/doctest.h>

#include <string>

TEST_SUITE("sdk.capi") {
  TEST_CASE("the C ABI reports the version and error names") {
    CHECK(std::string(outpost_version()).find('.') != std::string::npos);
    CHECK(std::string(outpost_error_name(6)) == "wrong_pin");
    CHECK(std::string(outpost_error_name(-1)) == "unknown");
    CHECK(!std::string(outpost_error_advice(7)).empty());
  }
}
