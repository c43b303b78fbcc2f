#include "input.hpp"

#include <outpost/expression.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

namespace outpost::field {

namespace {

std::string lower(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::optional<std::int64_t> parseInt(std::string_view text) {
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return n;
}

} // namespace

std::int64_t parseTime(std::string_view text, std::int64_t nowMs, std::string_view what) {
  const std::string usage = std::string(what) + ": '" + std::string(text) +
                            "' is not a time; give now, a time ago such as -4d, -3h or -90m, "
                            "a date YYYY-MM-DD or a UTC time YYYY-MM-DDTHH:MM";
  if (text == "now") {
    return nowMs;
  }
  if (text.size() >= 3 && text.front() == '-') {
    const auto n = parseInt(text.substr(1, text.size() - 2));
    std::int64_t unit = 0;
    switch (text.back()) {
    case 'm':
      unit = 60'000;
      break;
    case 'h':
      unit = 3'600'000;
      break;
    case 'd':
      unit = 86'400'000;
      break;
    default:
      break;
    }
    if (!n || *n < 0 || unit == 0 || *n > 100LL * 366 * 86'400'000 / unit) {
      throw Failure(Errc::invalid_argument, usage);
    }
    return nowMs - *n * unit;
  }
  std::string s(text);
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) {
    s.pop_back();
  }
  std::tm tm{};
  const char* end = nullptr;
  for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"}) {
    tm = std::tm{};
    end = strptime(s.c_str(), format, &tm);
    if (end != nullptr && *end == '\0') {
      break;
    }
    end = nullptr;
  }
  if (end == nullptr) {
    throw Failure(Errc::invalid_argument, usage);
  }
  // Round-trip through the calendar to refuse dates such as 2026-02-31.
  const int mday = tm.tm_mday;
  const int mon = tm.tm_mon;
  const std::time_t secs = timegm(&tm);
  if (secs == static_cast<std::time_t>(-1) || tm.tm_mday != mday || tm.tm_mon != mon) {
    throw Failure(Errc::invalid_argument, usage);
  }
  return static_cast<std::int64_t>(secs) * 1000;
}

sync::Uuid parseId(std::string_view text, std::string_view what) {
  const auto id = sync::Uuid::parse(text);
  if (!id) {
    throw Failure(Errc::invalid_argument, "'" + std::string(text) + "' is not " +
                                              std::string(what) +
                                              " id; ids look like 0a1b2c3d-...; copy one from "
                                              "the list command");
  }
  return *id;
}

std::optional<bool> parseBool(std::string_view text) {
  const std::string s = lower(text);
  if (s == "yes" || s == "y" || s == "true" || s == "1") {
    return true;
  }
  if (s == "no" || s == "n" || s == "false" || s == "0") {
    return false;
  }
  return std::nullopt;
}

std::optional<model::Recency> parseRecency(std::string_view text) {
  const std::string s = lower(text);
  if (s == "current" || s == "c" || s == "now") {
    return model::Recency::current;
  }
  if (s == "within_6_months" || s == "6m") {
    return model::Recency::within6Months;
  }
  if (s == "6_12_months" || s == "12m") {
    return model::Recency::sixTo12Months;
  }
  return std::nullopt;
}

std::string answerHint(const model::Question& q) {
  switch (q.type) {
  case model::QuestionType::boolean:
    return "yes or no";
  case model::QuestionType::integer:
    return "a whole number";
  case model::QuestionType::date:
    return "a date YYYY-MM-DD";
  case model::QuestionType::text:
    return "text";
  case model::QuestionType::singleChoice:
  case model::QuestionType::multiChoice: {
    std::string ids;
    for (const auto& o : q.options) {
      ids += (ids.empty() ? "" : ", ") + o.id;
    }
    return q.type == model::QuestionType::singleChoice
               ? "one of: " + ids
               : "one or more of (separated by commas): " + ids;
  }
  }
  return "an answer";
}

model::AnswerValue parseAnswer(const model::Question& q, std::string_view text) {
  const auto refuse = [&]() -> model::AnswerValue {
    throw Failure(Errc::validation,
                  q.id + ": '" + std::string(text) + "' is not an answer to this question; give " +
                      answerHint(q),
                  {{"problems", json::array({{{"question", q.id},
                                              {"message", "expected " + answerHint(q)}}})}});
  };
  switch (q.type) {
  case model::QuestionType::boolean:
    if (const auto b = parseBool(text)) {
      return *b;
    }
    return refuse();
  case model::QuestionType::integer:
    if (const auto n = parseInt(text)) {
      return *n;
    }
    return refuse();
  case model::QuestionType::date:
    if (const auto d = model::parseDate(text)) {
      return *d;
    }
    return refuse();
  case model::QuestionType::text:
    if (text.empty()) {
      return refuse();
    }
    return std::string(text);
  case model::QuestionType::singleChoice: {
    const auto byId = std::find_if(q.options.begin(), q.options.end(),
                                   [&](const auto& o) { return o.id == text; });
    if (byId != q.options.end()) {
      return byId->id;
    }
    const auto n = parseInt(text);
    if (n && *n >= 1 && static_cast<std::size_t>(*n) <= q.options.size()) {
      return q.options[static_cast<std::size_t>(*n - 1)].id;
    }
    return refuse();
  }
  case model::QuestionType::multiChoice: {
    std::vector<std::string> ids;
    std::size_t start = 0;
    while (start <= text.size()) {
      std::size_t end = text.find(',', start);
      if (end == std::string_view::npos) {
        end = text.size();
      }
      std::string_view item = text.substr(start, end - start);
      while (!item.empty() && item.front() == ' ') {
        item.remove_prefix(1);
      }
      while (!item.empty() && item.back() == ' ') {
        item.remove_suffix(1);
      }
      const auto it = std::find_if(q.options.begin(), q.options.end(),
                                   [&](const auto& o) { return o.id == item; });
      if (it == q.options.end()) {
        return refuse();
      }
      if (std::find(ids.begin(), ids.end(), it->id) == ids.end()) {
        ids.push_back(it->id);
      }
      start = end + 1;
    }
    return ids;
  }
  }
  return refuse();
}

json answerJson(const model::AnswerValue& answer) {
  return std::visit(
      [](const auto& v) -> json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, model::Date>) {
          return model::formatDate(v);
        } else {
          return v;
        }
      },
      answer);
}

std::string answerText(const model::AnswerValue& answer) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? "yes" : "no";
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return std::to_string(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return v;
        } else if constexpr (std::is_same_v<T, model::Date>) {
          return model::formatDate(v);
        } else {
          std::string s;
          for (const auto& id : v) {
            s += (s.empty() ? "" : ",") + id;
          }
          return s;
        }
      },
      answer);
}

} // namespace outpost::field
