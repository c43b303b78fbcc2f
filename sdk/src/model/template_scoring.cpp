// Answer validation and scoring against a loaded template. Pure functions of
// (template, answers, context): no clock, no storage, no randomness.

#include <outpost/error.hpp>
#include <outpost/template.hpp>

#include <algorithm>
#include <set>

namespace outpost::model {

Date addMonths(Date date, std::int64_t months) noexcept {
  using namespace std::chrono;
  const auto clamped = std::clamp<std::int64_t>(months, -12000, 12000);
  const year_month ym =
      year_month{date.year(), date.month()} + std::chrono::months{static_cast<int>(clamped)};
  const day last = year_month_day_last{ym.year(), month_day_last{ym.month()}}.day();
  return year_month_day{ym.year(), ym.month(), std::min(date.day(), last)};
}

namespace {

std::string_view answerTypeName(const AnswerValue& v) {
  switch (v.index()) {
  case 0:
    return "true/false";
  case 1:
    return "a number";
  case 2:
    return "text";
  case 3:
    return "a date";
  default:
    return "a list of options";
  }
}

std::string_view expectedName(QuestionType t) {
  switch (t) {
  case QuestionType::boolean:
    return "true/false";
  case QuestionType::integer:
    return "a number";
  case QuestionType::text:
    return "text";
  case QuestionType::singleChoice:
    return "one option id";
  case QuestionType::date:
    return "a date";
  case QuestionType::multiChoice:
    return "a list of option ids";
  }
  return "unknown";
}

bool hasOption(const Question& q, std::string_view id) {
  return std::any_of(q.options.begin(), q.options.end(),
                     [&](const Option& o) { return o.id == id; });
}

/// Why an answer cannot be used for this question, or empty when it can. Checks
/// type, options and bounds; not the constraint.
std::string shapeProblem(const Question& q, const AnswerValue& v) {
  const bool typeOk = [&] {
    switch (q.type) {
    case QuestionType::boolean:
      return std::holds_alternative<bool>(v);
    case QuestionType::integer:
      return std::holds_alternative<std::int64_t>(v);
    case QuestionType::text:
    case QuestionType::singleChoice:
      return std::holds_alternative<std::string>(v);
    case QuestionType::date:
      return std::holds_alternative<Date>(v);
    case QuestionType::multiChoice:
      return std::holds_alternative<std::vector<std::string>>(v);
    }
    return false;
  }();
  if (!typeOk) {
    return "expects " + std::string(expectedName(q.type)) + ", got " +
           std::string(answerTypeName(v));
  }
  if (q.type == QuestionType::text && std::get<std::string>(v).size() > kMaxTextAnswerBytes) {
    return "the text is too long (the limit is " + std::to_string(kMaxTextAnswerBytes) + " bytes)";
  }
  if (q.type == QuestionType::date && !std::get<Date>(v).ok()) {
    return "not a valid date";
  }
  if (q.type == QuestionType::singleChoice && !hasOption(q, std::get<std::string>(v))) {
    return "the answer is not one of the question's options";
  }
  if (q.type == QuestionType::multiChoice) {
    const auto& list = std::get<std::vector<std::string>>(v);
    std::set<std::string_view> seen;
    for (const auto& item : list) {
      if (!hasOption(q, item)) {
        return "an answer is not one of the question's options";
      }
      if (!seen.insert(item).second) {
        return "an option is selected twice";
      }
    }
  }
  return {};
}

ExprValue toExpr(const AnswerValue& v) {
  return std::visit([](const auto& x) -> ExprValue { return x; }, v);
}

struct IndicatorState {
  bool present = false;
  std::optional<Recency> recency; ///< effective recency for recency-scored indicators
  bool recencyAssumed = false;    ///< not recorded; taken as current
};

/// The answers as expressions see them: answers of questions that do not apply,
/// or that have the wrong shape, read as null.
class AnswerEnvironment final : public ExpressionEnvironment {
public:
  AnswerEnvironment(const Template& tmpl, const Answers& answers, const AssessmentContext* ctx)
      : tmpl_(tmpl), answers_(answers), ctx_(ctx) {
    for (const auto& s : tmpl.definition().sections) {
      for (const auto& q : s.questions) {
        questions_.emplace(q.id, &q);
      }
    }
  }

  std::vector<std::string> notes;

  void computeRelevance() {
    const auto& def = tmpl_.definition();
    for (const auto& [si, qi] : def.relevanceOrder) {
      const Section& s = def.sections[si];
      const Question& q = s.questions[qi];
      bool relevant = true;
      for (const auto* e :
           {s.relevant ? &*s.relevant : nullptr, q.relevant ? &*q.relevant : nullptr}) {
        if (e == nullptr || !relevant) {
          continue;
        }
        const ExprValue v = e->evaluate(*this);
        if (const auto* err = std::get_if<EvaluationError>(&v)) {
          // Asking one question too many is safer than skipping one.
          notes.push_back("skip logic of '" + q.id + "' could not be evaluated (" + err->message +
                          "); the question is treated as applying");
          continue;
        }
        relevant = isTrue(v);
      }
      relevance_[q.id] = relevant;
    }
  }

  [[nodiscard]] bool relevant(std::string_view questionId) const {
    const auto it = relevance_.find(questionId);
    return it != relevance_.end() && it->second;
  }

  /// The answer if the question applies and the answer has the right shape.
  [[nodiscard]] const AnswerValue* usable(std::string_view questionId) const {
    const auto q = questions_.find(questionId);
    const auto a = answers_.values.find(questionId);
    if (q == questions_.end() || a == answers_.values.end() || !relevant(questionId) ||
        !shapeProblem(*q->second, a->second).empty()) {
      return nullptr;
    }
    return &a->second;
  }

  void computeIndicators() {
    for (const auto& ind : tmpl_.definition().indicators) {
      IndicatorState st;
      const AnswerValue* a = usable(ind.question);
      if (a != nullptr) {
        if (const auto* want = std::get_if<bool>(&ind.answer)) {
          st.present = std::get<bool>(*a) == *want;
        } else {
          const auto& option = std::get<std::string>(ind.answer);
          if (const auto* one = std::get_if<std::string>(a)) {
            st.present = *one == option;
          } else if (const auto* many = std::get_if<std::vector<std::string>>(a)) {
            st.present = std::find(many->begin(), many->end(), option) != many->end();
          }
        }
      }
      if (st.present && ind.usesRecency()) {
        st.recency = recordedRecency(ind);
        if (!st.recency) {
          st.recency = Recency::current;
          st.recencyAssumed = true;
        }
      }
      indicators_.emplace(ind.id, st);
    }
  }

  [[nodiscard]] std::optional<Recency> recordedRecency(const Indicator& ind) const {
    if (!ind.recencyQuestion.empty()) {
      if (const AnswerValue* r = usable(ind.recencyQuestion)) {
        const auto& id = std::get<std::string>(*r);
        for (auto rec : {Recency::current, Recency::within6Months, Recency::sixTo12Months}) {
          if (recencyName(rec) == id) {
            return rec;
          }
        }
      }
      return std::nullopt;
    }
    const auto it = answers_.recency.find(ind.id);
    if (it == answers_.recency.end()) {
      return std::nullopt;
    }
    return it->second;
  }

  [[nodiscard]] const IndicatorState& indicator(std::string_view id) const {
    static const IndicatorState kAbsent{};
    const auto it = indicators_.find(id);
    return it == indicators_.end() ? kAbsent : it->second;
  }

  void setCurrent(const AnswerValue* v) { current_ = v; }

  // ExpressionEnvironment
  [[nodiscard]] ExprValue answer(std::string_view questionId) const override {
    const AnswerValue* a = usable(questionId);
    return a == nullptr ? ExprValue{} : toExpr(*a);
  }
  [[nodiscard]] ExprValue current() const override {
    return current_ == nullptr ? ExprValue{} : toExpr(*current_);
  }
  [[nodiscard]] std::optional<Date> today() const override {
    return ctx_ == nullptr ? std::nullopt : std::optional<Date>(ctx_->today);
  }
  [[nodiscard]] std::optional<std::int64_t> childAge() const override {
    return ctx_ == nullptr ? std::nullopt : ctx_->childAgeYears;
  }
  [[nodiscard]] bool learningDisability() const override {
    return ctx_ != nullptr && ctx_->learningDisability;
  }
  [[nodiscard]] bool indicatorPresent(std::string_view id) const override {
    return indicator(id).present;
  }
  [[nodiscard]] std::string indicatorRecency(std::string_view id) const override {
    const auto& st = indicator(id);
    return st.present && st.recency ? std::string(recencyName(*st.recency)) : std::string{};
  }
  [[nodiscard]] std::int64_t countIndicators(std::string_view tier,
                                             std::string_view recency) const override {
    std::int64_t n = 0;
    for (const auto& ind : tmpl_.definition().indicators) {
      const auto& st = indicator(ind.id);
      if (!st.present || tierName(ind.tier) != tier) {
        continue;
      }
      if (recency.empty() || (st.recency && recencyName(*st.recency) == recency)) {
        ++n;
      }
    }
    return n;
  }

private:
  const Template& tmpl_;
  const Answers& answers_;
  const AssessmentContext* ctx_;
  const AnswerValue* current_ = nullptr;
  std::map<std::string, const Question*, std::less<>> questions_;
  std::map<std::string, bool, std::less<>> relevance_;
  std::map<std::string, IndicatorState, std::less<>> indicators_;
};

AnswerProblems validate(const Template& tmpl, const Answers& answers,
                        const AssessmentContext* ctx) {
  AnswerProblems problems;
  AnswerEnvironment env(tmpl, answers, ctx);
  env.computeRelevance();
  const auto& def = tmpl.definition();
  for (const auto& [qid, value] : answers.values) {
    if (tmpl.findQuestion(qid) == nullptr) {
      problems[qid].push_back("there is no such question in template '" + def.id + "' version " +
                              std::to_string(def.version));
    }
  }
  for (const auto& s : def.sections) {
    for (const auto& q : s.questions) {
      const auto it = answers.values.find(q.id);
      const bool relevant = env.relevant(q.id);
      if (it == answers.values.end()) {
        if (relevant && q.required) {
          problems[q.id].push_back("an answer is required");
        }
        continue;
      }
      if (!relevant) {
        problems[q.id].push_back(
            "answered, but the question does not apply to these answers; remove the answer");
        continue;
      }
      if (auto shape = shapeProblem(q, it->second); !shape.empty()) {
        problems[q.id].push_back(std::move(shape));
        continue;
      }
      if (!q.constraint) {
        continue;
      }
      env.setCurrent(&it->second);
      const ExprValue v = q.constraint->evaluate(env);
      env.setCurrent(nullptr);
      if (const auto* err = std::get_if<EvaluationError>(&v)) {
        problems[q.id].push_back("the answer could not be checked: " + err->message);
      } else if (std::holds_alternative<bool>(v) && !std::get<bool>(v)) {
        problems[q.id].push_back(q.constraintMessage.empty()
                                     ? "the answer is not allowed by the question's constraint"
                                     : q.constraintMessage);
      }
    }
  }
  env.computeIndicators();
  for (const auto& ind : def.indicators) {
    if (!env.indicator(ind.id).present || !ind.usesRecency() ||
        env.recordedRecency(ind).has_value()) {
      continue;
    }
    if (!ind.recencyQuestion.empty()) {
      // An answer that is there but wrong is already reported against the question.
      if (!answers.values.contains(ind.recencyQuestion)) {
        problems[ind.recencyQuestion].push_back("needed because indicator '" + ind.id +
                                                "' is present");
      }
    } else {
      problems[ind.id].push_back("the recency of this indicator is needed because it is "
                                 "present");
    }
  }
  for (const auto& entry : answers.recency) {
    const std::string& iid = entry.first;
    const auto ind = std::find_if(def.indicators.begin(), def.indicators.end(),
                                  [&](const Indicator& i) { return i.id == iid; });
    if (ind == def.indicators.end() || !ind->usesRecency() || !ind->recencyQuestion.empty()) {
      problems[iid].push_back(
          "a recency was given, but this is not an indicator that takes its recency from the "
          "answers");
    }
  }
  return problems;
}

} // namespace

AnswerProblems validateAnswers(const Template& tmpl, const Answers& answers,
                               const AssessmentContext& context) {
  return validate(tmpl, answers, &context);
}

AnswerProblems validateAnswers(const Template& tmpl, const Answers& answers) {
  return validate(tmpl, answers, nullptr);
}

std::vector<std::string> relevantQuestions(const Template& tmpl, const Answers& answers,
                                           const AssessmentContext& context) {
  AnswerEnvironment env(tmpl, answers, &context);
  env.computeRelevance();
  std::vector<std::string> out;
  for (const auto& s : tmpl.definition().sections) {
    for (const auto& q : s.questions) {
      if (env.relevant(q.id)) {
        out.push_back(q.id);
      }
    }
  }
  return out;
}

ScoreExplanation score(const Template& tmpl, const Answers& answers,
                       const AssessmentContext& context) {
  const auto& def = tmpl.definition();
  ScoreExplanation ex;
  ex.templateId = def.id;
  ex.templateVersion = def.version;
  ex.templateHash = def.contentHash;

  AnswerEnvironment env(tmpl, answers, &context);
  env.computeRelevance();
  for (const auto& [qid, value] : answers.values) {
    const Question* q = tmpl.findQuestion(qid);
    if (q == nullptr) {
      ex.notes.push_back("answer to unknown question '" + qid + "' ignored");
    } else if (!env.relevant(qid)) {
      ex.notes.push_back("answer to '" + qid + "' ignored: the question does not apply");
    } else if (auto shape = shapeProblem(*q, value); !shape.empty()) {
      ex.notes.push_back("answer to '" + qid + "' ignored: " + shape);
    }
  }
  env.computeIndicators();

  for (const auto& ind : def.indicators) {
    const auto& st = env.indicator(ind.id);
    if (!st.present) {
      continue;
    }
    IndicatorContribution c{ind.id, ind.label, ind.tier, st.recency, ind.flatPoints};
    if (st.recency) {
      c.points = ind.pointsByRecency.at(*st.recency);
      if (st.recencyAssumed) {
        ex.notes.push_back("recency of indicator '" + ind.id + "' not recorded; scored as current");
      }
    }
    // Points are bounded at load (<= kMaxIndicatorPoints x kMaxIndicators), so the
    // sum cannot overflow.
    ex.totalScore += c.points;
    ex.contributions.push_back(std::move(c));
  }

  std::size_t rank = 0;
  for (const auto& band : def.bands) {
    if (ex.totalScore >= band.min && (!band.max || ex.totalScore <= *band.max)) {
      ex.bandLevel = band.level;
      rank = tmpl.levelRank(band.level).value_or(0);
      break;
    }
  }
  if (ex.bandLevel.empty()) {
    // Loading guarantees bands from 0 upwards; scores are never negative.
    throw Error(Errc::internal, "no band covers score " + std::to_string(ex.totalScore));
  }

  for (const auto& rule : def.overrides) {
    const ExprValue v = rule.when.evaluate(env);
    if (const auto* err = std::get_if<EvaluationError>(&v)) {
      ex.notes.push_back("override '" + rule.id + "' could not be evaluated: " + err->message);
      continue;
    }
    if (!isTrue(v)) {
      continue;
    }
    ex.overrides.push_back({rule.id, rule.minimumLevel, rule.reason});
    rank = std::max(rank, tmpl.levelRank(rule.minimumLevel).value_or(0));
  }
  ex.level = def.levels[rank].id;
  ex.levelLabel = def.levels[rank].label;

  ex.reviewMonths = def.reviewMonths;
  for (const auto& rule : def.reviewRules) {
    const ExprValue v = rule.when.evaluate(env);
    if (const auto* err = std::get_if<EvaluationError>(&v)) {
      ex.notes.push_back("review rule '" + rule.id + "' could not be evaluated: " + err->message);
      continue;
    }
    if (!isTrue(v)) {
      continue;
    }
    ex.reviewRules.push_back({rule.id, rule.months, rule.reason});
    ex.reviewMonths = std::min(ex.reviewMonths, rule.months);
  }
  ex.reviewDue = addMonths(context.today, ex.reviewMonths);
  ex.notes.insert(ex.notes.end(), env.notes.begin(), env.notes.end());
  return ex;
}

std::string describe(const ScoreExplanation& ex) {
  std::string out = "template " + ex.templateId + " v" + std::to_string(ex.templateVersion) + " (" +
                    ex.templateHash + ")\n";
  out += "score " + std::to_string(ex.totalScore) + " -> band level " + ex.bandLevel + "\n";
  for (const auto& c : ex.contributions) {
    out += "  + " + std::to_string(c.points) + " " + c.indicatorId + " [" +
           std::string(tierName(c.tier)) +
           (c.recency ? ", " + std::string(recencyName(*c.recency)) : std::string{}) + "]\n";
  }
  for (const auto& o : ex.overrides) {
    out += "override " + o.ruleId + " -> at least " + o.minimumLevel + ": " + o.reason + "\n";
  }
  out += "level " + ex.level + " (" + ex.levelLabel + ")\n";
  const auto months = [](std::int64_t n) {
    return std::to_string(n) + (n == 1 ? " month" : " months");
  };
  out += "review within " + months(ex.reviewMonths) + ", by " + formatDate(ex.reviewDue) + "\n";
  for (const auto& r : ex.reviewRules) {
    out += "  review rule " + r.ruleId + " (" + months(r.months) + "): " + r.reason + "\n";
  }
  for (const auto& n : ex.notes) {
    out += "note: " + n + "\n";
  }
  return out;
}

} // namespace outpost::model
