#include "report.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

using namespace outpost::bench;

TEST_SUITE("bench.report") {
  TEST_CASE("percentiles are nearest-rank") {
    CHECK(percentile({}, 50) == 0);
    CHECK(percentile({5, 1, 3, 2, 4}, 50) == 3);
    CHECK(percentile({5, 1, 3, 2, 4}, 100) == 5);
    CHECK(percentile({5, 1, 3, 2, 4}, 0) == 1);
  }

  TEST_CASE("medians: the middle sample, or the mean of the middle two") {
    CHECK(median({}) == 0);
    CHECK(median({7}) == 7);
    CHECK(median({5, 1, 3}) == 3);
    CHECK(median({4, 1, 3, 2}) == 2.5);
  }

  TEST_CASE("RESULT lines have the WORKLOADS.md form and a failed CHECK is remembered") {
    char buf[512] = {};
    std::FILE* f = fmemopen(buf, sizeof buf, "w");
    REQUIRE(f != nullptr);
    Report report(f);
    report.result("w1.sqlite", "insert_rec_per_s", 17084.5, "rec/s");
    CHECK(report.allChecksPassed());
    report.check("w1.sqlite", "query_hits", false, "got 1");
    std::fclose(f);
    const std::string text(buf);
    CHECK(text.find("RESULT w1.sqlite insert_rec_per_s 17084.5 rec/s\n") != std::string::npos);
    CHECK(text.find("CHECK w1.sqlite query_hits FAILED got 1\n") != std::string::npos);
    CHECK_FALSE(report.allChecksPassed());
    // The results printed are kept, for the medians of several rounds.
    REQUIRE(report.results().size() == 1);
    CHECK(report.results()[0].id == "w1.sqlite");
    CHECK(report.results()[0].metric == "insert_rec_per_s");
    CHECK(report.results()[0].value == 17084.5);
    CHECK(report.results()[0].unit == "rec/s");
  }
}
