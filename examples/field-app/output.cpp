#include "output.hpp"

#include <chrono>
#include <ctime>

namespace outpost::field {

std::string isoTime(std::int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json valueJson(const sync::Value& value) { return json::parse(sync::toJson(value)); }

std::string valueText(const sync::Value& value) {
  if (const auto* s = std::get_if<std::string>(&value)) {
    return *s;
  }
  if (std::holds_alternative<sync::Null>(value)) {
    return "(empty)";
  }
  if (std::holds_alternative<sync::Tombstone>(value)) {
    return "(deleted)";
  }
  return sync::toJson(value);
}

json errorJson(Errc code, std::string_view message, const json& details) {
  json j = details.is_object() ? details : json::object();
  j["error"] = {{"code", std::string(errcName(code))},
                {"number", static_cast<int>(code)},
                {"message", std::string(message)},
                {"advice", std::string(errcAdvice(code))}};
  return j;
}

std::string indented(std::string_view text, std::string_view indent) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    out.append(indent).append(text.substr(start, end - start)).append("\n");
    start = end + 1;
  }
  return out;
}

} // namespace outpost::field
