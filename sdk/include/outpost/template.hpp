#pragma once
/// \file
/// Assessment templates: loading and validating a JSON template, checking a set of
/// answers against it, and scoring answers into a risk level that explains itself.
/// The engine is pure: no storage, no clock (the caller passes today's date), no
/// global state. docs/templates.md describes the JSON format.
///
/// Thread safety: a `Template` is immutable once loaded; copies share it and may be
/// used from any thread. `TemplateCatalog` is not synchronised.

#include <outpost/export.h>
#include <outpost/expression.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace outpost::model {

/// Bounds on what a template may contain; a template over them does not load.
inline constexpr std::size_t kMaxTemplateBytes = 1024 * 1024;
inline constexpr std::size_t kMaxJsonDepth = 32;
inline constexpr std::size_t kMaxQuestions = 2000;
inline constexpr std::size_t kMaxOptions = 200;
inline constexpr std::size_t kMaxIndicators = 1000;
inline constexpr std::int64_t kMaxIndicatorPoints = 1000;
inline constexpr std::size_t kMaxTextAnswerBytes = 64 * 1024;

enum class QuestionType : std::uint8_t { boolean, singleChoice, multiChoice, integer, date, text };
enum class TemplateStatus : std::uint8_t { draft, published };
enum class Tier : std::uint8_t { vulnerability, concern, serious };
enum class Recency : std::uint8_t { current, within6Months, sixTo12Months };

/// "bool", "single_choice", ... as written in the JSON.
[[nodiscard]] OUTPOST_API std::string_view questionTypeName(QuestionType type) noexcept;
/// "vulnerability", "concern", "serious".
[[nodiscard]] OUTPOST_API std::string_view tierName(Tier tier) noexcept;
/// "current", "within_6_months", "6_12_months".
[[nodiscard]] OUTPOST_API std::string_view recencyName(Recency recency) noexcept;

struct Option {
  std::string id;
  std::string label;
};

struct Question {
  std::string id;
  QuestionType type = QuestionType::boolean;
  std::string label;
  std::string help;
  std::vector<Option> options; ///< choice questions only
  bool required = false;       ///< required when relevant
  std::optional<Expression> relevant;
  std::optional<Expression> constraint;
  std::string constraintMessage;
};

struct Section {
  std::string id;
  std::string title;
  bool scored = true; ///< false: recorded, never used by indicators (e.g. protective factors)
  std::optional<Expression> relevant;
  std::vector<Question> questions;
};

/// A risk indicator: present when `question` is answered with `answer` (true/false
/// for a bool question, an option id for a choice question).
struct Indicator {
  std::string id;
  Tier tier = Tier::vulnerability;
  std::string label;
  std::string question;
  std::variant<bool, std::string> answer;
  /// Points by recency; empty when the indicator scores `flatPoints` regardless.
  std::map<Recency, std::int64_t> pointsByRecency;
  std::int64_t flatPoints = 0;
  /// Where the recency comes from: a single-choice question whose options are
  /// recency names, or (empty) `Answers::recency[id]`.
  std::string recencyQuestion;
  [[nodiscard]] bool usesRecency() const noexcept { return !pointsByRecency.empty(); }
};

struct Level {
  std::string id;
  std::string label;
};

/// Scores from `min` to `max` (inclusive; no max = and above) map to `level`.
struct Band {
  std::int64_t min = 0;
  std::optional<std::int64_t> max;
  std::string level;
};

struct OverrideRule {
  std::string id;
  Expression when;
  std::string minimumLevel;
  std::string reason;
};

struct ReviewRule {
  std::string id;
  Expression when;
  std::int64_t months = 0;
  std::string reason;
};

/// One problem found while loading a template, at a JSON pointer path.
struct TemplateProblem {
  std::string path; ///< e.g. "/sections/2/questions/4/relevant"
  std::string message;
  /// "<path>: <message>".
  [[nodiscard]] OUTPOST_API std::string toString() const;
};

/// Everything a loaded template holds. Immutable once loaded.
struct TemplateDefinition {
  int format = 1;
  std::string id;
  std::int64_t version = 0;
  std::string title;
  TemplateStatus status = TemplateStatus::draft;
  std::string contentHash;   ///< "sha256:<hex>", computed
  std::vector<Level> levels; ///< lowest first
  std::vector<Band> bands;
  std::vector<Section> sections;
  std::vector<Indicator> indicators;
  std::vector<OverrideRule> overrides;
  std::int64_t reviewMonths = 3;
  std::vector<ReviewRule> reviewRules;
  /// (section, question) positions in an order where the questions a `relevant`
  /// expression reads always come before it.
  std::vector<std::pair<std::size_t, std::size_t>> relevanceOrder;
};

struct TemplateLoadResult;

/// Parses and validates a template. Reports every problem with its path rather than
/// stopping at the first. A published template must carry the `content_hash` of its
/// content; a mismatch means it was changed after publication and it does not load.
/// Never throws for bad input.
[[nodiscard]] OUTPOST_API TemplateLoadResult parseTemplate(std::string_view json);

/// A loaded, fully validated template. Cheap to copy (shared, immutable). Only the
/// loader makes one, so every `Template` has passed validation.
class OUTPOST_API Template {
public:
  [[nodiscard]] const TemplateDefinition& definition() const noexcept { return *d_; }
  [[nodiscard]] const std::string& id() const noexcept { return d_->id; }
  [[nodiscard]] std::int64_t version() const noexcept { return d_->version; }
  [[nodiscard]] TemplateStatus status() const noexcept { return d_->status; }
  [[nodiscard]] const std::string& contentHash() const noexcept { return d_->contentHash; }
  /// The question with this id, or nullptr.
  [[nodiscard]] const Question* findQuestion(std::string_view questionId) const noexcept;
  /// The level's position (0 = lowest), or nullopt.
  [[nodiscard]] std::optional<std::size_t> levelRank(std::string_view levelId) const noexcept;

private:
  friend TemplateLoadResult parseTemplate(std::string_view json);
  explicit Template(std::shared_ptr<const TemplateDefinition> definition);
  std::shared_ptr<const TemplateDefinition> d_;
};

/// The outcome of parsing: a template, or every problem found.
struct TemplateLoadResult {
  std::optional<Template> loaded;
  std::vector<TemplateProblem> problems;
};

/// As `parseTemplate`, but throws `Error{Errc::invalid_template}` listing every
/// problem, one per line.
[[nodiscard]] OUTPOST_API Template loadTemplate(std::string_view json);

/// The content hash of a template document: "sha256:" + hex SHA-256 of the JSON
/// with `content_hash` removed, serialised compactly with keys sorted. Throws
/// `Error{Errc::invalid_template}` if the text is not a JSON object.
[[nodiscard]] OUTPOST_API std::string computeContentHash(std::string_view json);

/// The JSON of the template the SDK ships, `cse-screening` version 1.
[[nodiscard]] OUTPOST_API std::string_view cseScreeningV1Json() noexcept;

/// Templates by (id, version). A published (id, version) can only ever hold one
/// content: adding different content under it throws.
class OUTPOST_API TemplateCatalog {
public:
  /// A catalog holding the templates the SDK ships.
  [[nodiscard]] static TemplateCatalog withBuiltins();

  /// Adds a template. Adding the same content again is a no-op. Throws
  /// `Error{Errc::already_exists}` if (id, version) is taken by other content.
  void add(Template tmpl);
  /// The template, or nullptr when the catalog does not have it.
  [[nodiscard]] const Template* find(std::string_view id, std::int64_t version) const noexcept;
  /// The highest published version of `id`, or nullptr.
  [[nodiscard]] const Template* latestPublished(std::string_view id) const noexcept;

private:
  std::map<std::pair<std::string, std::int64_t>, Template, std::less<>> templates_;
};

// ---------------------------------------------------------------------------
// Answers, validation and scoring
// ---------------------------------------------------------------------------

/// An answer: bool, integer, text or single choice (option id), date, or the option
/// ids of a multi-choice question.
using AnswerValue = std::variant<bool, std::int64_t, std::string, Date, std::vector<std::string>>;

struct Answers {
  /// Question id -> answer. A missing entry means "not answered".
  std::map<std::string, AnswerValue, std::less<>> values;
  /// Indicator id -> recency, for indicators that take recency from the answers.
  std::map<std::string, Recency, std::less<>> recency;
};

/// Facts about the child and the day, passed in so that scoring is deterministic.
struct AssessmentContext {
  std::optional<std::int64_t> childAgeYears;
  bool learningDisability = false;
  Date today{};
};

/// Problems by question id (or indicator id, for recency problems). Empty = valid.
using AnswerProblems = std::map<std::string, std::vector<std::string>, std::less<>>;

/// Checks answers: types, options, required-when-relevant, constraints, and that no
/// question that is not relevant has an answer (such answers are rejected here and
/// ignored by `score`). Indicators that are present need a recency.
[[nodiscard]] OUTPOST_API AnswerProblems validateAnswers(const Template& tmpl,
                                                         const Answers& answers,
                                                         const AssessmentContext& context);
/// As above without a context: `today()` and `age()` are null in constraints.
[[nodiscard]] OUTPOST_API AnswerProblems validateAnswers(const Template& tmpl,
                                                         const Answers& answers);

/// Which questions are relevant given the answers so far (for a form to show).
[[nodiscard]] OUTPOST_API std::vector<std::string>
relevantQuestions(const Template& tmpl, const Answers& answers, const AssessmentContext& context);

struct IndicatorContribution {
  std::string indicatorId;
  std::string label;
  Tier tier = Tier::vulnerability;
  std::optional<Recency> recency; ///< nullopt for indicators scored without recency
  std::int64_t points = 0;
};

struct FiredOverride {
  std::string ruleId;
  std::string minimumLevel;
  std::string reason;
};

struct FiredReviewRule {
  std::string ruleId;
  std::int64_t months = 0;
  std::string reason;
};

/// Why a score came out as it did.
struct ScoreExplanation {
  std::string templateId;
  std::int64_t templateVersion = 0;
  std::string templateHash;
  std::int64_t totalScore = 0;
  std::string bandLevel;                            ///< from the score alone
  std::string level;                                ///< max(band level, override minimums)
  std::string levelLabel;                           ///< label of `level`
  std::vector<IndicatorContribution> contributions; ///< in template order
  std::vector<FiredOverride> overrides;             ///< in template order
  std::int64_t reviewMonths = 0;
  Date reviewDue{};
  std::vector<FiredReviewRule> reviewRules;
  /// Assumptions made (e.g. an unrecorded recency taken as current), in order.
  std::vector<std::string> notes;
};

/// Scores answers. Deterministic: the same template, answers and context always give
/// the same explanation. Lenient: answers that `validateAnswers` would reject are
/// ignored (and noted), so a draft can be scored as it is filled in. A present
/// indicator whose recency is not recorded is scored as current (the highest-risk
/// reading) and noted.
[[nodiscard]] OUTPOST_API ScoreExplanation score(const Template& tmpl, const Answers& answers,
                                                 const AssessmentContext& context);

/// A plain-text account of an explanation, one fact per line, for display or logs.
/// Contains ids, labels and numbers only, never answer contents.
[[nodiscard]] OUTPOST_API std::string describe(const ScoreExplanation& explanation);

/// `date` plus `months` calendar months, the day clamped to the month's length.
[[nodiscard]] OUTPOST_API Date addMonths(Date date, std::int64_t months) noexcept;

} // namespace outpost::model
