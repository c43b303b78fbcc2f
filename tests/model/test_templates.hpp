#pragma once
// A small template that exercises every feature, for validation and answer tests.

#include <outpost/template.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace outpost::model::testing {

inline nlohmann::json smallTemplate() {
  return nlohmann::json::parse(R"json({
  "format": 1, "id": "test-tpl", "version": 1, "title": "Test", "status": "draft",
  "levels": [{"id": "low", "label": "Low"}, {"id": "high", "label": "High"}],
  "bands": [{"min": 0, "max": 4, "level": "low"}, {"min": 5, "level": "high"}],
  "sections": [
    {"id": "s1", "title": "First", "questions": [
      {"id": "q_flag", "type": "bool", "label": "Flag?"},
      {"id": "q_age", "type": "integer", "label": "Age", "required": true,
       "constraint": ". >= 0 and . <= 25", "constraint_message": "Age must be 0 to 25."},
      {"id": "q_when", "type": "single_choice", "label": "When?", "relevant": "${q_flag} = true",
       "options": [{"id": "current", "label": "Now"},
                   {"id": "within_6_months", "label": "Within 6 months"},
                   {"id": "6_12_months", "label": "6 to 12 months ago"}]},
      {"id": "q_places", "type": "multi_choice", "label": "Places",
       "options": [{"id": "hotel", "label": "Hotel"}, {"id": "park", "label": "Park"}]},
      {"id": "q_seen", "type": "date", "label": "Last seen", "constraint": ". <= today()"},
      {"id": "q_note", "type": "text", "label": "Note", "required": true,
       "relevant": "count(${q_places}) > 0"}]},
    {"id": "s2", "title": "Strengths", "scored": false, "questions": [
      {"id": "q_strength", "type": "bool", "label": "Strength?"}]}],
  "indicators": [
    {"id": "i_flag", "tier": "serious", "label": "Flag", "question": "q_flag", "answer": true,
     "scores": {"current": 5, "within_6_months": 3, "6_12_months": 1},
     "recency_question": "q_when"},
    {"id": "i_hotel", "tier": "concern", "label": "Hotel", "question": "q_places",
     "answer": "hotel", "scores": {"current": 2, "within_6_months": 2, "6_12_months": 1}},
    {"id": "i_park", "tier": "vulnerability", "label": "Park", "question": "q_places",
     "answer": "park", "scores": {"any": 1}}],
  "overrides": [
    {"id": "o_flag_young", "when": "present('i_flag') and age() < 13", "minimum_level": "high",
     "reason": "Flag in a young child."}],
  "review": {"default_months": 6, "rules": [
    {"id": "r_hotel", "when": "present('i_hotel')", "months": 2, "reason": "Hotel seen."}]}
})json");
}

inline std::vector<std::string> problemStrings(const TemplateLoadResult& r) {
  std::vector<std::string> out;
  for (const auto& p : r.problems) {
    out.push_back(p.toString());
  }
  return out;
}

inline std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l + "\n";
  }
  return out;
}

} // namespace outpost::model::testing
