// libFuzzer entry for the template engine: the input is tried as a template
// document (then scored with empty and filled answers) and as an expression.
// Build and run: see tests/model/CMakeLists.txt and docs/templates.md.

#include <outpost/expression.hpp>
#include <outpost/template.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

using namespace outpost::model;

namespace {

struct FuzzEnv final : ExpressionEnvironment {
  ExprValue answer(std::string_view id) const override {
    if (id == "q_age") {
      return std::int64_t{9223372036854775807};
    }
    if (id == "q_places") {
      return std::vector<std::string>{"hotel"};
    }
    return {};
  }
  ExprValue current() const override { return std::int64_t{-1}; }
  std::optional<Date> today() const override {
    return Date{std::chrono::year{2026}, std::chrono::month{1}, std::chrono::day{31}};
  }
  std::optional<std::int64_t> childAge() const override { return 12; }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const TemplateLoadResult loaded = parseTemplate(text);
  if (loaded.loaded) {
    const Template& t = *loaded.loaded;
    AssessmentContext ctx;
    ctx.childAgeYears = 12;
    ctx.today = Date{std::chrono::year{2026}, std::chrono::month{1}, std::chrono::day{31}};
    Answers answers;
    (void)validateAnswers(t, answers, ctx);
    (void)score(t, answers, ctx);
    // Answer every bool question "yes" and every choice with its first option.
    for (const auto& s : t.definition().sections) {
      for (const auto& q : s.questions) {
        if (q.type == QuestionType::boolean) {
          answers.values[q.id] = true;
        } else if (q.type == QuestionType::singleChoice && !q.options.empty()) {
          answers.values[q.id] = q.options.front().id;
        } else if (q.type == QuestionType::multiChoice && !q.options.empty()) {
          answers.values[q.id] = std::vector<std::string>{q.options.front().id};
        } else if (q.type == QuestionType::integer) {
          answers.values[q.id] = std::int64_t{-9223372036854775807 - 1};
        }
      }
    }
    (void)validateAnswers(t, answers, ctx);
    (void)describe(score(t, answers, ctx));
  }

  ExpressionScope scope;
  scope.kind = ExpressionKind::rule;
  scope.questions = {{"q_age", ValueType::integer}, {"q_places", ValueType::list}};
  scope.indicators = {"ind_a"};
  auto compiled = Expression::compile(text, scope);
  if (const auto* e = std::get_if<Expression>(&compiled)) {
    (void)e->evaluate(FuzzEnv{});
  }
  scope.kind = ExpressionKind::constraint;
  scope.currentType = ValueType::integer;
  compiled = Expression::compile(text, scope);
  if (const auto* e = std::get_if<Expression>(&compiled)) {
    (void)e->evaluate(FuzzEnv{});
  }
  return 0;
}
