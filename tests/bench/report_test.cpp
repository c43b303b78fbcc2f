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

  TEST_CASE("ratios to a reference are taken within each round") {
    using R = Report::Result;
    const std::vector<std::vector<R>> vault = {
        {{"w1.vault.round1", "read_per_s", 90, "reads/s"}},
        {{"w1.vault.round2", "read_per_s", 60, "reads/s"}},
        {{"w1.vault.round3", "insert_rec_per_s", 5, "rec/s"}}, // no reads: left out
    };
    const std::vector<std::vector<R>> sqlite = {
        {{"w1.sqlite.round1", "insert_rec_per_s", 1, "rec/s"},
         {"w1.sqlite.round1", "read_per_s", 100, "reads/s"}},
        {{"w1.sqlite.round2", "read_per_s", 50, "reads/s"}},
        {{"w1.sqlite.round3", "read_per_s", 70, "reads/s"}},
    };
    const auto ratios = roundRatios(vault, sqlite, "read_per_s");
    REQUIRE(ratios.size() == 2);
    CHECK(ratios[0] == doctest::Approx(0.9));
    CHECK(ratios[1] == doctest::Approx(1.2));
    // Not the ratio of medians (75 / 70): the median of the rounds' ratios.
    CHECK(median(ratios) == doctest::Approx(1.05));
    CHECK(roundRatios(vault, sqlite, "db_bytes_per_record").empty());
    CHECK(valueOf(sqlite[0], "read_per_s") == 100);
    CHECK_FALSE(valueOf(sqlite[1], "insert_rec_per_s").has_value());
    const std::vector<std::vector<R>> zero = {{{"w1.sqlite", "read_per_s", 0, "reads/s"}}};
    CHECK(roundRatios(std::span(vault).first(1), zero, "read_per_s").empty());
  }
}
