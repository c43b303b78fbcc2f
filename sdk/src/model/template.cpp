// Loading and validating assessment templates. Every check records a problem with
// its JSON pointer path and carries on, so an author sees every problem at once.

#include <outpost/error.hpp>
#include <outpost/template.hpp>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <set>
#include <utility>

namespace outpost::model {

using nlohmann::json;

std::string_view questionTypeName(QuestionType type) noexcept {
  switch (type) {
  case QuestionType::boolean:
    return "bool";
  case QuestionType::singleChoice:
    return "single_choice";
  case QuestionType::multiChoice:
    return "multi_choice";
  case QuestionType::integer:
    return "integer";
  case QuestionType::date:
    return "date";
  case QuestionType::text:
    return "text";
  }
  return "unknown";
}

std::string_view tierName(Tier tier) noexcept {
  switch (tier) {
  case Tier::vulnerability:
    return "vulnerability";
  case Tier::concern:
    return "concern";
  case Tier::serious:
    return "serious";
  }
  return "unknown";
}

std::string_view recencyName(Recency recency) noexcept {
  switch (recency) {
  case Recency::current:
    return "current";
  case Recency::within6Months:
    return "within_6_months";
  case Recency::sixTo12Months:
    return "6_12_months";
  }
  return "unknown";
}

std::string TemplateProblem::toString() const { return path + ": " + message; }

Template::Template(std::shared_ptr<const TemplateDefinition> definition)
    : d_(std::move(definition)) {
  if (!d_) {
    throw Error(Errc::invalid_argument, "a Template needs a definition");
  }
}

const Question* Template::findQuestion(std::string_view questionId) const noexcept {
  for (const auto& s : d_->sections) {
    for (const auto& q : s.questions) {
      if (q.id == questionId) {
        return &q;
      }
    }
  }
  return nullptr;
}

std::optional<std::size_t> Template::levelRank(std::string_view levelId) const noexcept {
  for (std::size_t i = 0; i < d_->levels.size(); ++i) {
    if (d_->levels[i].id == levelId) {
      return i;
    }
  }
  return std::nullopt;
}

namespace {

constexpr std::size_t kMaxIdLength = 64;
constexpr std::size_t kMaxLabelLength = 2000;
constexpr std::int64_t kMaxMonths = 120;

ValueType expressionType(QuestionType type) {
  switch (type) {
  case QuestionType::boolean:
    return ValueType::boolean;
  case QuestionType::singleChoice:
  case QuestionType::text:
    return ValueType::text;
  case QuestionType::multiChoice:
    return ValueType::list;
  case QuestionType::integer:
    return ValueType::integer;
  case QuestionType::date:
    return ValueType::date;
  }
  return ValueType::null;
}

std::optional<QuestionType> parseQuestionType(std::string_view s) {
  for (auto t : {QuestionType::boolean, QuestionType::singleChoice, QuestionType::multiChoice,
                 QuestionType::integer, QuestionType::date, QuestionType::text}) {
    if (questionTypeName(t) == s) {
      return t;
    }
  }
  return std::nullopt;
}

std::optional<Recency> parseRecency(std::string_view s) {
  for (auto r : {Recency::current, Recency::within6Months, Recency::sixTo12Months}) {
    if (recencyName(r) == s) {
      return r;
    }
  }
  return std::nullopt;
}

std::string jsonKind(const json& j) {
  switch (j.type()) {
  case json::value_t::null:
    return "null";
  case json::value_t::boolean:
    return "true/false";
  case json::value_t::number_integer:
  case json::value_t::number_unsigned:
    return "a whole number";
  case json::value_t::number_float:
    return "a decimal number";
  case json::value_t::string:
    return "text";
  case json::value_t::array:
    return "a list";
  case json::value_t::object:
    return "an object";
  default:
    return "an unsupported value";
  }
}

/// Nesting depth of the JSON text, counted before parsing so that a hostile
/// document of a million '[' never reaches the parser.
std::size_t jsonNesting(std::string_view text) {
  std::size_t depth = 0;
  std::size_t maxDepth = 0;
  bool inString = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (inString) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        inString = false;
      }
      continue;
    }
    if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      maxDepth = std::max(maxDepth, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return maxDepth;
}

enum class IdKind : std::uint8_t {
  name,     ///< lowercase letters, digits, '_', starting with a letter
  option,   ///< may also start with a digit ("6_12_months")
  template_ ///< may also contain '-' ("cse-screening")
};

bool isId(std::string_view s, IdKind kind) {
  const bool allowHyphen = kind == IdKind::template_;
  if (s.empty() || s.size() > kMaxIdLength) {
    return false;
  }
  const bool letterFirst = s[0] >= 'a' && s[0] <= 'z';
  const bool digitFirst = s[0] >= '0' && s[0] <= '9';
  if (!letterFirst && !(digitFirst && kind == IdKind::option)) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           (allowHyphen && c == '-');
  });
}

std::string sha256Hex(std::string_view data) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size());
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (const unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 0x0f];
  }
  return out;
}

std::string hashOf(json doc) {
  doc.erase("content_hash");
  // nlohmann's objects keep keys sorted, so dump() is a canonical compact form.
  return "sha256:" + sha256Hex(doc.dump(-1, ' ', false, json::error_handler_t::strict));
}

struct ParsedJson {
  std::optional<json> doc;
  std::string error;
  /// Keys that appear twice in one object. The parser keeps only one of them, so
  /// they would make the content hash ambiguous.
  std::vector<std::string> duplicateKeys;
};

ParsedJson parseJson(std::string_view text) {
  ParsedJson out;
  if (text.size() > kMaxTemplateBytes) {
    out.error = "template too large (" + std::to_string(text.size()) + " bytes; the limit is " +
                std::to_string(kMaxTemplateBytes) + ")";
    return out;
  }
  if (jsonNesting(text) > kMaxJsonDepth) {
    out.error = "JSON nested too deeply (the limit is " + std::to_string(kMaxJsonDepth) + ")";
    return out;
  }
  std::vector<std::set<std::string>> open; // keys seen in each enclosing object
  const json::parser_callback_t noteDuplicates = [&](int /*depth*/, json::parse_event_t event,
                                                     json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open.emplace_back();
    } else if (event == json::parse_event_t::object_end && !open.empty()) {
      open.pop_back();
    } else if (event == json::parse_event_t::key && !open.empty() && parsed.is_string() &&
               !open.back().insert(parsed.get<std::string>()).second) {
      out.duplicateKeys.push_back(parsed.get<std::string>());
    }
    return true;
  };
  try {
    out.doc = json::parse(text.begin(), text.end(), noteDuplicates);
  } catch (const json::parse_error& e) {
    out.error = "not valid JSON at byte " + std::to_string(e.byte);
    return out;
  }
  if (!out.doc->is_object()) {
    out.error = "a template is a JSON object, got " + jsonKind(*out.doc);
    out.doc.reset();
  }
  return out;
}

class Loader {
public:
  struct Outcome {
    std::shared_ptr<const TemplateDefinition> definition; ///< null when there are problems
    std::vector<TemplateProblem> problems;
  };

  Outcome load(std::string_view text) {
    Outcome result;
    ParsedJson parsed = parseJson(text);
    if (!parsed.doc) {
      result.problems.push_back({"", parsed.error});
      return result;
    }
    for (const auto& key : parsed.duplicateKeys) {
      problem("", "the key '" + key.substr(0, kMaxIdLength) +
                      "' appears twice in one object; each key may appear once");
    }
    const json& doc = *parsed.doc;
    auto def = std::make_shared<TemplateDefinition>();
    d_ = def.get();
    loadHeader(doc);
    try {
      def->contentHash = hashOf(doc);
    } catch (const json::exception&) {
      problem("", "the template contains text that is not valid UTF-8");
    }
    loadLevels(doc);
    loadBands(doc);
    loadSections(doc);
    loadIndicators(doc);
    loadOverrides(doc);
    loadReview(doc);
    checkPublication(doc);
    if (problems_.empty()) {
      result.definition = std::move(def);
    }
    result.problems = std::move(problems_);
    return result;
  }

private:
  void problem(std::string path, std::string message) {
    problems_.push_back({std::move(path), std::move(message)});
  }

  void checkKeys(const json& obj, const std::string& path,
                 std::initializer_list<std::string_view> allowed) {
    for (const auto& [key, value] : obj.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        problem(path + "/" + key, "unknown key '" + key + "'");
      }
    }
  }

  /// The member `key` of `obj` if present and of the wanted JSON type; else a problem.
  const json* member(const json& obj, const std::string& path, const char* key, bool required,
                     json::value_t wanted, const char* wantedName) {
    const auto it = obj.find(key);
    const std::string p = path + "/" + key;
    if (it == obj.end()) {
      if (required) {
        problem(p, std::string("missing; it is required"));
      }
      return nullptr;
    }
    const bool isInt = it->is_number_integer();
    if (wanted == json::value_t::number_integer ? !isInt : it->type() != wanted) {
      problem(p, std::string("must be ") + wantedName + ", got " + jsonKind(*it));
      return nullptr;
    }
    return &*it;
  }

  std::optional<std::string> text(const json& obj, const std::string& path, const char* key,
                                  bool required, std::size_t maxLength = kMaxLabelLength) {
    const json* j = member(obj, path, key, required, json::value_t::string, "text");
    if (j == nullptr) {
      return std::nullopt;
    }
    std::string s = j->get<std::string>();
    if (required && s.empty()) {
      problem(path + "/" + key, "must not be empty");
      return std::nullopt;
    }
    if (s.size() > maxLength) {
      problem(path + "/" + key, "too long (the limit is " + std::to_string(maxLength) + " bytes)");
      return std::nullopt;
    }
    return s;
  }

  std::optional<std::string> id(const json& obj, const std::string& path, const char* key = "id",
                                IdKind kind = IdKind::name) {
    const json* j = member(obj, path, key, true, json::value_t::string, "text");
    if (j == nullptr) {
      return std::nullopt;
    }
    std::string s = j->get<std::string>();
    if (!isId(s, kind)) {
      problem(path + "/" + key, "'" + s.substr(0, kMaxIdLength) +
                                    "' is not a valid id (lowercase letters, digits and '_'" +
                                    (kind == IdKind::template_ ? " or '-'" : "") +
                                    (kind == IdKind::option ? "" : ", starting with a letter") +
                                    ", at most 64 characters)");
      return std::nullopt;
    }
    return s;
  }

  std::optional<std::int64_t> integer(const json& obj, const std::string& path, const char* key,
                                      bool required, std::int64_t min, std::int64_t max) {
    const json* j =
        member(obj, path, key, required, json::value_t::number_integer, "a whole number");
    if (j == nullptr) {
      return std::nullopt;
    }
    if (j->is_number_unsigned() && j->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
      problem(path + "/" + key,
              "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return std::nullopt;
    }
    const auto v = j->get<std::int64_t>();
    if (v < min || v > max) {
      problem(path + "/" + key,
              "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return std::nullopt;
    }
    return v;
  }

  const json* array(const json& obj, const std::string& path, const char* key, bool required) {
    return member(obj, path, key, required, json::value_t::array, "a list");
  }

  std::optional<Expression> expression(const json& obj, const std::string& path, const char* key,
                                       const ExpressionScope& scope) {
    const auto src = text(obj, path, key, false, kMaxTemplateBytes); // compile() bounds it
    const std::string p = path + "/" + key;
    if (!src) {
      return std::nullopt;
    }
    auto compiled = Expression::compile(*src, scope);
    if (auto* diags = std::get_if<std::vector<ExpressionDiagnostic>>(&compiled)) {
      for (const auto& d : *diags) {
        problem(p, d.toString());
      }
      return std::nullopt;
    }
    Expression e = std::get<Expression>(std::move(compiled));
    if (e.type() != ValueType::boolean) {
      problem(p, "must give true/false, but gives " + std::string(valueTypeName(e.type())));
      return std::nullopt;
    }
    return e;
  }

  // -------------------------------------------------------------------------

  void loadHeader(const json& doc) {
    checkKeys(doc, "",
              {"format", "id", "version", "title", "status", "content_hash", "description",
               "levels", "bands", "sections", "indicators", "overrides", "review"});
    if (const auto f = integer(doc, "", "format", true, 1, 1000)) {
      if (*f != 1) {
        problem("/format", "format " + std::to_string(*f) +
                               " is not supported by this SDK (it reads format 1)");
      }
    }
    d_->id = id(doc, "", "id", IdKind::template_).value_or("");
    d_->version = integer(doc, "", "version", true, 1, 1'000'000).value_or(0);
    d_->title = text(doc, "", "title", true).value_or("");
    (void)text(doc, "", "description", false, 20000);
    if (const auto s = text(doc, "", "status", true)) {
      if (*s == "published") {
        d_->status = TemplateStatus::published;
      } else if (*s != "draft") {
        problem("/status", "must be 'draft' or 'published', got '" + *s + "'");
      }
    }
  }

  void loadLevels(const json& doc) {
    const json* levels = array(doc, "", "levels", true);
    if (levels == nullptr) {
      return;
    }
    if (levels->empty()) {
      problem("/levels", "at least one level is needed");
    }
    for (std::size_t i = 0; i < levels->size(); ++i) {
      const std::string p = "/levels/" + std::to_string(i);
      const json& l = (*levels)[i];
      if (!l.is_object()) {
        problem(p, "must be an object, got " + jsonKind(l));
        continue;
      }
      checkKeys(l, p, {"id", "label"});
      Level level{id(l, p).value_or(""), text(l, p, "label", true).value_or("")};
      if (!level.id.empty() && std::any_of(d_->levels.begin(), d_->levels.end(),
                                           [&](const Level& x) { return x.id == level.id; })) {
        problem(p + "/id", "duplicate level id '" + level.id + "'");
      }
      d_->levels.push_back(std::move(level));
    }
  }

  std::optional<std::size_t> rankOf(std::string_view levelId) const {
    for (std::size_t i = 0; i < d_->levels.size(); ++i) {
      if (d_->levels[i].id == levelId) {
        return i;
      }
    }
    return std::nullopt;
  }

  void loadBands(const json& doc) {
    const json* bands = array(doc, "", "bands", true);
    if (bands == nullptr) {
      return;
    }
    if (bands->empty()) {
      problem("/bands", "at least one band is needed");
      return;
    }
    // The min the next band must have; -1 once the chain is broken (stop checking).
    std::int64_t expectedMin = 0;
    std::size_t lastRank = 0;
    for (std::size_t i = 0; i < bands->size(); ++i) {
      const std::string p = "/bands/" + std::to_string(i);
      const json& b = (*bands)[i];
      if (!b.is_object()) {
        problem(p, "must be an object, got " + jsonKind(b));
        expectedMin = -1;
        continue;
      }
      checkKeys(b, p, {"min", "max", "level"});
      Band band;
      const auto min = integer(b, p, "min", true, 0, 1'000'000'000);
      band.max = integer(b, p, "max", false, 0, 1'000'000'000);
      band.level = text(b, p, "level", true).value_or("");
      band.min = min.value_or(0);
      if (min && expectedMin >= 0 && *min != expectedMin) {
        problem(p + "/min", "bands must follow on without gaps or overlaps: expected " +
                                std::to_string(expectedMin) + ", got " + std::to_string(*min));
      }
      if (min && band.max && *band.max < *min) {
        problem(p + "/max", "is below min");
      }
      const bool last = i + 1 == bands->size();
      if (!band.max && !last) {
        problem(p + "/max", "only the last band may be open-ended");
      }
      if (band.max && last) {
        problem(p + "/max", "the last band must be open-ended (no max), so every score has a "
                            "level");
      }
      expectedMin = band.max ? *band.max + 1 : -1;
      if (!band.level.empty()) {
        const auto rank = rankOf(band.level);
        if (!rank) {
          problem(p + "/level", "unknown level '" + band.level + "'");
        } else {
          if (*rank < lastRank) {
            problem(p + "/level", "a higher band must not map to a lower level");
          }
          lastRank = *rank;
        }
      }
      d_->bands.push_back(std::move(band));
    }
  }

  // Sections are read in two passes: first every question's id and type (so that
  // expressions may refer forwards), then the expressions.
  void loadSections(const json& doc) {
    const json* sections = array(doc, "", "sections", true);
    if (sections == nullptr) {
      return;
    }
    if (sections->empty()) {
      problem("/sections", "at least one section is needed");
    }
    std::set<std::string, std::less<>> sectionIds;
    std::size_t questionCount = 0;
    for (std::size_t si = 0; si < sections->size(); ++si) {
      const std::string sp = "/sections/" + std::to_string(si);
      const json& s = (*sections)[si];
      Section section;
      if (!s.is_object()) {
        problem(sp, "must be an object, got " + jsonKind(s));
        d_->sections.push_back(std::move(section));
        continue;
      }
      checkKeys(s, sp, {"id", "title", "scored", "relevant", "questions"});
      section.id = id(s, sp).value_or("");
      if (!section.id.empty() && !sectionIds.insert(section.id).second) {
        problem(sp + "/id", "duplicate section id '" + section.id + "'");
      }
      section.title = text(s, sp, "title", true).value_or("");
      if (const json* sc = member(s, sp, "scored", false, json::value_t::boolean, "true/false")) {
        section.scored = sc->get<bool>();
      }
      const json* questions = array(s, sp, "questions", true);
      if (questions != nullptr) {
        for (std::size_t qi = 0; qi < questions->size(); ++qi) {
          const std::string qp = sp + "/questions/" + std::to_string(qi);
          if (++questionCount > kMaxQuestions) {
            problem(qp, "too many questions (the limit is " + std::to_string(kMaxQuestions) + ")");
            break;
          }
          section.questions.push_back(loadQuestionShape((*questions)[qi], qp));
        }
      }
      d_->sections.push_back(std::move(section));
    }
    for (const auto& section : d_->sections) {
      for (const auto& q : section.questions) {
        if (!q.id.empty()) {
          questionScope_.questions.emplace(q.id, expressionType(q.type));
        }
      }
    }
    for (std::size_t si = 0; si < d_->sections.size(); ++si) {
      const json& s = (*sections)[si];
      if (!s.is_object()) {
        continue;
      }
      const std::string sp = "/sections/" + std::to_string(si);
      Section& section = d_->sections[si];
      ExpressionScope relevantScope = questionScope_;
      relevantScope.kind = ExpressionKind::relevant;
      section.relevant = expression(s, sp, "relevant", relevantScope);
      const json* questions =
          s.contains("questions") && s["questions"].is_array() ? &s["questions"] : nullptr;
      for (std::size_t qi = 0; questions != nullptr && qi < section.questions.size(); ++qi) {
        const json& qj = (*questions)[qi];
        if (!qj.is_object()) {
          continue;
        }
        const std::string qp = sp + "/questions/" + std::to_string(qi);
        Question& q = section.questions[qi];
        q.relevant = expression(qj, qp, "relevant", relevantScope);
        ExpressionScope constraintScope = questionScope_;
        constraintScope.kind = ExpressionKind::constraint;
        constraintScope.currentType = expressionType(q.type);
        q.constraint = expression(qj, qp, "constraint", constraintScope);
        if (qj.contains("constraint_message") && !qj.contains("constraint")) {
          problem(qp + "/constraint_message", "given without a constraint");
        }
      }
    }
    orderRelevance();
  }

  Question loadQuestionShape(const json& qj, const std::string& qp) {
    Question q;
    if (!qj.is_object()) {
      problem(qp, "must be an object, got " + jsonKind(qj));
      return q;
    }
    checkKeys(qj, qp,
              {"id", "type", "label", "help", "options", "required", "relevant", "constraint",
               "constraint_message"});
    q.id = id(qj, qp).value_or("");
    if (!q.id.empty() && !questionIds_.insert(q.id).second) {
      problem(qp + "/id", "duplicate question id '" + q.id + "'");
    }
    q.label = text(qj, qp, "label", true).value_or("");
    q.help = text(qj, qp, "help", false).value_or("");
    q.constraintMessage = text(qj, qp, "constraint_message", false).value_or("");
    if (const json* r = member(qj, qp, "required", false, json::value_t::boolean, "true/false")) {
      q.required = r->get<bool>();
    }
    bool typeKnown = false;
    if (const auto t = text(qj, qp, "type", true)) {
      if (const auto qt = parseQuestionType(*t)) {
        q.type = *qt;
        typeKnown = true;
      } else {
        problem(qp + "/type", "unknown question type '" + *t +
                                  "' (use bool, single_choice, multi_choice, integer, date or "
                                  "text)");
      }
    }
    const bool choice = q.type == QuestionType::singleChoice || q.type == QuestionType::multiChoice;
    const json* options = array(qj, qp, "options", typeKnown && choice);
    if (options != nullptr && typeKnown && !choice) {
      problem(qp + "/options", "only choice questions have options");
    } else if (options != nullptr && typeKnown) {
      if (options->empty()) {
        problem(qp + "/options", "a choice question needs at least one option");
      }
      if (options->size() > kMaxOptions) {
        problem(qp + "/options",
                "too many options (the limit is " + std::to_string(kMaxOptions) + ")");
      }
      for (std::size_t oi = 0; oi < options->size() && oi < kMaxOptions; ++oi) {
        const std::string op = qp + "/options/" + std::to_string(oi);
        const json& oj = (*options)[oi];
        if (!oj.is_object()) {
          problem(op, "must be an object, got " + jsonKind(oj));
          continue;
        }
        checkKeys(oj, op, {"id", "label"});
        Option o{id(oj, op, "id", IdKind::option).value_or(""),
                 text(oj, op, "label", true).value_or("")};
        if (!o.id.empty() && std::any_of(q.options.begin(), q.options.end(),
                                         [&](const Option& x) { return x.id == o.id; })) {
          problem(op + "/id", "duplicate option id '" + o.id + "'");
        }
        q.options.push_back(std::move(o));
      }
    }
    return q;
  }

  // Answers of questions that are not relevant read as null, so relevance is worked
  // out in dependency order; a cycle has no such order and is an error.
  void orderRelevance() {
    struct Node {
      std::size_t section;
      std::size_t question;
      std::set<std::string, std::less<>> deps;
    };
    std::map<std::string, Node, std::less<>> nodes;
    for (std::size_t si = 0; si < d_->sections.size(); ++si) {
      const Section& s = d_->sections[si];
      for (std::size_t qi = 0; qi < s.questions.size(); ++qi) {
        const Question& q = s.questions[qi];
        if (q.id.empty() || nodes.contains(q.id)) {
          continue;
        }
        Node n{si, qi, {}};
        if (s.relevant) {
          n.deps.insert(s.relevant->questionsRead().begin(), s.relevant->questionsRead().end());
        }
        if (q.relevant) {
          n.deps.insert(q.relevant->questionsRead().begin(), q.relevant->questionsRead().end());
        }
        nodes.emplace(q.id, std::move(n));
      }
    }
    std::set<std::string, std::less<>> done;
    bool progress = true;
    // Template order within each round keeps the order deterministic.
    while (progress) {
      progress = false;
      for (std::size_t si = 0; si < d_->sections.size(); ++si) {
        for (const auto& q : d_->sections[si].questions) {
          const auto it = nodes.find(q.id);
          if (it == nodes.end() || done.contains(q.id)) {
            continue;
          }
          const bool ready = std::all_of(it->second.deps.begin(), it->second.deps.end(),
                                         [&](const std::string& d) { return done.contains(d); });
          if (ready) {
            done.insert(q.id);
            d_->relevanceOrder.emplace_back(it->second.section, it->second.question);
            progress = true;
          }
        }
      }
    }
    for (const auto& [qid, n] : nodes) {
      if (!done.contains(qid)) {
        std::string waits;
        for (const auto& d : n.deps) {
          if (!done.contains(d)) {
            waits += (waits.empty() ? "'" : ", '") + d + "'";
          }
        }
        problem("/sections/" + std::to_string(n.section) + "/questions/" +
                    std::to_string(n.question) + "/relevant",
                "skip logic goes round in a circle: '" + qid + "' depends on " + waits +
                    ", which depend back on it");
      }
    }
  }

  void loadIndicators(const json& doc) {
    const json* indicators = array(doc, "", "indicators", true);
    if (indicators == nullptr) {
      return;
    }
    if (indicators->size() > kMaxIndicators) {
      problem("/indicators",
              "too many indicators (the limit is " + std::to_string(kMaxIndicators) + ")");
      return;
    }
    for (std::size_t i = 0; i < indicators->size(); ++i) {
      const std::string p = "/indicators/" + std::to_string(i);
      const json& ij = (*indicators)[i];
      if (!ij.is_object()) {
        problem(p, "must be an object, got " + jsonKind(ij));
        continue;
      }
      checkKeys(ij, p, {"id", "tier", "label", "question", "answer", "scores", "recency_question"});
      Indicator ind;
      ind.id = id(ij, p).value_or("");
      if (!ind.id.empty() && !indicatorIds_.insert(ind.id).second) {
        problem(p + "/id", "duplicate indicator id '" + ind.id + "'");
      }
      ind.label = text(ij, p, "label", true).value_or("");
      if (const auto t = text(ij, p, "tier", true)) {
        if (*t == "vulnerability") {
          ind.tier = Tier::vulnerability;
        } else if (*t == "concern") {
          ind.tier = Tier::concern;
        } else if (*t == "serious") {
          ind.tier = Tier::serious;
        } else {
          problem(p + "/tier", "unknown tier '" + *t + "' (use vulnerability, concern or serious)");
        }
      }
      loadIndicatorTrigger(ij, p, ind);
      loadIndicatorScores(ij, p, ind);
      d_->indicators.push_back(std::move(ind));
    }
  }

  const Section* sectionOf(std::string_view questionId) const {
    for (const auto& s : d_->sections) {
      for (const auto& q : s.questions) {
        if (q.id == questionId) {
          return &s;
        }
      }
    }
    return nullptr;
  }

  const Question* questionById(std::string_view questionId) const {
    for (const auto& s : d_->sections) {
      for (const auto& q : s.questions) {
        if (q.id == questionId) {
          return &q;
        }
      }
    }
    return nullptr;
  }

  void loadIndicatorTrigger(const json& ij, const std::string& p, Indicator& ind) {
    const auto qid = text(ij, p, "question", true);
    const auto answerIt = ij.find("answer");
    if (answerIt == ij.end()) {
      problem(p + "/answer", "missing; it is required");
    }
    if (!qid) {
      return;
    }
    ind.question = *qid;
    const Question* q = questionById(*qid);
    if (q == nullptr) {
      problem(p + "/question", "unknown question '" + *qid + "'");
      return;
    }
    if (const Section* s = sectionOf(*qid); s != nullptr && !s->scored) {
      problem(p + "/question",
              "question '" + *qid + "' is in section '" + s->id + "', which is not scored");
    }
    if (answerIt == ij.end()) {
      return;
    }
    switch (q->type) {
    case QuestionType::boolean:
      if (!answerIt->is_boolean()) {
        problem(p + "/answer", "question '" + *qid +
                                   "' is bool, so the answer must be true or "
                                   "false, got " +
                                   jsonKind(*answerIt));
        return;
      }
      ind.answer = answerIt->get<bool>();
      return;
    case QuestionType::singleChoice:
    case QuestionType::multiChoice: {
      if (!answerIt->is_string()) {
        problem(p + "/answer", "question '" + *qid +
                                   "' is a choice, so the answer must be an "
                                   "option id, got " +
                                   jsonKind(*answerIt));
        return;
      }
      auto option = answerIt->get<std::string>();
      if (std::none_of(q->options.begin(), q->options.end(),
                       [&](const Option& o) { return o.id == option; })) {
        problem(p + "/answer", "'" + option.substr(0, kMaxIdLength) +
                                   "' is not an option of question '" + *qid + "'");
      }
      ind.answer = std::move(option);
      return;
    }
    default:
      problem(p + "/question", "question '" + *qid + "' is " +
                                   std::string(questionTypeName(q->type)) +
                                   "; indicators need a bool or choice question");
    }
  }

  void loadIndicatorScores(const json& ij, const std::string& p, Indicator& ind) {
    const json* scores = member(ij, p, "scores", true, json::value_t::object, "an object");
    if (scores != nullptr) {
      if (scores->contains("any")) {
        checkKeys(*scores, p + "/scores", {"any"});
        ind.flatPoints =
            integer(*scores, p + "/scores", "any", true, 0, kMaxIndicatorPoints).value_or(0);
      } else if (scores->empty()) {
        problem(p + "/scores", "give 'any', or points for each of 'current', "
                               "'within_6_months' and '6_12_months'");
      } else {
        checkKeys(*scores, p + "/scores", {"current", "within_6_months", "6_12_months"});
        for (auto r : {Recency::current, Recency::within6Months, Recency::sixTo12Months}) {
          const std::string key(recencyName(r));
          if (const auto v =
                  integer(*scores, p + "/scores", key.c_str(), true, 0, kMaxIndicatorPoints)) {
            ind.pointsByRecency[r] = *v;
          }
        }
        if (ind.pointsByRecency.empty()) {
          // Keep the indicator recency-scored so later checks still apply.
          ind.pointsByRecency[Recency::current] = 0;
        }
      }
    }
    if (const auto rq = text(ij, p, "recency_question", false)) {
      if (scores != nullptr && !ind.usesRecency()) {
        problem(p + "/recency_question", "given, but the scores do not depend on recency");
      }
      const Question* q = questionById(*rq);
      if (q == nullptr) {
        problem(p + "/recency_question", "unknown question '" + *rq + "'");
      } else if (q->type != QuestionType::singleChoice ||
                 std::any_of(q->options.begin(), q->options.end(),
                             [](const Option& o) { return !parseRecency(o.id); })) {
        problem(p + "/recency_question",
                "question '" + *rq +
                    "' must be single_choice with options among 'current', 'within_6_months' "
                    "and '6_12_months'");
      } else {
        ind.recencyQuestion = *rq;
      }
    }
  }

  ExpressionScope ruleScope() const {
    ExpressionScope scope = questionScope_;
    scope.kind = ExpressionKind::rule;
    scope.indicators = indicatorIds_;
    return scope;
  }

  void loadOverrides(const json& doc) {
    const json* overrides = array(doc, "", "overrides", false);
    if (overrides == nullptr) {
      return;
    }
    const ExpressionScope scope = ruleScope();
    std::set<std::string, std::less<>> ids;
    for (std::size_t i = 0; i < overrides->size(); ++i) {
      const std::string p = "/overrides/" + std::to_string(i);
      const json& oj = (*overrides)[i];
      if (!oj.is_object()) {
        problem(p, "must be an object, got " + jsonKind(oj));
        continue;
      }
      checkKeys(oj, p, {"id", "when", "minimum_level", "reason"});
      const auto rid = id(oj, p);
      if (rid && !ids.insert(*rid).second) {
        problem(p + "/id", "duplicate override id '" + *rid + "'");
      }
      if (!oj.contains("when")) {
        problem(p + "/when", "missing; it is required");
      }
      auto when = expression(oj, p, "when", scope);
      const auto level = text(oj, p, "minimum_level", true);
      if (level && !rankOf(*level)) {
        problem(p + "/minimum_level", "unknown level '" + *level + "'");
      }
      const auto reason = text(oj, p, "reason", true);
      if (rid && when && level && reason) {
        d_->overrides.push_back({*rid, std::move(*when), *level, *reason});
      }
    }
  }

  void loadReview(const json& doc) {
    const json* review = member(doc, "", "review", true, json::value_t::object, "an object");
    if (review == nullptr) {
      return;
    }
    checkKeys(*review, "/review", {"default_months", "rules"});
    d_->reviewMonths =
        integer(*review, "/review", "default_months", true, 1, kMaxMonths).value_or(3);
    const json* rules = array(*review, "/review", "rules", false);
    if (rules == nullptr) {
      return;
    }
    const ExpressionScope scope = ruleScope();
    std::set<std::string, std::less<>> ids;
    for (std::size_t i = 0; i < rules->size(); ++i) {
      const std::string p = "/review/rules/" + std::to_string(i);
      const json& rj = (*rules)[i];
      if (!rj.is_object()) {
        problem(p, "must be an object, got " + jsonKind(rj));
        continue;
      }
      checkKeys(rj, p, {"id", "when", "months", "reason"});
      const auto rid = id(rj, p);
      if (rid && !ids.insert(*rid).second) {
        problem(p + "/id", "duplicate review rule id '" + *rid + "'");
      }
      if (!rj.contains("when")) {
        problem(p + "/when", "missing; it is required");
      }
      auto when = expression(rj, p, "when", scope);
      const auto months = integer(rj, p, "months", true, 1, kMaxMonths);
      const auto reason = text(rj, p, "reason", true);
      if (rid && when && months && reason) {
        d_->reviewRules.push_back({*rid, std::move(*when), *months, *reason});
      }
    }
  }

  void checkPublication(const json& doc) {
    const auto recorded = text(doc, "", "content_hash", false);
    if (d_->status != TemplateStatus::published || d_->contentHash.empty()) {
      return;
    }
    if (!recorded) {
      if (!doc.contains("content_hash")) {
        problem("/content_hash", "a published template must record its content hash; the "
                                 "hash of this content is " +
                                     d_->contentHash);
      }
      return;
    }
    if (*recorded != d_->contentHash) {
      problem("/content_hash", "the template was changed after it was published (recorded " +
                                   *recorded + ", content is " + d_->contentHash +
                                   "); publish the change as a new version");
    }
  }

  TemplateDefinition* d_ = nullptr;
  std::vector<TemplateProblem> problems_;
  std::set<std::string, std::less<>> questionIds_;
  std::set<std::string, std::less<>> indicatorIds_;
  ExpressionScope questionScope_;
};

} // namespace

TemplateLoadResult parseTemplate(std::string_view jsonText) {
  Loader loader;
  auto outcome = loader.load(jsonText);
  TemplateLoadResult result;
  if (outcome.definition) {
    result.loaded = Template(std::move(outcome.definition));
  }
  result.problems = std::move(outcome.problems);
  return result;
}

Template loadTemplate(std::string_view jsonText) {
  TemplateLoadResult result = parseTemplate(jsonText);
  if (!result.loaded) {
    std::string message = "the template has " + std::to_string(result.problems.size()) +
                          (result.problems.size() == 1 ? " problem" : " problems");
    for (const auto& p : result.problems) {
      message += "\n" + p.toString();
    }
    throw Error(Errc::invalid_template, message);
  }
  return std::move(*result.loaded);
}

std::string computeContentHash(std::string_view jsonText) {
  ParsedJson parsed = parseJson(jsonText);
  if (!parsed.doc) {
    throw Error(Errc::invalid_template, parsed.error);
  }
  if (!parsed.duplicateKeys.empty()) {
    throw Error(Errc::invalid_template, "the key '" +
                                            parsed.duplicateKeys.front().substr(0, kMaxIdLength) +
                                            "' appears twice in one object");
  }
  try {
    return hashOf(std::move(*parsed.doc));
  } catch (const json::exception&) {
    throw Error(Errc::invalid_template, "the template contains text that is not valid UTF-8");
  }
}

TemplateCatalog TemplateCatalog::withBuiltins() {
  TemplateCatalog catalog;
  catalog.add(loadTemplate(cseScreeningV1Json()));
  return catalog;
}

void TemplateCatalog::add(Template tmpl) {
  auto key = std::make_pair(tmpl.id(), tmpl.version());
  const auto it = templates_.find(key);
  if (it != templates_.end()) {
    if (it->second.contentHash() == tmpl.contentHash()) {
      return;
    }
    throw Error(Errc::already_exists,
                "template '" + tmpl.id() + "' version " + std::to_string(tmpl.version()) +
                    " is already loaded with different content; give the change a new version");
  }
  templates_.emplace(std::move(key), std::move(tmpl));
}

const Template* TemplateCatalog::find(std::string_view id, std::int64_t version) const noexcept {
  for (const auto& [key, tmpl] : templates_) {
    if (key.first == id && key.second == version) {
      return &tmpl;
    }
  }
  return nullptr;
}

const Template* TemplateCatalog::latestPublished(std::string_view id) const noexcept {
  const Template* best = nullptr;
  for (const auto& [key, tmpl] : templates_) {
    if (key.first == id && tmpl.status() == TemplateStatus::published) {
      best = &tmpl; // map order: versions ascending
    }
  }
  return best;
}

} // namespace outpost::model
