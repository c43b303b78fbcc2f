#pragma once
/// \file
/// The template expression language: `relevant` (skip logic), `constraint` and rule
/// (`when`) expressions. A hand-written lexer and recursive-descent parser build a
/// typed syntax tree once, when a template loads; evaluation walks that tree with a
/// step budget. Nothing in an expression can run code, read files or loop: the
/// language has no assignment, no user functions and no iteration. docs/templates.md
/// describes the syntax.
///
/// Thread safety: a compiled `Expression` is immutable and may be evaluated from any
/// number of threads at once.

#include <outpost/export.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace outpost::model {

/// A calendar date (no time of day, no zone).
using Date = std::chrono::year_month_day;

/// Bounds that make evaluation safe on hostile input.
inline constexpr std::size_t kMaxExpressionLength = 4096; ///< bytes of source text
inline constexpr std::size_t kMaxExpressionDepth = 64;    ///< nesting of the syntax tree
inline constexpr std::size_t kMaxEvaluationSteps = 10000; ///< tree nodes visited per evaluation

/// The static type of a value in an expression.
enum class ValueType : std::uint8_t { null, boolean, integer, text, date, list };

/// The name a person reads in an error message: "true/false", "number", "text", ...
[[nodiscard]] OUTPOST_API std::string_view valueTypeName(ValueType type) noexcept;

/// A runtime error value (division by zero, overflow, step budget). It propagates
/// through operators like a value; it never throws.
struct EvaluationError {
  std::string message;
  friend bool operator==(const EvaluationError&, const EvaluationError&) = default;
};

/// What an expression evaluates to. `std::monostate` is `null` (no answer).
using ExprValue = std::variant<std::monostate, bool, std::int64_t, std::string, Date,
                               std::vector<std::string>, EvaluationError>;

/// Where an expression is used; it decides which names are allowed.
enum class ExpressionKind : std::uint8_t {
  relevant,   ///< skip logic of a question or section: answers and context
  constraint, ///< check of one answer: also `.` (the answer being checked)
  rule,       ///< override and review rules: also the indicator functions
};

/// The names an expression may refer to, fixed when the template loads.
struct ExpressionScope {
  ExpressionKind kind = ExpressionKind::relevant;
  /// Question id -> the type its answer has in expressions.
  std::map<std::string, ValueType, std::less<>> questions;
  /// Indicator ids (rule expressions only).
  std::set<std::string, std::less<>> indicators;
  /// The type of `.` in a constraint.
  std::optional<ValueType> currentType;
};

/// A problem found while compiling an expression. `column` is 1-based, in bytes.
struct ExpressionDiagnostic {
  std::size_t column = 0;
  std::string message;
  /// "<message> at column <column>".
  [[nodiscard]] OUTPOST_API std::string toString() const;
};

/// What an evaluation can read. The template engine implements it over answers and
/// the assessment context; tests and tools may implement their own.
class OUTPOST_API ExpressionEnvironment {
public:
  virtual ~ExpressionEnvironment();
  /// The answer to a question, or null when unanswered or not relevant.
  [[nodiscard]] virtual ExprValue answer(std::string_view questionId) const = 0;
  /// `.` in a constraint.
  [[nodiscard]] virtual ExprValue current() const { return {}; }
  /// `today()`; null when the caller gave no date.
  [[nodiscard]] virtual std::optional<Date> today() const { return std::nullopt; }
  /// `age()`: the child's age in whole years, if known.
  [[nodiscard]] virtual std::optional<std::int64_t> childAge() const { return std::nullopt; }
  /// `learning_disability()`.
  [[nodiscard]] virtual bool learningDisability() const { return false; }
  /// `present('id')`.
  [[nodiscard]] virtual bool indicatorPresent(std::string_view /*indicatorId*/) const {
    return false;
  }
  /// `recency('id')`: "current", "within_6_months", "6_12_months", or empty.
  [[nodiscard]] virtual std::string indicatorRecency(std::string_view /*indicatorId*/) const {
    return {};
  }
  /// `count_indicators(tier[, recency])`; an empty recency counts every recency.
  [[nodiscard]] virtual std::int64_t countIndicators(std::string_view /*tier*/,
                                                     std::string_view /*recency*/) const {
    return 0;
  }
};

namespace detail {
struct ExprNode;
}

/// A compiled, type-checked expression.
class OUTPOST_API Expression {
public:
  /// Compiles `source` against `scope`. Returns every problem found (unknown
  /// questions, indicators and functions, type errors) or, with none, the
  /// expression. Syntax errors stop at the first one. Never throws on bad input.
  [[nodiscard]] static std::variant<Expression, std::vector<ExpressionDiagnostic>>
  compile(std::string_view source, const ExpressionScope& scope);

  /// Evaluates with at most `maxSteps` nodes visited. Errors (division by zero,
  /// overflow, budget exhausted) come back as an `EvaluationError` value.
  [[nodiscard]] ExprValue evaluate(const ExpressionEnvironment& env,
                                   std::size_t maxSteps = kMaxEvaluationSteps) const;

  /// The static type of the result.
  [[nodiscard]] ValueType type() const noexcept;
  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  /// The question ids the expression reads, sorted.
  [[nodiscard]] const std::set<std::string, std::less<>>& questionsRead() const noexcept {
    return questionsRead_;
  }

private:
  Expression() = default;
  std::string source_;
  std::shared_ptr<const detail::ExprNode> root_;
  std::set<std::string, std::less<>> questionsRead_;
};

/// True only for the boolean `true`. Null, false and errors are not true: a rule
/// whose inputs are missing does not fire.
[[nodiscard]] OUTPOST_API bool isTrue(const ExprValue& value) noexcept;

/// Parses "YYYY-MM-DD" strictly; nullopt for anything else or an impossible date.
[[nodiscard]] OUTPOST_API std::optional<Date> parseDate(std::string_view text) noexcept;

/// "YYYY-MM-DD".
[[nodiscard]] OUTPOST_API std::string formatDate(Date date);

} // namespace outpost::model
