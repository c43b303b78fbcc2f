#include "report.hpp"

#include <algorithm>
#include <cmath>

namespace outpost::bench {

void Report::result(std::string_view id, std::string_view metric, double value,
                    std::string_view unit) {
  std::fprintf(out_, "RESULT %.*s %.*s %.*g %.*s\n", static_cast<int>(id.size()), id.data(),
               static_cast<int>(metric.size()), metric.data(), 10, value,
               static_cast<int>(unit.size()), unit.data());
  std::fflush(out_);
  results_.push_back({std::string(id), std::string(metric), value, std::string(unit)});
}

void Report::info(std::string_view id, std::string_view what) {
  std::fprintf(out_, "INFO %.*s %.*s\n", static_cast<int>(id.size()), id.data(),
               static_cast<int>(what.size()), what.data());
  std::fflush(out_);
}

void Report::check(std::string_view id, std::string_view what, bool ok, std::string_view detail) {
  if (!ok) {
    ++failures_;
  }
  std::fprintf(out_, "CHECK %.*s %.*s %s%s%.*s\n", static_cast<int>(id.size()), id.data(),
               static_cast<int>(what.size()), what.data(), ok ? "ok" : "FAILED",
               detail.empty() ? "" : " ", static_cast<int>(detail.size()), detail.data());
  std::fflush(out_);
}

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) {
    return 0;
  }
  std::sort(samples.begin(), samples.end());
  const auto n = static_cast<double>(samples.size());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n));
  rank = std::clamp<std::size_t>(rank, 1, samples.size());
  return samples[rank - 1];
}

double median(std::vector<double> samples) {
  if (samples.empty()) {
    return 0;
  }
  std::sort(samples.begin(), samples.end());
  const std::size_t mid = samples.size() / 2;
  return samples.size() % 2 == 1 ? samples[mid] : (samples[mid - 1] + samples[mid]) / 2;
}

std::optional<double> valueOf(std::span<const Report::Result> results, std::string_view metric) {
  for (const Report::Result& r : results) {
    if (r.metric == metric) {
      return r.value;
    }
  }
  return std::nullopt;
}

std::vector<double> roundRatios(std::span<const std::vector<Report::Result>> runner,
                                std::span<const std::vector<Report::Result>> reference,
                                std::string_view metric) {
  std::vector<double> ratios;
  for (std::size_t k = 0; k < std::min(runner.size(), reference.size()); ++k) {
    const auto mine = valueOf(runner[k], metric);
    const auto base = valueOf(reference[k], metric);
    if (mine && base && *base != 0) {
      ratios.push_back(*mine / *base);
    }
  }
  return ratios;
}

} // namespace outpost::bench
