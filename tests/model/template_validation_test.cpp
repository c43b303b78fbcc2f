#include "test_templates.hpp"

#include <outpost/error.hpp>
#include <outpost/template.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

using namespace outpost::model;
using nlohmann::json;
using outpost::model::testing::joined;
using outpost::model::testing::problemStrings;
using outpost::model::testing::smallTemplate;

namespace {

std::vector<std::string> problemsOf(const json& doc) {
  return problemStrings(parseTemplate(doc.dump()));
}

/// The single problem a template has; fails the test if it has none or several.
std::string onlyProblem(const json& doc) {
  const auto problems = problemsOf(doc);
  INFO(joined(problems));
  REQUIRE(problems.size() == 1);
  return problems.front();
}

bool contains(const std::vector<std::string>& all, const std::string& wanted) {
  return std::find(all.begin(), all.end(), wanted) != all.end();
}

json published(json doc) {
  doc["status"] = "published";
  doc["content_hash"] = computeContentHash(doc.dump());
  return doc;
}

} // namespace

TEST_SUITE("model.template") {
  TEST_CASE("a well-formed template loads with no problems") {
    const auto r = parseTemplate(smallTemplate().dump());
    INFO(joined(problemStrings(r)));
    REQUIRE(r.loaded);
    CHECK(r.loaded->id() == "test-tpl");
    CHECK(r.loaded->version() == 1);
    CHECK(r.loaded->definition().sections.size() == 2);
    CHECK(r.loaded->definition().indicators.size() == 3);
    CHECK(r.loaded->levelRank("high") == 1U);
    CHECK(r.loaded->findQuestion("q_note") != nullptr);
    CHECK(r.loaded->contentHash().rfind("sha256:", 0) == 0);
  }

  TEST_CASE("an unknown question in skip logic is reported at its path and column") {
    json doc = smallTemplate();
    doc["sections"][0]["questions"][2]["relevant"] = "${q_flagg} = true";
    CHECK(onlyProblem(doc) ==
          "/sections/0/questions/2/relevant: unknown question 'q_flagg' at column 1");
  }

  TEST_CASE("expression problems are reported for each kind of expression") {
    SUBCASE("a syntax error in a constraint") {
      json doc = smallTemplate();
      doc["sections"][0]["questions"][1]["constraint"] = ". >= 0 and";
      CHECK(onlyProblem(doc) == "/sections/0/questions/1/constraint: expression ends too early; "
                                "a value is missing at column 11");
    }
    SUBCASE("skip logic that is not true/false") {
      json doc = smallTemplate();
      doc["sections"][0]["questions"][2]["relevant"] = "${q_age} + 1";
      CHECK(onlyProblem(doc) ==
            "/sections/0/questions/2/relevant: must give true/false, but gives number");
    }
    SUBCASE("an indicator function in skip logic") {
      json doc = smallTemplate();
      doc["sections"][1]["relevant"] = "present('i_flag')";
      CHECK(onlyProblem(doc) == "/sections/1/relevant: function 'present' is only allowed in "
                                "override and review rules at column 1");
    }
    SUBCASE("an unknown indicator in an override") {
      json doc = smallTemplate();
      doc["overrides"][0]["when"] = "present('i_flagg')";
      CHECK(onlyProblem(doc) == "/overrides/0/when: unknown indicator 'i_flagg' at column 9");
    }
    SUBCASE("an expression over the length limit") {
      json doc = smallTemplate();
      doc["review"]["rules"][0]["when"] = std::string(5000, '(');
      CHECK(onlyProblem(doc).rfind("/review/rules/0/when: expression too long", 0) == 0);
    }
  }

  TEST_CASE("structural problems are reported with their paths") {
    json doc = smallTemplate();
    SUBCASE("duplicate question id") {
      doc["sections"][1]["questions"][0]["id"] = "q_flag";
      CHECK(onlyProblem(doc) == "/sections/1/questions/0/id: duplicate question id 'q_flag'");
    }
    SUBCASE("unknown question type") {
      doc["sections"][0]["questions"][0]["type"] = "boolean";
      CHECK(onlyProblem(doc).rfind("/sections/0/questions/0/type: unknown question type 'boolean'",
                                   0) == 0);
    }
    SUBCASE("missing label") {
      doc["sections"][0]["questions"][4].erase("label");
      CHECK(onlyProblem(doc) == "/sections/0/questions/4/label: missing; it is required");
    }
    SUBCASE("misspelt key") {
      doc["sections"][0]["questions"][0]["relevnt"] = "true";
      CHECK(onlyProblem(doc) == "/sections/0/questions/0/relevnt: unknown key 'relevnt'");
    }
    SUBCASE("options on a bool question") {
      doc["sections"][0]["questions"][0]["options"] = json::array({{{"id", "x"}, {"label", "X"}}});
      CHECK(onlyProblem(doc) == "/sections/0/questions/0/options: only choice questions have "
                                "options");
    }
    SUBCASE("duplicate option id") {
      doc["sections"][0]["questions"][3]["options"][1]["id"] = "hotel";
      const auto problems = problemsOf(doc);
      INFO(joined(problems));
      CHECK(problems.size() == 2);
      CHECK(
          contains(problems, "/sections/0/questions/3/options/1/id: duplicate option id 'hotel'"));
      // The indicator that used the renamed option is reported too.
      CHECK(contains(problems,
                     "/indicators/2/answer: 'park' is not an option of question 'q_places'"));
    }
    SUBCASE("an id with capitals") {
      doc["sections"][0]["id"] = "First";
      CHECK(onlyProblem(doc).rfind("/sections/0/id: 'First' is not a valid id", 0) == 0);
    }
    SUBCASE("a version that is not a whole number") {
      doc["version"] = 1.5;
      CHECK(onlyProblem(doc) == "/version: must be a whole number, got a decimal number");
    }
    SUBCASE("an unknown status") {
      doc["status"] = "final";
      CHECK(onlyProblem(doc) == "/status: must be 'draft' or 'published', got 'final'");
    }
    SUBCASE("a format this SDK does not read") {
      doc["format"] = 2;
      CHECK(onlyProblem(doc) ==
            "/format: format 2 is not supported by this SDK (it reads format 1)");
    }
  }

  TEST_CASE("bands must cover every score once, in order of level") {
    json doc = smallTemplate();
    SUBCASE("a gap") {
      doc["bands"][1]["min"] = 6;
      CHECK(onlyProblem(doc) == "/bands/1/min: bands must follow on without gaps or overlaps: "
                                "expected 5, got 6");
    }
    SUBCASE("an overlap") {
      doc["bands"][1]["min"] = 4;
      CHECK(onlyProblem(doc) == "/bands/1/min: bands must follow on without gaps or overlaps: "
                                "expected 5, got 4");
    }
    SUBCASE("a closed last band") {
      doc["bands"][1]["max"] = 100;
      CHECK(onlyProblem(doc).rfind("/bands/1/max: the last band must be open-ended", 0) == 0);
    }
    SUBCASE("an unknown level") {
      doc["bands"][1]["level"] = "highest";
      CHECK(onlyProblem(doc) == "/bands/1/level: unknown level 'highest'");
    }
    SUBCASE("a higher band with a lower level") {
      doc["bands"][0]["level"] = "high";
      doc["bands"][1]["level"] = "low";
      CHECK(onlyProblem(doc) == "/bands/1/level: a higher band must not map to a lower level");
    }
  }

  TEST_CASE("indicators must point at an answer that can exist") {
    json doc = smallTemplate();
    SUBCASE("unknown question") {
      doc["indicators"][0]["question"] = "q_nope";
      CHECK(onlyProblem(doc) == "/indicators/0/question: unknown question 'q_nope'");
    }
    SUBCASE("answer that is not an option") {
      doc["indicators"][1]["answer"] = "car";
      CHECK(onlyProblem(doc) ==
            "/indicators/1/answer: 'car' is not an option of question 'q_places'");
    }
    SUBCASE("answer of the wrong type for a bool question") {
      doc["indicators"][0]["answer"] = "yes";
      CHECK(onlyProblem(doc) == "/indicators/0/answer: question 'q_flag' is bool, so the answer "
                                "must be true or false, got text");
    }
    SUBCASE("a question of a type indicators cannot use") {
      doc["indicators"][0]["question"] = "q_age";
      doc["indicators"][0]["answer"] = true;
      CHECK(onlyProblem(doc) == "/indicators/0/question: question 'q_age' is integer; "
                                "indicators need a bool or choice question");
    }
    SUBCASE("a question in a section that is not scored") {
      doc["indicators"][0]["question"] = "q_strength";
      CHECK(onlyProblem(doc) == "/indicators/0/question: question 'q_strength' is in section "
                                "'s2', which is not scored");
    }
    SUBCASE("scores missing a recency") {
      doc["indicators"][1]["scores"].erase("6_12_months");
      CHECK(onlyProblem(doc) == "/indicators/1/scores/6_12_months: missing; it is required");
    }
    SUBCASE("points over the limit") {
      doc["indicators"][2]["scores"]["any"] = 100000;
      CHECK(onlyProblem(doc) == "/indicators/2/scores/any: must be between 0 and 1000");
    }
    SUBCASE("a recency question whose options are not recencies") {
      doc["indicators"][0]["recency_question"] = "q_places";
      CHECK(onlyProblem(doc).rfind("/indicators/0/recency_question: question 'q_places' must be "
                                   "single_choice",
                                   0) == 0);
    }
    SUBCASE("an unknown tier") {
      doc["indicators"][0]["tier"] = "grave";
      CHECK(onlyProblem(doc) ==
            "/indicators/0/tier: unknown tier 'grave' (use vulnerability, concern or serious)");
    }
  }

  TEST_CASE("rules must name known levels and sensible intervals") {
    json doc = smallTemplate();
    SUBCASE("an override to an unknown level") {
      doc["overrides"][0]["minimum_level"] = "severe";
      CHECK(onlyProblem(doc) == "/overrides/0/minimum_level: unknown level 'severe'");
    }
    SUBCASE("an override without a reason") {
      doc["overrides"][0].erase("reason");
      CHECK(onlyProblem(doc) == "/overrides/0/reason: missing; it is required");
    }
    SUBCASE("a review interval of zero months") {
      doc["review"]["rules"][0]["months"] = 0;
      CHECK(onlyProblem(doc) == "/review/rules/0/months: must be between 1 and 120");
    }
  }

  TEST_CASE("skip logic that goes round in a circle is rejected") {
    json doc = smallTemplate();
    doc["sections"][0]["questions"][0]["relevant"] = "${q_when} = 'current'";
    const auto problems = problemsOf(doc);
    INFO(joined(problems));
    REQUIRE(problems.size() == 2);
    CHECK(contains(problems, "/sections/0/questions/0/relevant: skip logic goes round in a "
                             "circle: 'q_flag' depends on 'q_when', which depend back on it"));
    CHECK(contains(problems, "/sections/0/questions/2/relevant: skip logic goes round in a "
                             "circle: 'q_when' depends on 'q_flag', which depend back on it"));
  }

  TEST_CASE("every problem in a template is reported together, not just the first") {
    json doc = smallTemplate();
    doc["title"] = "";
    doc["sections"][0]["questions"][2]["relevant"] = "${q_flagg} = true";
    doc["indicators"][1]["answer"] = "car";
    doc["bands"][1]["level"] = "highest";
    doc["review"]["default_months"] = 0;
    const auto problems = problemsOf(doc);
    INFO(joined(problems));
    CHECK(problems.size() == 5);
    CHECK(contains(problems, "/title: must not be empty"));
    CHECK(contains(problems,
                   "/sections/0/questions/2/relevant: unknown question 'q_flagg' at column 1"));
    CHECK(
        contains(problems, "/indicators/1/answer: 'car' is not an option of question 'q_places'"));
    CHECK(contains(problems, "/bands/1/level: unknown level 'highest'"));
    CHECK(contains(problems, "/review/default_months: must be between 1 and 120"));
  }

  TEST_CASE("loadTemplate throws invalid_template listing every problem") {
    json doc = smallTemplate();
    doc["title"] = "";
    doc["bands"][1]["level"] = "highest";
    try {
      (void)loadTemplate(doc.dump());
      FAIL("loaded a broken template");
    } catch (const outpost::Error& e) {
      CHECK(e.code() == outpost::Errc::invalid_template);
      CHECK(e.message() == "the template has 2 problems\n/title: must not be empty\n"
                           "/bands/1/level: unknown level 'highest'");
    }
  }

  TEST_CASE("text that is not a template object is rejected without crashing") {
    CHECK(joined(problemStrings(parseTemplate("{\"id\": "))) == ": not valid JSON at byte 8\n");
    CHECK(joined(problemStrings(parseTemplate("[1, 2]"))) ==
          ": a template is a JSON object, got a list\n");
    CHECK(joined(problemStrings(parseTemplate(std::string(100000, '[')))) ==
          ": JSON nested too deeply (the limit is 32)\n");
    CHECK(joined(problemStrings(parseTemplate(std::string(2 * 1024 * 1024, ' ')))) ==
          ": template too large (2097152 bytes; the limit is 1048576)\n");
    CHECK(joined(problemStrings(parseTemplate(std::string("\x01\xff\x00garbage", 10)))) ==
          ": not valid JSON at byte 1\n");
    CHECK(problemsOf(json::object()).size() >= 8);
  }

  TEST_CASE("a key given twice in one object is an error, not silently dropped") {
    std::string text = smallTemplate().dump();
    const std::string title = "\"title\":\"Test\"";
    REQUIRE(text.find(title) != std::string::npos);
    text.replace(text.find(title), title.size(), title + ",\"title\":\"Other\"");
    const auto problems = problemStrings(parseTemplate(text));
    REQUIRE(problems.size() == 1);
    CHECK(problems[0] == ": the key 'title' appears twice in one object; each key may appear once");
    CHECK_THROWS_AS((void)computeContentHash(text), outpost::Error);
    // The same key in different objects is fine.
    CHECK(parseTemplate(smallTemplate().dump()).problems.empty());
  }

  TEST_CASE("a published template loads only with the hash of its content") {
    const json doc = published(smallTemplate());
    const auto ok = parseTemplate(doc.dump());
    INFO(joined(problemStrings(ok)));
    REQUIRE(ok.loaded);
    CHECK(ok.loaded->status() == TemplateStatus::published);
    CHECK(ok.loaded->contentHash() == doc["content_hash"]);

    json changed = doc;
    changed["sections"][0]["questions"][0]["label"] = "Flag (reworded)?";
    const auto problems = problemsOf(changed);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].rfind("/content_hash: the template was changed after it was published "
                            "(recorded " +
                                doc["content_hash"].get<std::string>(),
                            0) == 0);
    CHECK(problems[0].find("publish the change as a new version") != std::string::npos);

    json unhashed = doc;
    unhashed.erase("content_hash");
    const auto missing = problemsOf(unhashed);
    REQUIRE(missing.size() == 1);
    CHECK(missing[0] == "/content_hash: a published template must record its content hash; the "
                        "hash of this content is " +
                            doc["content_hash"].get<std::string>());
  }

  TEST_CASE("the content hash ignores layout and key order but not content") {
    const json doc = smallTemplate();
    const std::string compact = doc.dump();
    const std::string pretty = doc.dump(4);
    CHECK(computeContentHash(compact) == computeContentHash(pretty));
    json reordered = json::parse(R"({"version": 1, "format": 1})");
    json sameReordered = json::parse(R"({"format": 1, "version": 1})");
    CHECK(computeContentHash(reordered.dump()) == computeContentHash(sameReordered.dump()));
    json other = doc;
    other["levels"][1]["label"] = "Higher";
    CHECK(computeContentHash(other.dump()) != computeContentHash(compact));
    json withHash = doc;
    withHash["content_hash"] = "sha256:whatever";
    CHECK(computeContentHash(withHash.dump()) == computeContentHash(compact));
  }

  TEST_CASE("the catalog keeps one content per published id and version") {
    TemplateCatalog catalog;
    const Template v1 = loadTemplate(published(smallTemplate()).dump());
    catalog.add(v1);
    catalog.add(v1); // the same content again is fine
    json v2doc = smallTemplate();
    v2doc["version"] = 2;
    catalog.add(loadTemplate(published(v2doc).dump()));
    json v3draft = smallTemplate();
    v3draft["version"] = 3;
    catalog.add(loadTemplate(v3draft.dump()));

    REQUIRE(catalog.find("test-tpl", 1) != nullptr);
    CHECK(catalog.find("test-tpl", 1)->contentHash() == v1.contentHash());
    CHECK(catalog.find("test-tpl", 9) == nullptr);
    CHECK(catalog.find("other", 1) == nullptr);
    REQUIRE(catalog.latestPublished("test-tpl") != nullptr);
    CHECK(catalog.latestPublished("test-tpl")->version() == 2);

    json changed = smallTemplate();
    changed["title"] = "Changed";
    try {
      catalog.add(loadTemplate(published(changed).dump()));
      FAIL("accepted different content under a published id and version");
    } catch (const outpost::Error& e) {
      CHECK(e.code() == outpost::Errc::already_exists);
    }
    CHECK(catalog.find("test-tpl", 1)->contentHash() == v1.contentHash());
  }

  TEST_CASE("the SDK's own template is in the built-in catalog") {
    const TemplateCatalog catalog = TemplateCatalog::withBuiltins();
    const Template* cse = catalog.find("cse-screening", 1);
    REQUIRE(cse != nullptr);
    CHECK(cse->status() == TemplateStatus::published);
    CHECK(cse->contentHash() == computeContentHash(cseScreeningV1Json()));
  }
}
