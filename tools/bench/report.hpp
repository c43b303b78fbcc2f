#pragma once
/// \file
/// The lines outpost-bench prints: `RESULT <id> <metric> <value> <unit>`, `INFO ...`,
/// `CHECK <id> <what> ok|FAILED ...`. A failed CHECK makes the program exit non-zero.

#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::bench {

class Report {
public:
  /// A RESULT line as printed.
  struct Result {
    std::string id;
    std::string metric;
    double value = 0;
    std::string unit;
  };

  explicit Report(std::FILE* out) : out_(out) {}

  void result(std::string_view id, std::string_view metric, double value, std::string_view unit);
  /// Every RESULT line printed so far, in order.
  [[nodiscard]] const std::vector<Result>& results() const noexcept { return results_; }
  void info(std::string_view id, std::string_view what);
  /// Prints the CHECK line and remembers a failure.
  void check(std::string_view id, std::string_view what, bool ok, std::string_view detail = {});
  [[nodiscard]] bool allChecksPassed() const noexcept { return failures_ == 0; }

private:
  std::FILE* out_;
  int failures_ = 0;
  std::vector<Result> results_;
};

/// Nearest-rank percentile (p in [0, 100]) of unsorted samples; 0 for none.
[[nodiscard]] double percentile(std::vector<double> samples, double p);
/// The median of unsorted samples (the mean of the middle two for an even count); 0
/// for none.
[[nodiscard]] double median(std::vector<double> samples);

/// The value of `metric` among `results`, or nullopt.
[[nodiscard]] std::optional<double> valueOf(std::span<const Report::Result> results,
                                            std::string_view metric);

/// Per round, `metric` of a runner divided by the same metric of the reference runner
/// in that round; rounds where either lacks it (or the reference is 0) are left out.
/// `runner[k]` and `reference[k]` are round k's results.
[[nodiscard]] std::vector<double>
roundRatios(std::span<const std::vector<Report::Result>> runner,
            std::span<const std::vector<Report::Result>> reference, std::string_view metric);

} // namespace outpost::bench
