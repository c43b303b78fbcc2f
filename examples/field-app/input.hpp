#pragma once
// What a worker types on the command line or at the prompt: times, ids, answers.
// Every parser refuses bad text with a Failure that says what to type instead.

#include "output.hpp"

#include <outpost/sync/uuid.hpp>
#include <outpost/template.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outpost::field {

/// A time: "now", "-90m", "-3h", "-4d" (that long ago), "YYYY-MM-DD" (midnight
/// UTC) or "YYYY-MM-DDTHH:MM[:SS][Z]" (UTC). `what` names the option in messages.
[[nodiscard]] std::int64_t parseTime(std::string_view text, std::int64_t nowMs,
                                     std::string_view what);

/// A record id (UUID text). `what` names the kind of record in messages.
[[nodiscard]] sync::Uuid parseId(std::string_view text, std::string_view what);

/// yes/no, true/false, y/n, 1/0.
[[nodiscard]] std::optional<bool> parseBool(std::string_view text);

/// "current", "within_6_months" (or "6m"), "6_12_months" (or "12m").
[[nodiscard]] std::optional<model::Recency> parseRecency(std::string_view text);

/// The answer to `question` typed as text: yes/no for a bool question, a whole
/// number, a date YYYY-MM-DD, an option id (or its number in the list, from 1) for
/// a single choice, option ids separated by commas for a multi choice, any text.
/// Throws Failure{validation} naming the question and what it accepts.
[[nodiscard]] model::AnswerValue parseAnswer(const model::Question& question,
                                             std::string_view text);

/// What a question accepts, for prompts and messages ("yes or no", ...).
[[nodiscard]] std::string answerHint(const model::Question& question);

/// An answer as JSON / as text.
[[nodiscard]] json answerJson(const model::AnswerValue& answer);
[[nodiscard]] std::string answerText(const model::AnswerValue& answer);

} // namespace outpost::field
