#include "../support/temp_dir.hpp"

#include <doctest/doctest.h>

extern "C" const char* outpost_capi_records_scenario(const char* vaultDir, const char* keyDir);

TEST_SUITE("records.capi") {
  TEST_CASE("a C program creates, changes, reads and reopens records through the C ABI") {
    outpost::test::TempDir tmp;
    const char* failed =
        outpost_capi_records_scenario((tmp / "vault").c_str(), (tmp / "keys").c_str());
    INFO((failed ? failed : ""));
    CHECK(failed == nullptr);
  }
}
