#include "test_templates.hpp"

#include <outpost/template.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace outpost::model;
using outpost::model::testing::smallTemplate;

namespace {

const Template& small() {
  static const Template t = loadTemplate(smallTemplate().dump());
  return t;
}

Date ymd(int y, unsigned m, unsigned d) {
  return Date{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
}

AssessmentContext contextOn(Date today) {
  AssessmentContext c;
  c.today = today;
  c.childAgeYears = 14;
  return c;
}

/// The answers that make the small template valid with nothing optional given.
Answers minimal() {
  Answers a;
  a.values["q_age"] = std::int64_t{14};
  return a;
}

std::string problemsFor(const AnswerProblems& p, const std::string& id) {
  const auto it = p.find(id);
  if (it == p.end()) {
    return "<none>";
  }
  std::string out;
  for (const auto& m : it->second) {
    out += (out.empty() ? "" : " | ") + m;
  }
  return out;
}

} // namespace

TEST_SUITE("model.answers") {
  TEST_CASE("complete, well-typed answers have no problems") {
    Answers a = minimal();
    a.values["q_flag"] = true;
    a.values["q_when"] = std::string("within_6_months");
    a.values["q_places"] = std::vector<std::string>{"park"};
    a.values["q_note"] = std::string("seen near the park");
    a.values["q_seen"] = ymd(2026, 1, 2);
    CHECK(validateAnswers(small(), a, contextOn(ymd(2026, 1, 10))).empty());
  }

  TEST_CASE("an answer of the wrong type is reported against its question") {
    Answers a = minimal();
    a.values["q_flag"] = std::string("yes");
    a.values["q_age"] = true;
    const auto p = validateAnswers(small(), a);
    CHECK(problemsFor(p, "q_flag") == "expects true/false, got text");
    CHECK(problemsFor(p, "q_age") == "expects a number, got true/false");
  }

  TEST_CASE("choices must be options of the question, each selected once") {
    Answers a = minimal();
    a.values["q_flag"] = true;
    a.values["q_when"] = std::string("last_year");
    a.values["q_places"] = std::vector<std::string>{"park", "park"};
    a.values["q_note"] = std::string("x");
    const auto p = validateAnswers(small(), a);
    CHECK(problemsFor(p, "q_when") == "the answer is not one of the question's options");
    CHECK(problemsFor(p, "q_places") == "an option is selected twice");
    a.values["q_places"] = std::vector<std::string>{"car"};
    CHECK(problemsFor(validateAnswers(small(), a), "q_places") ==
          "an answer is not one of the question's options");
  }

  TEST_CASE("a required question needs an answer only when it applies") {
    Answers a;
    CHECK(problemsFor(validateAnswers(small(), a), "q_age") == "an answer is required");
    a = minimal();
    CHECK(problemsFor(validateAnswers(small(), a), "q_note") == "<none>");
    a.values["q_places"] = std::vector<std::string>{"park"};
    CHECK(problemsFor(validateAnswers(small(), a), "q_note") == "an answer is required");
  }

  TEST_CASE("an answer to a question that does not apply is rejected") {
    Answers a = minimal();
    a.values["q_flag"] = false;
    a.values["q_when"] = std::string("current");
    CHECK(problemsFor(validateAnswers(small(), a), "q_when") ==
          "answered, but the question does not apply to these answers; remove the answer");
  }

  TEST_CASE("constraints are checked with the template's message") {
    Answers a = minimal();
    a.values["q_age"] = std::int64_t{40};
    CHECK(problemsFor(validateAnswers(small(), a), "q_age") == "Age must be 0 to 25.");
    a.values["q_age"] = std::int64_t{25};
    CHECK(problemsFor(validateAnswers(small(), a), "q_age") == "<none>");
  }

  TEST_CASE("constraints that use today() compare with the caller's date") {
    Answers a = minimal();
    a.values["q_seen"] = ymd(2026, 2, 1);
    CHECK(problemsFor(validateAnswers(small(), a, contextOn(ymd(2026, 1, 31))), "q_seen") ==
          "the answer is not allowed by the question's constraint");
    CHECK(problemsFor(validateAnswers(small(), a, contextOn(ymd(2026, 2, 1))), "q_seen") ==
          "<none>");
    // Without a context there is no today(), so the constraint cannot fail.
    CHECK(problemsFor(validateAnswers(small(), a), "q_seen") == "<none>");
  }

  TEST_CASE("answers to unknown questions are reported") {
    Answers a = minimal();
    a.values["q_agee"] = std::int64_t{3};
    CHECK(problemsFor(validateAnswers(small(), a), "q_agee") ==
          "there is no such question in template 'test-tpl' version 1");
  }

  TEST_CASE("a present indicator needs its recency") {
    Answers a = minimal();
    a.values["q_places"] = std::vector<std::string>{"hotel"};
    a.values["q_note"] = std::string("x");
    CHECK(problemsFor(validateAnswers(small(), a), "i_hotel") ==
          "the recency of this indicator is needed because it is present");
    a.recency["i_hotel"] = Recency::within6Months;
    CHECK(validateAnswers(small(), a).empty());

    // An indicator with a recency question asks for that question instead.
    a.values["q_flag"] = true;
    CHECK(problemsFor(validateAnswers(small(), a), "q_when") ==
          "needed because indicator 'i_flag' is present");
    a.recency["i_flag"] = Recency::current;
    CHECK(problemsFor(validateAnswers(small(), a), "i_flag") ==
          "a recency was given, but this is not an indicator that takes its recency from the "
          "answers");
  }

  TEST_CASE("the questions that apply follow the answers") {
    Answers a = minimal();
    const AssessmentContext c = contextOn(ymd(2026, 1, 1));
    auto rel = relevantQuestions(small(), a, c);
    CHECK(std::find(rel.begin(), rel.end(), "q_when") == rel.end());
    CHECK(std::find(rel.begin(), rel.end(), "q_note") == rel.end());
    a.values["q_flag"] = true;
    a.values["q_places"] = std::vector<std::string>{"hotel"};
    rel = relevantQuestions(small(), a, c);
    CHECK(std::find(rel.begin(), rel.end(), "q_when") != rel.end());
    CHECK(std::find(rel.begin(), rel.end(), "q_note") != rel.end());
  }

  TEST_CASE("the small template scores through its recency question and rules") {
    Answers a = minimal();
    a.values["q_flag"] = true;
    a.values["q_when"] = std::string("within_6_months");
    a.values["q_places"] = std::vector<std::string>{"hotel", "park"};
    a.values["q_note"] = std::string("x");
    a.recency["i_hotel"] = Recency::sixTo12Months;
    AssessmentContext c = contextOn(ymd(2026, 1, 15));
    const ScoreExplanation ex = score(small(), a, c);
    CHECK(ex.totalScore == 3 + 1 + 1);
    CHECK(ex.level == "high");
    CHECK(ex.overrides.empty());
    CHECK(ex.reviewMonths == 2);
    CHECK(ex.reviewDue == ymd(2026, 3, 15));
    c.childAgeYears = 12;
    CHECK(score(small(), a, c).overrides.size() == 1);
  }
}
