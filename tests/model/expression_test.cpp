#include <outpost/expression.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>

using namespace outpost::model;

namespace {

ExpressionScope scopeFor(ExpressionKind kind, std::optional<ValueType> current = std::nullopt) {
  ExpressionScope s;
  s.kind = kind;
  s.questions = {{"q_age", ValueType::integer},  {"q_name", ValueType::text},
                 {"q_flag", ValueType::boolean}, {"q_places", ValueType::list},
                 {"q_seen", ValueType::date},    {"q_choice", ValueType::text}};
  s.indicators = {"ind_a"};
  s.currentType = current;
  return s;
}

struct TestEnv final : ExpressionEnvironment {
  std::map<std::string, ExprValue, std::less<>> answers;
  ExprValue cur;
  std::optional<Date> day;
  std::optional<std::int64_t> age;
  ExprValue answer(std::string_view id) const override {
    const auto it = answers.find(id);
    return it == answers.end() ? ExprValue{} : it->second;
  }
  ExprValue current() const override { return cur; }
  std::optional<Date> today() const override { return day; }
  std::optional<std::int64_t> childAge() const override { return age; }
  bool indicatorPresent(std::string_view id) const override { return id == "ind_a"; }
  std::int64_t countIndicators(std::string_view tier, std::string_view) const override {
    return tier == "serious" ? 2 : 0;
  }
};

std::vector<ExpressionDiagnostic> diagnostics(std::string_view src,
                                              ExpressionKind kind = ExpressionKind::relevant) {
  auto r = Expression::compile(src, scopeFor(kind, ValueType::integer));
  if (auto* d = std::get_if<std::vector<ExpressionDiagnostic>>(&r)) {
    return *d;
  }
  return {};
}

std::string firstError(std::string_view src, ExpressionKind kind = ExpressionKind::relevant) {
  const auto d = diagnostics(src, kind);
  return d.empty() ? std::string("<compiled>") : d.front().toString();
}

ExprValue eval(std::string_view src, const TestEnv& env = TestEnv{},
               ExpressionKind kind = ExpressionKind::rule) {
  auto r = Expression::compile(src, scopeFor(kind, ValueType::integer));
  if (auto* d = std::get_if<std::vector<ExpressionDiagnostic>>(&r)) {
    FAIL("did not compile: " << d->front().toString());
  }
  return std::get<Expression>(r).evaluate(env);
}

std::string errorOf(const ExprValue& v) {
  const auto* e = std::get_if<EvaluationError>(&v);
  return e == nullptr ? std::string("<no error>") : e->message;
}

Date ymd(int y, unsigned m, unsigned d) {
  return Date{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
}

} // namespace

TEST_SUITE("model.expression") {
  TEST_CASE("arithmetic follows the usual precedence and comparisons give true/false") {
    CHECK(eval("1 + 2 * 3 = 7") == ExprValue{true});
    CHECK(eval("(1 + 2) * 3") == ExprValue{std::int64_t{9}});
    CHECK(eval("10 - 4 - 3") == ExprValue{std::int64_t{3}});
    CHECK(eval("-7 / 2") == ExprValue{std::int64_t{-3}});
    CHECK(eval("7 % 3") == ExprValue{std::int64_t{1}});
    CHECK(eval("2 <= 2 and 3 > 2 and 1 != 2 and not (1 >= 2)") == ExprValue{true});
    CHECK(eval("'a' == 'a'") == ExprValue{true});
  }

  TEST_CASE("answers are read by reference and a missing answer is null") {
    TestEnv env;
    env.answers["q_age"] = std::int64_t{12};
    env.answers["q_flag"] = true;
    CHECK(eval("${q_age} < 13 and ${q_flag}", env) == ExprValue{true});
    CHECK(eval("${q_name} = null", env) == ExprValue{true});
    // An ordering comparison with a missing answer is null, which is not true.
    CHECK(std::holds_alternative<std::monostate>(
              eval("${q_name} = 'x' or ${q_seen} > today()", env)) == false);
    CHECK_FALSE(isTrue(eval("${q_seen} > today()", env)));
    CHECK(eval("not ${q_name} = 'x'", env) == ExprValue{true});
  }

  TEST_CASE("multi-choice answers work with in, selected() and count()") {
    TestEnv env;
    env.answers["q_places"] = std::vector<std::string>{"hotel", "park"};
    env.answers["q_choice"] = std::string("b");
    CHECK(eval("'hotel' in ${q_places}", env) == ExprValue{true});
    CHECK(eval("${q_choice} in ['a', 'b']", env) == ExprValue{true});
    CHECK(eval("${q_choice} in []", env) == ExprValue{false});
    CHECK(eval("selected(${q_places}, 'park') and not selected(${q_places}, 'car')", env) ==
          ExprValue{true});
    CHECK(eval("count(${q_places}) = 2", env) == ExprValue{true});
    CHECK(eval("count(null) = 0", env) == ExprValue{true});
  }

  TEST_CASE("dates compare and days_since counts from the caller's today") {
    TestEnv env;
    env.day = ymd(2026, 3, 1);
    env.answers["q_seen"] = ymd(2026, 2, 1);
    CHECK(eval("days_since(${q_seen}) = 28", env) == ExprValue{true});
    CHECK(eval("${q_seen} < today() and date('2026-02-01') = ${q_seen}", env) == ExprValue{true});
    TestEnv noDay;
    CHECK(std::holds_alternative<std::monostate>(eval("today()", noDay)));
  }

  TEST_CASE("'.' is the answer being checked, and only exists in constraints") {
    auto r = Expression::compile(". >= 0 and . <= 25",
                                 scopeFor(ExpressionKind::constraint, ValueType::integer));
    REQUIRE(std::holds_alternative<Expression>(r));
    TestEnv env;
    env.cur = std::int64_t{30};
    CHECK(std::get<Expression>(r).evaluate(env) == ExprValue{false});
    env.cur = std::int64_t{3};
    CHECK(std::get<Expression>(r).evaluate(env) == ExprValue{true});
    CHECK(firstError(". > 1") ==
          "'.' (the answer being checked) is only allowed in a constraint at column 1");
  }

  TEST_CASE("and/or short-circuit, so an error on the untaken side is never raised") {
    CHECK(eval("false and 1 / 0 = 1") == ExprValue{false});
    CHECK(eval("true or 1 / 0 = 1") == ExprValue{true});
    CHECK(errorOf(eval("true and 1 / 0 = 1")) == "division by zero");
  }

  TEST_CASE("an unknown question is reported with its column") {
    CHECK(firstError("${q_agee} > 3") == "unknown question 'q_agee' at column 1");
    CHECK(firstError("1 + ${q_agee}") == "unknown question 'q_agee' at column 5");
  }

  TEST_CASE("every unknown name in one expression is reported, not just the first") {
    const auto d = diagnostics("${q_x} = 1 or ${q_y} = 2 or nope() = 3");
    REQUIRE(d.size() == 3);
    CHECK(d[0].toString() == "unknown question 'q_x' at column 1");
    CHECK(d[1].toString() == "unknown question 'q_y' at column 15");
    CHECK(d[2].toString() == "unknown function 'nope' at column 29");
  }

  TEST_CASE("type errors, wrong arity and misplaced functions are load-time errors") {
    CHECK(firstError("'a' + 1") == "arithmetic needs numbers, got text and number at column 5");
    CHECK(firstError("${q_age} = 'twelve'") ==
          "cannot compare number with text using '=' at column 10");
    CHECK(firstError("${q_flag} < 3") ==
          "'<' compares two numbers or two dates, got true/false and number at column 11");
    CHECK(firstError("count(${q_places}, 1) > 0") ==
          "function 'count' takes 1 argument, got 2 at column 1");
    CHECK(firstError("present('ind_a')") ==
          "function 'present' is only allowed in override and review rules at column 1");
    CHECK(firstError("present('ind_zz')", ExpressionKind::rule) ==
          "unknown indicator 'ind_zz' at column 9");
    CHECK(firstError("count_indicators('grave')", ExpressionKind::rule) ==
          "unknown tier 'grave' (use 'vulnerability', 'concern' or 'serious') at column 18");
    CHECK(firstError("date('2026-02-30') < today()") ==
          "'2026-02-30' is not a date; write 'YYYY-MM-DD' at column 6");
    CHECK(firstError("q_age > 3") ==
          "unknown name 'q_age'; answers are written ${question_id}, functions need '(...)' at "
          "column 1");
  }

  TEST_CASE("syntax errors say what was expected and where") {
    CHECK(firstError("'abc") == "unterminated string; close it with ' at column 1");
    CHECK(firstError("${q_age > 3") == "expected '}' to close the answer reference at column 1");
    CHECK(firstError("(1 + 2") == "expected ')' to close the '(' at column 1, found end of "
                                  "expression at column 7");
    CHECK(firstError("1 +") == "expression ends too early; a value is missing at column 4");
    CHECK(firstError("1 < 2 < 3") ==
          "comparisons cannot be chained; join them with 'and' or 'or' at column 7");
    CHECK(firstError("1.5 > 1") ==
          "decimal numbers are not supported; use whole numbers at column 1");
    CHECK(firstError("1 2") == "unexpected number after the expression at column 3");
    CHECK(firstError("") == "expression ends too early; a value is missing at column 1");
    CHECK(firstError("${q_flag} && true") == "unexpected '&' at column 11");
  }

  TEST_CASE("garbage bytes are reported as bytes, never echoed raw") {
    CHECK(firstError(std::string("1 = \x01")) == "unexpected byte 0x01 at column 5");
    CHECK(firstError(std::string("\xff\xfe")) == "unexpected byte 0xFF at column 1");
    CHECK(firstError(std::string("'a\x07'")) == "control byte 0x07 inside a string at column 3");
  }

  TEST_CASE("100k nested parentheses are rejected without exhausting the stack") {
    const std::string deep = std::string(100000, '(') + "1" + std::string(100000, ')');
    CHECK(firstError(deep).find("expression too long") == 0);
    // Within the length limit, the nesting limit catches it.
    const std::string nested = std::string(200, '(') + "1" + std::string(200, ')');
    CHECK(firstError(nested) == "expression nested too deeply (the limit is 64 levels) at "
                                "column 65");
    const std::string atLimit = std::string(64, '(') + "1" + std::string(64, ')');
    CHECK(eval(atLimit) == ExprValue{std::int64_t{1}});
    std::string nots;
    for (int i = 0; i < 500; ++i) {
      nots += "not ";
    }
    CHECK(firstError(nots + "true").find("expression nested too deeply") == 0);
    CHECK(firstError(std::string(1000, '-') + "1").find("expression nested too deeply") == 0);
  }

  TEST_CASE("long operator chains are bounded by the tree's height") {
    std::string chain = "1";
    for (int i = 0; i < 1000; ++i) {
      chain += "+1";
    }
    CHECK(firstError(chain).find("expression nested too deeply") == 0);
    std::string ok = "1";
    for (int i = 0; i < 60; ++i) {
      ok += "+1";
    }
    CHECK(eval(ok) == ExprValue{std::int64_t{61}});
  }

  TEST_CASE("huge numbers and overflow are errors, never undefined behaviour") {
    CHECK(firstError("99999999999999999999 > 1") ==
          "number too large (the largest is 9223372036854775807) at column 1");
    CHECK(eval("9223372036854775807 > 0") == ExprValue{true});
    CHECK(errorOf(eval("9223372036854775807 + 1")) == "number overflow");
    CHECK(errorOf(eval("0 - 9223372036854775807 - 2")) == "number overflow");
    CHECK(errorOf(eval("9223372036854775807 * 2")) == "number overflow");
    CHECK(errorOf(eval("(0 - 9223372036854775807 - 1) / -1")) == "number overflow");
    CHECK(errorOf(eval("(0 - 9223372036854775807 - 1) % -1")) == "number overflow");
    CHECK(errorOf(eval("-(0 - 9223372036854775807 - 1)")) == "number overflow");
    CHECK(errorOf(eval("5 % 0")) == "division by zero");
    // Errors propagate through comparisons and logic rather than turning into false.
    CHECK(errorOf(eval("1 / 0 > 2 or false")) == "division by zero");
  }

  TEST_CASE("evaluation stops at its step budget") {
    auto r = Expression::compile("1 + 1 + 1 + 1 = 4", scopeFor(ExpressionKind::relevant));
    REQUIRE(std::holds_alternative<Expression>(r));
    const Expression& e = std::get<Expression>(r);
    CHECK(e.evaluate(TestEnv{}) == ExprValue{true});
    CHECK(errorOf(e.evaluate(TestEnv{}, 3)) == "the expression took too many steps to evaluate");
  }

  TEST_CASE("rule functions read indicators and the child's context") {
    TestEnv env;
    env.age = 12;
    CHECK(eval("present('ind_a') and count_indicators('serious', 'current') = 2 and age() < 13",
               env) == ExprValue{true});
    TestEnv unknownAge;
    CHECK_FALSE(isTrue(eval("age() < 13", unknownAge)));
  }

  TEST_CASE("random bytes never crash the compiler or the evaluator") {
    std::mt19937 rng(20261129);
    const std::string alphabet = "()[]${}.,'\"=!<>+-*/% 0123456789abcdnotrq_agefl\x01\xff";
    std::size_t compiled = 0;
    for (int i = 0; i < 3000; ++i) {
      std::string s;
      const auto len = rng() % 40;
      for (std::uint32_t j = 0; j < len; ++j) {
        s += alphabet[rng() % alphabet.size()];
      }
      auto r = Expression::compile(s, scopeFor(ExpressionKind::rule, ValueType::integer));
      if (auto* e = std::get_if<Expression>(&r)) {
        ++compiled;
        (void)e->evaluate(TestEnv{});
      } else {
        const auto& d = std::get<std::vector<ExpressionDiagnostic>>(r);
        REQUIRE_FALSE(d.empty());
        CHECK(d.front().column >= 1);
        CHECK(d.front().column <= s.size() + 1);
      }
    }
    CHECK(compiled > 0);
  }

  TEST_CASE("the questions an expression reads are listed") {
    auto r = Expression::compile("${q_flag} and ${q_age} > 3 or ${q_flag}",
                                 scopeFor(ExpressionKind::relevant));
    REQUIRE(std::holds_alternative<Expression>(r));
    const auto& read = std::get<Expression>(r).questionsRead();
    CHECK(read == std::set<std::string, std::less<>>{"q_age", "q_flag"});
  }
}
