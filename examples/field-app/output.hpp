#pragma once
// What a command hands back and how it is shown: one JSON document on stdout
// (--json) or text for a person; refusals with a stable error name.

#include <outpost/error.hpp>
#include <outpost/sync/value.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace outpost::field {

using nlohmann::json;

/// A command's outcome: the document printed with --json, the text otherwise.
struct Result {
  json data = json::object();
  std::string text;
};

/// A refusal a person can act on: a stable Outpost error code, a message that says
/// what happened and what to do, and details for scripts (e.g. the problem of each
/// answer). Thrown before anything is written.
class Failure : public Error {
public:
  Failure(Errc code, const std::string& message, json details = json::object())
      : Error(code, message), details_(std::move(details)) {}
  [[nodiscard]] const json& details() const noexcept { return details_; }

private:
  json details_;
};

/// "2026-01-15T14:30:00Z" (UTC) for a time in milliseconds since the Unix epoch.
[[nodiscard]] std::string isoTime(std::int64_t ms);

/// A field value as JSON (the canonical JSON of docs/sync.md).
[[nodiscard]] json valueJson(const sync::Value& value);

/// A field value as one line of text for a person.
[[nodiscard]] std::string valueText(const sync::Value& value);

/// The document printed on stdout for a refusal with --json:
/// {"error": {"code": "<stable name>", "number": N, "message": ..., "advice": ...}, ...details}.
[[nodiscard]] json errorJson(Errc code, std::string_view message, const json& details);

/// `text` with every line indented by `indent`.
[[nodiscard]] std::string indented(std::string_view text, std::string_view indent);

} // namespace outpost::field
