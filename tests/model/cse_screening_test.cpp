#include <outpost/template.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace outpost::model;

namespace {

const Template& cse() {
  static const Template t = loadTemplate(cseScreeningV1Json());
  return t;
}

Date ymd(int y, unsigned m, unsigned d) {
  return Date{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
}

// Indicator questions of cse-screening v1 by tier (ctx_learning_needs left out of
// the vulnerabilities so that scores alone never meet the learning-disability override).
const std::vector<std::string> kVulnerabilities{
    "ctx_looked_after", "ctx_past_abuse",    "ctx_domestic_abuse", "ctx_carer_substances",
    "ctx_loss",         "ctx_unstable_home", "ctx_isolated",       "ctx_peer_exploited"};
const std::vector<std::string> kConcerns{
    "mw_missing",       "mw_out_late",      "edu_absent",      "edu_collected", "rel_older_friends",
    "rel_risky_peers",  "pl_far_from_home", "onl_phone_worry", "hlt_injuries",  "sub_use",
    "sub_adult_supply", "wb_self_harm",     "wb_sharp_change"};
const std::vector<std::string> kSerious{"mw_missing_repeated",    "rel_controlling_partner",
                                        "mon_unexplained_goods",  "mon_sex_exchange",
                                        "pl_cars_unknown_adults", "pl_hotels_parties",
                                        "onl_grooming_images",    "hlt_sexual_health_repeat"};

/// The answers every assessment must give, with no indicator present.
Answers baseline() {
  Answers a;
  a.values["dis_status"] = std::string("none");
  a.values["voice_child"] = std::string("(the child's words)");
  a.values["voice_analysis"] = std::string("(analysis)");
  return a;
}

void addVulnerabilities(Answers& a, std::size_t n) {
  REQUIRE(n <= kVulnerabilities.size());
  for (std::size_t i = 0; i < n; ++i) {
    a.values[kVulnerabilities[i]] = true;
  }
}

void addConcerns(Answers& a, std::size_t n, Recency r) {
  REQUIRE(n <= kConcerns.size());
  for (std::size_t i = 0; i < n; ++i) {
    a.values[kConcerns[i]] = true;
    a.recency["ind_" + kConcerns[i]] = r;
  }
}

void addSerious(Answers& a, const std::string& question, Recency r) {
  a.values[question] = true;
  a.recency["ind_" + question] = r;
}

AssessmentContext child(std::int64_t age, bool learningDisability = false) {
  AssessmentContext c;
  c.childAgeYears = age;
  c.learningDisability = learningDisability;
  c.today = ymd(2026, 1, 15);
  return c;
}

ScoreExplanation scoreValid(const Answers& a, const AssessmentContext& c) {
  const auto problems = validateAnswers(cse(), a, c);
  for (const auto& [id, messages] : problems) {
    INFO(id << ": " << messages.front());
    CHECK(problems.empty());
  }
  return score(cse(), a, c);
}

bool fired(const ScoreExplanation& ex, const std::string& ruleId) {
  return std::any_of(ex.overrides.begin(), ex.overrides.end(),
                     [&](const FiredOverride& o) { return o.ruleId == ruleId; });
}

} // namespace

TEST_SUITE("model.cse_screening") {
  TEST_CASE("the shipped template loads, is published and has every section") {
    const auto& def = cse().definition();
    CHECK(def.id == "cse-screening");
    CHECK(def.version == 1);
    CHECK(def.status == TemplateStatus::published);
    std::vector<std::string> ids;
    for (const auto& s : def.sections) {
      ids.push_back(s.id);
    }
    CHECK(ids == std::vector<std::string>{"context", "missing", "education", "relationships",
                                          "money", "places", "online", "health", "substances",
                                          "wellbeing", "disclosure", "protective", "voice"});
    CHECK_FALSE(def.sections[11].scored);
    CHECK_FALSE(def.sections[12].scored);
    std::vector<std::string> levels;
    for (const auto& l : def.levels) {
      levels.push_back(l.label);
    }
    CHECK(levels == std::vector<std::string>{"No current risk indicated", "At risk", "Elevated",
                                             "Significant"});
  }

  TEST_CASE("indicator points follow the tiers and recencies") {
    for (const auto& ind : cse().definition().indicators) {
      CAPTURE(ind.id);
      switch (ind.tier) {
      case Tier::vulnerability:
        CHECK_FALSE(ind.usesRecency());
        CHECK(ind.flatPoints == 1);
        break;
      case Tier::concern:
        CHECK(ind.pointsByRecency.at(Recency::current) == 2);
        CHECK(ind.pointsByRecency.at(Recency::within6Months) == 2);
        CHECK(ind.pointsByRecency.at(Recency::sixTo12Months) == 1);
        break;
      case Tier::serious:
        CHECK(ind.pointsByRecency.at(Recency::current) == 5);
        CHECK(ind.pointsByRecency.at(Recency::sixTo12Months) == 1);
        break;
      }
    }
    CHECK(cse().definition().indicators.size() ==
          kVulnerabilities.size() + 1 + kConcerns.size() + kSerious.size());
  }

  TEST_CASE("no indicators is no current risk, reviewed in three months") {
    const auto ex = scoreValid(baseline(), child(15));
    CHECK(ex.totalScore == 0);
    CHECK(ex.level == "no_current_risk");
    CHECK(ex.levelLabel == "No current risk indicated");
    CHECK(ex.contributions.empty());
    CHECK(ex.overrides.empty());
    CHECK(ex.reviewMonths == 3);
    CHECK(ex.reviewDue == ymd(2026, 4, 15));
    CHECK(ex.notes.empty());
  }

  TEST_CASE("the bands change level exactly at 5/6, 10/11 and 15/16") {
    struct Case {
      std::size_t vulnerabilities;
      std::size_t concerns6;
      std::size_t concerns12;
      std::int64_t total;
      const char* level;
    };
    const Case cases[] = {
        {5, 0, 0, 5, "no_current_risk"}, {6, 0, 0, 6, "at_risk"},   {8, 0, 2, 10, "at_risk"},
        {8, 0, 3, 11, "elevated"},       {5, 5, 0, 15, "elevated"}, {6, 5, 0, 16, "significant"},
        {8, 13, 0, 34, "significant"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.total);
      Answers a = baseline();
      addVulnerabilities(a, c.vulnerabilities);
      addConcerns(a, c.concerns6, Recency::within6Months);
      // The 6-12 month concerns come after the within-6-month ones in kConcerns.
      for (std::size_t i = c.concerns6; i < c.concerns6 + c.concerns12; ++i) {
        a.values[kConcerns[i]] = true;
        a.recency["ind_" + kConcerns[i]] = Recency::sixTo12Months;
      }
      const auto ex = scoreValid(a, child(15));
      CHECK(ex.totalScore == c.total);
      CHECK(ex.bandLevel == c.level);
      CHECK(ex.level == c.level);
      CHECK(ex.overrides.empty());
    }
  }

  TEST_CASE("a 12-year-old with one current serious indicator is at least significant") {
    Answers a = baseline();
    addSerious(a, "pl_cars_unknown_adults", Recency::current);
    const auto ex = scoreValid(a, child(12));
    CHECK(ex.totalScore == 5);
    CHECK(ex.bandLevel == "no_current_risk");
    CHECK(ex.level == "significant");
    REQUIRE(ex.overrides.size() == 1);
    CHECK(ex.overrides[0].ruleId == "serious_young_or_learning_disability");
    CHECK(ex.overrides[0].minimumLevel == "significant");
    CHECK(ex.overrides[0].reason.find("under 13") != std::string::npos);
  }

  TEST_CASE("the under-13 override stops at 13 and needs the indicator to be current") {
    Answers a = baseline();
    addSerious(a, "pl_cars_unknown_adults", Recency::current);
    CHECK(scoreValid(a, child(13)).level == "no_current_risk");
    Answers older = baseline();
    addSerious(older, "pl_cars_unknown_adults", Recency::sixTo12Months);
    const auto ex = scoreValid(older, child(12));
    CHECK(ex.totalScore == 1);
    CHECK(ex.level == "no_current_risk");
    CHECK(ex.overrides.empty());
  }

  TEST_CASE("a learning disability with a current serious indicator is significant") {
    SUBCASE("known from the child's record") {
      Answers a = baseline();
      addSerious(a, "onl_grooming_images", Recency::current);
      const auto ex = scoreValid(a, child(16, true));
      CHECK(ex.level == "significant");
      CHECK(fired(ex, "serious_young_or_learning_disability"));
    }
    SUBCASE("recorded in the assessment") {
      Answers a = baseline();
      a.values["ctx_learning_needs"] = true;
      addSerious(a, "onl_grooming_images", Recency::current);
      const auto ex = scoreValid(a, child(16));
      CHECK(ex.totalScore == 6);
      CHECK(ex.bandLevel == "at_risk");
      CHECK(ex.level == "significant");
    }
    SUBCASE("but not without a learning disability") {
      Answers a = baseline();
      addSerious(a, "onl_grooming_images", Recency::current);
      CHECK(scoreValid(a, child(16)).level == "no_current_risk");
    }
  }

  TEST_CASE("any disclosure, even withdrawn, is significant") {
    for (const char* status : {"disclosed", "disclosed_withdrawn"}) {
      CAPTURE(status);
      Answers a = baseline();
      a.values["dis_status"] = std::string(status);
      a.values["dis_to_whom"] = std::string("(who and when)");
      const auto ex = scoreValid(a, child(15));
      CHECK(ex.totalScore == 0);
      CHECK(ex.level == "significant");
      REQUIRE(ex.overrides.size() == 1);
      CHECK(ex.overrides[0].ruleId == "disclosure");
      CHECK(ex.overrides[0].reason.find("withdrawn") != std::string::npos);
    }
  }

  TEST_CASE("an override never lowers the level the score gives") {
    Answers a = baseline();
    addVulnerabilities(a, 6);
    addConcerns(a, 5, Recency::current);
    a.values["dis_status"] = std::string("disclosed");
    a.values["dis_to_whom"] = std::string("(who)");
    const auto ex = scoreValid(a, child(15));
    CHECK(ex.bandLevel == "significant");
    CHECK(ex.level == "significant");
  }

  TEST_CASE("the explanation lists each contributing indicator with points and recency") {
    Answers a = baseline();
    addVulnerabilities(a, 2);
    addConcerns(a, 1, Recency::sixTo12Months);
    addSerious(a, "mon_sex_exchange", Recency::within6Months);
    const auto ex = scoreValid(a, child(15));
    REQUIRE(ex.contributions.size() == 4);
    CHECK(ex.contributions[0].indicatorId == "ind_ctx_looked_after");
    CHECK(ex.contributions[0].tier == Tier::vulnerability);
    CHECK_FALSE(ex.contributions[0].recency.has_value());
    CHECK(ex.contributions[0].points == 1);
    CHECK(ex.contributions[2].indicatorId == "ind_mw_missing");
    CHECK(ex.contributions[2].recency == Recency::sixTo12Months);
    CHECK(ex.contributions[2].points == 1);
    CHECK(ex.contributions[3].indicatorId == "ind_mon_sex_exchange");
    CHECK(ex.contributions[3].tier == Tier::serious);
    CHECK(ex.contributions[3].points == 5);
    CHECK(ex.totalScore == 8);
    CHECK(ex.templateHash == cse().contentHash());
    const std::string text = describe(ex);
    CHECK(text.find("score 8 -> band level at_risk") != std::string::npos);
    CHECK(text.find("+ 5 ind_mon_sex_exchange [serious, within_6_months]") != std::string::npos);
    CHECK(text.find("level at_risk (At risk)") != std::string::npos);
    CHECK(text.find("review within 3 months, by 2026-04-15") != std::string::npos);
    // Answer contents never appear in the explanation.
    CHECK(text.find("the child's words") == std::string::npos);
  }

  TEST_CASE("an unrecorded recency is scored as current and said so") {
    Answers a = baseline();
    a.values["rel_controlling_partner"] = true;
    CHECK_FALSE(validateAnswers(cse(), a, child(15)).empty());
    const auto ex = score(cse(), a, child(12));
    CHECK(ex.totalScore == 5);
    CHECK(ex.level == "significant");
    REQUIRE(ex.notes.size() == 1);
    CHECK(ex.notes[0] ==
          "recency of indicator 'ind_rel_controlling_partner' not recorded; scored as current");
  }

  TEST_CASE("protective factors are recorded but never scored") {
    Answers a = baseline();
    addVulnerabilities(a, 3);
    const auto before = scoreValid(a, child(15));
    a.values["pf_trusted_adult"] = true;
    a.values["pf_education"] = true;
    a.values["pf_family_support"] = true;
    a.values["pf_other"] = std::string("(strengths)");
    const auto after = scoreValid(a, child(15));
    CHECK(after.totalScore == before.totalScore);
    CHECK(after.contributions.size() == before.contributions.size());
  }

  TEST_CASE("review is due sooner after a new missing episode or a current serious indicator") {
    SUBCASE("new missing episode") {
      Answers a = baseline();
      a.values["mw_new_episode"] = true;
      const auto ex = scoreValid(a, child(15));
      CHECK(ex.reviewMonths == 1);
      CHECK(ex.reviewDue == ymd(2026, 2, 15));
      REQUIRE(ex.reviewRules.size() == 1);
      CHECK(ex.reviewRules[0].ruleId == "new_missing_episode");
      CHECK(describe(ex).find("review within 1 month, by 2026-02-15") != std::string::npos);
    }
    SUBCASE("current serious indicator") {
      Answers a = baseline();
      addSerious(a, "pl_hotels_parties", Recency::current);
      const auto ex = scoreValid(a, child(15));
      CHECK(ex.reviewMonths == 1);
      REQUIRE(ex.reviewRules.size() == 1);
      CHECK(ex.reviewRules[0].ruleId == "current_serious_indicator");
    }
    SUBCASE("a serious indicator 6-12 months ago keeps the three-month review") {
      Answers a = baseline();
      addSerious(a, "pl_hotels_parties", Recency::sixTo12Months);
      CHECK(scoreValid(a, child(15)).reviewMonths == 3);
    }
    SUBCASE("month ends are clamped") {
      Answers a = baseline();
      a.values["mw_new_episode"] = true;
      AssessmentContext c = child(15);
      c.today = ymd(2026, 1, 31);
      CHECK(scoreValid(a, c).reviewDue == ymd(2026, 2, 28));
      c.today = ymd(2024, 1, 31);
      CHECK(scoreValid(a, c).reviewDue == ymd(2024, 2, 29));
      c.today = ymd(2025, 11, 30);
      CHECK(addMonths(c.today, 3) == ymd(2026, 2, 28));
    }
  }

  TEST_CASE("answers that do not apply or have the wrong type are ignored by scoring") {
    Answers a = baseline();
    a.values["dis_to_whom"] = std::string("(irrelevant)");
    a.values["ctx_looked_after"] = std::string("yes");
    a.values["no_such_question"] = true;
    const auto ex = score(cse(), a, child(15));
    CHECK(ex.totalScore == 0);
    CHECK(ex.notes.size() == 3);
    CHECK(validateAnswers(cse(), a, child(15)).size() == 3);
  }

  TEST_CASE("the same answers always give the same explanation") {
    Answers a = baseline();
    addVulnerabilities(a, 4);
    addConcerns(a, 6, Recency::within6Months);
    addSerious(a, "mw_missing_repeated", Recency::current);
    a.values["mw_new_episode"] = true;
    const std::string first = describe(score(cse(), a, child(12)));
    // Built in the opposite order, from a fresh copy of the template.
    Answers b;
    for (auto it = a.values.rbegin(); it != a.values.rend(); ++it) {
      b.values.emplace(it->first, it->second);
    }
    for (auto it = a.recency.rbegin(); it != a.recency.rend(); ++it) {
      b.recency.emplace(it->first, it->second);
    }
    const Template again = loadTemplate(cseScreeningV1Json());
    for (int i = 0; i < 50; ++i) {
      CHECK(describe(score(again, b, child(12))) == first);
    }
    CHECK(first.find("override serious_young_or_learning_disability") != std::string::npos);
  }

  TEST_CASE("a complete assessment that discloses needs to say to whom") {
    Answers a = baseline();
    a.values["dis_status"] = std::string("disclosed_withdrawn");
    const auto p = validateAnswers(cse(), a, child(15));
    REQUIRE(p.count("dis_to_whom") == 1);
    CHECK(p.at("dis_to_whom").front() == "an answer is required");
    Answers none;
    const auto missing = validateAnswers(cse(), none, child(15));
    CHECK(missing.count("dis_status") == 1);
    CHECK(missing.count("voice_child") == 1);
    CHECK(missing.count("voice_analysis") == 1);
  }
}
