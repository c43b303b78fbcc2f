// Assessments against a template: start (pinned to a template version), answer
// (each answer checked against the template as it is saved), walk through the
// questions at a terminal (skip logic applied), submit (scored, explained, locked)
// and show.

#include "commands.hpp"
#include "input.hpp"

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <set>

namespace outpost::field {

namespace {

struct AssessmentOptions {
  std::string id;
  std::string child;
  std::string templateId = "cse-screening";
  std::int64_t version = 0;
  std::vector<std::string> participants;
  std::vector<std::string> answers;   // QUESTION=VALUE
  std::vector<std::string> recencies; // QUESTION_OR_INDICATOR=RECENCY
  std::string level;
  std::string reason;
  std::string supervisor;
  std::string supervisorSignedAt;
  std::string childView;
  std::string carerView;
  std::string analysis;
  std::vector<std::string> actions;
  std::string localAuthority;
  std::string policeForceArea;
};

/// An assessment as loaded for answering: its record, template and context.
struct Loaded {
  model::Record record;
  const model::Template* tmpl = nullptr;
  model::Answers answers;
  model::AssessmentContext context;
};

model::Date today(std::int64_t nowMs) {
  return model::Date{std::chrono::floor<std::chrono::days>(
      std::chrono::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(nowMs)))};
}

/// The facts scoring needs, from the child's record and the clock.
model::AssessmentContext contextFor(Workspace& ws, const sync::Uuid& child) {
  model::AssessmentContext ctx;
  ctx.today = today(ws.clock().unixMillis());
  const auto c = ws.records().get(child);
  if (!c) {
    return ctx;
  }
  ctx.learningDisability = c->get("learning_disability") == sync::Value{true};
  if (const auto dob = model::parseDate(c->text("date_of_birth"))) {
    const model::Date& t = ctx.today;
    std::int64_t years = static_cast<int>(t.year()) - static_cast<int>(dob->year());
    if (t.month() < dob->month() || (t.month() == dob->month() && t.day() < dob->day())) {
      --years;
    }
    ctx.childAgeYears = years;
  } else {
    ctx.childAgeYears = c->integer("estimated_age");
  }
  return ctx;
}

Loaded load(Workspace& ws, const sync::Uuid& id) {
  Loaded l;
  l.record = ws.requireRecord(id, sg::kAssessmentType, "assessment");
  l.tmpl = &ws.templateOf(l.record.text("template_id"),
                          l.record.integer("template_version").value_or(0));
  if (const std::string stored = l.record.text("answers"); !stored.empty()) {
    l.answers = sg::answersFromJson(stored);
  }
  l.context = contextFor(ws, sync::Uuid::parse(l.record.text("child")).value_or(sync::Uuid{}));
  return l;
}

void requireDraft(const Loaded& l) {
  if (l.record.text("status") != "draft") {
    throw Failure(Errc::validation, "assessment " + l.record.id.toString() + " is " +
                                        l.record.text("status") +
                                        ": its answers are locked; start a new assessment to "
                                        "record new answers");
  }
}

std::set<std::string> relevantSet(const Loaded& l, const model::Answers& answers) {
  const auto list = model::relevantQuestions(*l.tmpl, answers, l.context);
  return {list.begin(), list.end()};
}

/// Answers to questions that no longer apply (skip logic) are removed; returns them.
std::vector<std::string> dropIrrelevant(const Loaded& l, model::Answers& answers) {
  std::vector<std::string> removed;
  for (;;) {
    const auto relevant = relevantSet(l, answers);
    bool changed = false;
    for (auto it = answers.values.begin(); it != answers.values.end();) {
      if (l.tmpl->findQuestion(it->first) != nullptr && !relevant.contains(it->first)) {
        removed.push_back(it->first);
        it = answers.values.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    if (!changed) {
      return removed;
    }
  }
}

/// Indicators (taking their recency from the answers) that `question` sets.
std::vector<const model::Indicator*> recencyIndicators(const model::Template& t,
                                                       std::string_view question) {
  std::vector<const model::Indicator*> out;
  for (const auto& ind : t.definition().indicators) {
    if (ind.question == question && ind.usesRecency() && ind.recencyQuestion.empty()) {
      out.push_back(&ind);
    }
  }
  return out;
}

/// The problems of `answers` that concern `questions` (or their indicators): the
/// ones to refuse now. Unanswered required questions are for submit to report.
json problemsFor(const Loaded& l, const model::Answers& answers,
                 const std::set<std::string>& questions) {
  std::set<std::string> keys = questions;
  for (const auto& ind : l.tmpl->definition().indicators) {
    if (questions.contains(ind.question)) {
      keys.insert(ind.id);
    }
  }
  json problems = json::array();
  for (const auto& [key, list] : model::validateAnswers(*l.tmpl, answers, l.context)) {
    if (!keys.contains(key)) {
      continue;
    }
    for (const std::string& p : list) {
      std::string message = p;
      if (l.tmpl->findQuestion(key) == nullptr) {
        // An indicator that needs its recency: say how to give it.
        for (const auto& ind : l.tmpl->definition().indicators) {
          if (ind.id == key) {
            message +=
                "; give it with --recency " + ind.question + "=current|within_6_months|6_12_months";
          }
        }
      }
      problems.push_back({{"question", key}, {"message", message}});
    }
  }
  return problems;
}

json explanationJson(const model::ScoreExplanation& e) {
  json contributions = json::array();
  for (const auto& c : e.contributions) {
    contributions.push_back(
        {{"indicator", c.indicatorId},
         {"label", c.label},
         {"tier", std::string(model::tierName(c.tier))},
         {"recency", c.recency ? json(std::string(model::recencyName(*c.recency))) : json(nullptr)},
         {"points", c.points}});
  }
  json overrides = json::array();
  for (const auto& o : e.overrides) {
    overrides.push_back(
        {{"rule", o.ruleId}, {"minimumLevel", o.minimumLevel}, {"reason", o.reason}});
  }
  json reviewRules = json::array();
  for (const auto& r : e.reviewRules) {
    reviewRules.push_back({{"rule", r.ruleId}, {"months", r.months}, {"reason", r.reason}});
  }
  return {{"template", e.templateId},
          {"templateVersion", e.templateVersion},
          {"templateHash", e.templateHash},
          {"score", e.totalScore},
          {"bandLevel", e.bandLevel},
          {"level", e.level},
          {"levelLabel", e.levelLabel},
          {"contributions", contributions},
          {"overrides", overrides},
          {"reviewMonths", e.reviewMonths},
          {"reviewDue", model::formatDate(e.reviewDue)},
          {"reviewRules", reviewRules},
          {"notes", e.notes}};
}

json answersJson(const model::Answers& a) {
  json values = json::object();
  for (const auto& [q, v] : a.values) {
    values[q] = answerJson(v);
  }
  json recency = json::object();
  for (const auto& [ind, r] : a.recency) {
    recency[ind] = std::string(model::recencyName(r));
  }
  return {{"values", values}, {"recency", recency}};
}

/// Saves the draft's answers; after an auto-lock (a long pause at the terminal) asks
/// for the PIN again and retries, so nothing typed is lost.
void save(Workspace& ws, const sync::Uuid& id, const model::Answers& answers) {
  try {
    ws.domain().assessments.saveAnswers(id, answers);
  } catch (const Error& e) {
    if (e.code() != Errc::locked) {
      throw;
    }
    std::cerr << "The vault locked itself after a pause; your answers are kept.\n";
    const SecretBytes pin = readPin("PIN: ");
    ws.unlockAgain(pinText(pin));
    ws.domain().assessments.saveAnswers(id, answers);
  }
}

// ---------------------------------------------------------------------------

Result start(Env& env, const AssessmentOptions& o) {
  const sync::Uuid child = parseId(o.child, "a child");
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(child, sg::kChildType, "child");
    const model::Template& t = ws.templateOf(o.templateId, o.version);
    sg::AssessmentStart s;
    s.child = child;
    s.templateId = t.id();
    s.templateVersion = t.version();
    s.assessedBy = ws.enrolled().workerId;
    s.participants = o.participants;
    s.scope = ws.scope(o.localAuthority, o.policeForceArea);
    const sync::Uuid id = ws.domain().assessments.start(s);
    Result r;
    r.data = {{"assessment", id.toString()},
              {"child", child.toString()},
              {"template", t.id()},
              {"templateVersion", t.version()},
              {"status", "draft"}};
    r.text = "started assessment " + id.toString() + " (" + t.id() + " v" +
             std::to_string(t.version()) + ")\nanswer it with 'assessment walk " + id.toString() +
             "' at a terminal, or 'assessment answer " + id.toString() + " QUESTION=VALUE ...'\n";
    return r;
  });
}

Result questions(Env& env, const AssessmentOptions& o) {
  const sync::Uuid id = parseId(o.id, "an assessment");
  return withWorkspace(env, [&](Workspace& ws) {
    const Loaded l = load(ws, id);
    (void)ws.records().view(id); // the answers are shown: audited as a view
    const auto relevant = relevantSet(l, l.answers);
    json list = json::array();
    Result r;
    for (const auto& s : l.tmpl->definition().sections) {
      bool header = false;
      for (const auto& q : s.questions) {
        if (!relevant.contains(q.id)) {
          continue;
        }
        if (!header) {
          r.text += s.title + "\n";
          header = true;
        }
        const auto a = l.answers.values.find(q.id);
        json options = json::array();
        for (const auto& opt : q.options) {
          options.push_back({{"id", opt.id}, {"label", opt.label}});
        }
        list.push_back(
            {{"id", q.id},
             {"section", s.id},
             {"type", std::string(model::questionTypeName(q.type))},
             {"label", q.label},
             {"required", q.required},
             {"options", options},
             {"recency", !recencyIndicators(*l.tmpl, q.id).empty()},
             {"answer", a == l.answers.values.end() ? json(nullptr) : answerJson(a->second)}});
        r.text += "  " + q.id + (q.required ? " *" : "") + "  " + q.label + "  (" + answerHint(q) +
                  ")" + (a == l.answers.values.end() ? "" : "  = " + answerText(a->second)) + "\n";
      }
    }
    r.text += "(* required; only the questions that apply to the answers so far are listed)\n";
    r.data = {{"assessment", id.toString()}, {"questions", list}};
    return r;
  });
}

Result walk(Workspace& ws, const sync::Uuid& id);

Result answer(Env& env, const AssessmentOptions& o) {
  const sync::Uuid id = parseId(o.id, "an assessment");
  if (o.answers.empty() && o.recencies.empty()) {
    if (isatty(STDIN_FILENO) == 0) {
      throw Failure(Errc::invalid_argument,
                    "no answers given; give QUESTION=VALUE pairs (see 'assessment questions " +
                        o.id + "'), or run 'assessment walk " + o.id + "' at a terminal");
    }
    return withWorkspace(env, [&](Workspace& ws) { return walk(ws, id); });
  }
  // The shape of each pair is checked before the PIN is asked for.
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const std::string& a : o.answers) {
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw Failure(Errc::invalid_argument,
                    "'" + a + "' is not QUESTION=VALUE (e.g. pl_cars_unknown_adults=yes)");
    }
    pairs.emplace_back(a.substr(0, eq), a.substr(eq + 1));
  }
  std::vector<std::pair<std::string, model::Recency>> recencies;
  for (const std::string& a : o.recencies) {
    const auto eq = a.find('=');
    const auto rec = eq == std::string::npos ? std::nullopt : parseRecency(a.substr(eq + 1));
    if (!rec || eq == 0) {
      throw Failure(Errc::invalid_argument,
                    "--recency '" + a +
                        "': give QUESTION=current, QUESTION=within_6_months or "
                        "QUESTION=6_12_months");
    }
    recencies.emplace_back(a.substr(0, eq), *rec);
  }
  return withWorkspace(env, [&](Workspace& ws) {
    Loaded l = load(ws, id);
    requireDraft(l);
    model::Answers next = l.answers;
    std::set<std::string> given;
    json problems = json::array();
    for (const auto& [qid, text] : pairs) {
      const model::Question* q = l.tmpl->findQuestion(qid);
      if (q == nullptr) {
        problems.push_back(
            {{"question", qid},
             {"message", "there is no such question in " + l.tmpl->id() + " v" +
                             std::to_string(l.tmpl->version()) + "; see 'assessment questions'"}});
        continue;
      }
      try {
        next.values[qid] = parseAnswer(*q, text);
        given.insert(qid);
      } catch (const Failure&) {
        problems.push_back({{"question", qid}, {"message", "expected " + answerHint(*q)}});
      }
    }
    for (const auto& [key, rec] : recencies) {
      std::vector<std::string> indicators;
      for (const auto* ind : recencyIndicators(*l.tmpl, key)) {
        indicators.push_back(ind->id);
      }
      for (const auto& ind : l.tmpl->definition().indicators) {
        if (ind.id == key) {
          indicators.push_back(ind.id);
        }
      }
      if (indicators.empty()) {
        problems.push_back({{"question", key},
                            {"message", "no indicator of this template takes a recency from it"}});
      }
      for (const std::string& ind : indicators) {
        next.recency[ind] = rec;
      }
      given.insert(key);
    }
    const std::vector<std::string> removed = dropIrrelevant(l, next);
    for (const std::string& qid : removed) {
      if (given.contains(qid)) {
        problems.push_back(
            {{"question", qid},
             {"message", "does not apply given the other answers (skip logic); leave it out"}});
      }
    }
    if (problems.empty()) {
      problems = problemsFor(l, next, given);
    }
    if (!problems.empty()) {
      std::string message = "the answers were not saved:";
      for (const auto& p : problems) {
        message +=
            "\n  " + p["question"].get<std::string>() + ": " + p["message"].get<std::string>();
      }
      throw Failure(Errc::validation, message, {{"problems", problems}});
    }
    save(ws, id, next);
    const model::ScoreExplanation provisional = model::score(*l.tmpl, next, l.context);
    std::size_t unanswered = 0;
    for (const std::string& q : model::relevantQuestions(*l.tmpl, next, l.context)) {
      if (!next.values.contains(q)) {
        ++unanswered;
      }
    }
    Result r;
    json saved = json::object();
    for (const std::string& q : given) {
      if (const auto it = next.values.find(q); it != next.values.end()) {
        saved[q] = answerJson(it->second);
      }
    }
    r.data = {{"assessment", id.toString()},
              {"saved", saved},
              {"removed", removed},
              {"answered", next.values.size()},
              {"unanswered", unanswered},
              {"provisional", {{"score", provisional.totalScore}, {"level", provisional.level}}}};
    r.text = "saved " + std::to_string(given.size()) + " answer(s); " + std::to_string(unanswered) +
             " question(s) that apply are unanswered";
    if (!removed.empty()) {
      r.text += "; removed answers that no longer apply: " + json(removed).dump();
    }
    r.text += "\nprovisional score " + std::to_string(provisional.totalScore) + ", level " +
              provisional.level + " (submit to record it)\n";
    return r;
  });
}

/// The interactive walk: questions in template order, only those that apply to the
/// answers so far; each answer checked and saved as it is given.
Result walk(Workspace& ws, const sync::Uuid& id) {
  Loaded l = load(ws, id);
  requireDraft(l);
  (void)ws.records().view(id); // the answers so far are shown: audited as a view
  model::Answers answers = l.answers;
  std::cerr << "Assessment " << id.toString() << ": " << l.tmpl->definition().title << " (v"
            << l.tmpl->version() << ")\n"
            << "Enter: keep the answer shown (or skip)   -: clear it   !: save and stop\n";
  bool stopped = false;
  std::size_t changed = 0;
  for (const auto& section : l.tmpl->definition().sections) {
    bool header = false;
    for (const auto& q : section.questions) {
      if (stopped) {
        break;
      }
      if (!relevantSet(l, answers).contains(q.id)) {
        if (answers.values.erase(q.id) > 0) {
          save(ws, id, answers);
          std::cerr << "  (" << q.id << " no longer applies: its answer was removed)\n";
        }
        continue;
      }
      if (!header) {
        std::cerr << "\n== " << section.title << (section.scored ? "" : " (not scored)") << "\n";
        header = true;
      }
      for (;;) {
        const auto current = answers.values.find(q.id);
        std::cerr << "\n" << q.label << (q.required ? " *" : "") << "  [" << q.id << "]\n";
        if (!q.help.empty()) {
          std::cerr << "  " << q.help << "\n";
        }
        for (std::size_t i = 0; i < q.options.size(); ++i) {
          std::cerr << "  " << (i + 1) << ") " << q.options[i].id << ": " << q.options[i].label
                    << "\n";
        }
        std::cerr << "  [" << answerHint(q) << "]"
                  << (current != answers.values.end()
                          ? " (now: " + answerText(current->second) + ")"
                          : std::string())
                  << " > " << std::flush;
        std::string line;
        if (!std::getline(std::cin, line)) {
          stopped = true;
          break;
        }
        if (line.empty()) {
          break;
        }
        if (line == "!") {
          stopped = true;
          break;
        }
        model::Answers tentative = answers;
        if (line == "-") {
          tentative.values.erase(q.id);
        } else {
          try {
            tentative.values[q.id] = parseAnswer(q, line);
          } catch (const Failure& f) {
            std::cerr << "  not saved: " << f.message() << "\n";
            continue;
          }
        }
        dropIrrelevant(l, tentative);
        // Indicators this answer makes present that need a recency.
        for (const auto* ind : recencyIndicators(*l.tmpl, q.id)) {
          const auto problems = model::validateAnswers(*l.tmpl, tentative, l.context);
          if (!problems.contains(ind->id)) {
            continue;
          }
          for (;;) {
            std::cerr << "  When? current, within_6_months (6m) or 6_12_months (12m) > "
                      << std::flush;
            std::string when;
            if (!std::getline(std::cin, when)) {
              stopped = true;
              break;
            }
            if (const auto rec = parseRecency(when)) {
              tentative.recency[ind->id] = *rec;
              break;
            }
            std::cerr << "  not understood\n";
          }
        }
        if (stopped) {
          break;
        }
        const json problems = problemsFor(l, tentative, {q.id});
        if (!problems.empty()) {
          for (const auto& p : problems) {
            std::cerr << "  not saved: " << p["message"].get<std::string>() << "\n";
          }
          continue;
        }
        answers = std::move(tentative);
        save(ws, id, answers);
        ++changed;
        break;
      }
    }
  }
  const model::ScoreExplanation provisional = model::score(*l.tmpl, answers, l.context);
  std::size_t unanswered = 0;
  for (const std::string& q : model::relevantQuestions(*l.tmpl, answers, l.context)) {
    if (!answers.values.contains(q)) {
      ++unanswered;
    }
  }
  Result r;
  r.data = {{"assessment", id.toString()},
            {"changed", changed},
            {"answered", answers.values.size()},
            {"unanswered", unanswered},
            {"finished", !stopped},
            {"provisional", {{"score", provisional.totalScore}, {"level", provisional.level}}}};
  r.text = "\n" + std::string(stopped ? "stopped; " : "") + "answers saved (" +
           std::to_string(changed) + " changed). Provisional score " +
           std::to_string(provisional.totalScore) + ", level " + provisional.level +
           ".\nWhen ready: 'assessment submit " + id.toString() + "'\n";
  return r;
}

Result submit(Env& env, const AssessmentOptions& o) {
  const sync::Uuid id = parseId(o.id, "an assessment");
  sg::Judgement j;
  if (!o.level.empty()) {
    j.level = o.level;
  }
  j.reason = o.reason;
  j.supervisor = o.supervisor;
  if (!o.supervisorSignedAt.empty()) {
    j.supervisorSignedAtMs = parseTime(o.supervisorSignedAt, nowMs(), "--supervisor-signed-at");
  } else if (!o.supervisor.empty()) {
    j.supervisorSignedAtMs = nowMs();
  }
  j.childView = o.childView;
  j.carerView = o.carerView;
  j.analysis = o.analysis;
  j.actions = o.actions;
  return withWorkspace(env, [&](Workspace& ws) {
    const Loaded l = load(ws, id);
    requireDraft(l);
    if (j.level && !l.tmpl->levelRank(*j.level)) {
      std::string levels;
      for (const auto& lv : l.tmpl->definition().levels) {
        levels += (levels.empty() ? "" : ", ") + lv.id;
      }
      throw Failure(Errc::validation, "--level '" + *j.level + "' is not a level of " +
                                          l.tmpl->id() + "; use one of: " + levels);
    }
    const model::ScoreExplanation e = ws.domain().assessments.submit(id, j, l.context);
    const auto rec = ws.records().get(id);
    Result r;
    r.data = {{"assessment", id.toString()},
              {"status", "submitted"},
              {"score", e.totalScore},
              {"computedLevel", e.level},
              {"judgedLevel", rec->text("judged_level")},
              {"reviewDue", model::formatDate(e.reviewDue)},
              {"explanation", explanationJson(e)},
              {"why", model::describe(e)}};
    r.text = "submitted assessment " + id.toString() + ": score " + std::to_string(e.totalScore) +
             ", level " + e.level + " (" + e.levelLabel + ")" +
             (rec->text("judged_level") != e.level ? "; judged level " + rec->text("judged_level")
                                                   : std::string()) +
             "\nwhy:\n" + indented(model::describe(e), "  | ");
    return r;
  });
}

Result show(Env& env, const AssessmentOptions& o) {
  const sync::Uuid id = parseId(o.id, "an assessment");
  return withWorkspace(env, [&](Workspace& ws) {
    const Loaded l = load(ws, id);
    const auto a = ws.domain().assessments.view(id); // audited as a view
    Result r;
    const bool draft = a->status == "draft";
    std::string why = a->explanation;
    std::int64_t score = a->score.value_or(0);
    std::string level = a->computedLevel;
    if (draft) {
      const model::ScoreExplanation e = model::score(*l.tmpl, a->answers, l.context);
      why = model::describe(e);
      score = e.totalScore;
      level = e.level;
    }
    r.data = {{"assessment", id.toString()},
              {"child", a->child.toString()},
              {"template", a->templateId},
              {"templateVersion", a->templateVersion},
              {"status", a->status},
              {"provisional", draft},
              {"score", score},
              {"level", level},
              {"computedLevel", draft ? json(nullptr) : json(a->computedLevel)},
              {"judgedLevel", draft ? json(nullptr) : json(a->judgedLevel)},
              {"judgementReason", a->judgementReason},
              {"reviewDue", a->reviewDue.empty() ? json(nullptr) : json(a->reviewDue)},
              {"why", why},
              {"answers", answersJson(a->answers)}};
    r.text = "assessment " + id.toString() + " (" + a->templateId + " v" +
             std::to_string(a->templateVersion) + ") of child " + a->child.toString() + ": " +
             a->status + "\n";
    if (draft) {
      r.text += "provisional score " + std::to_string(score) + ", level " + level + " (" +
                std::to_string(a->answers.values.size()) + " answers so far)\n";
    } else {
      r.text += "score " + std::to_string(score) + ", computed level " + a->computedLevel +
                ", judged level " + a->judgedLevel +
                (a->judgementReason.empty() ? "" : " (" + a->judgementReason + ")") +
                "\nreview due " + a->reviewDue + "\n";
    }
    r.text += "why:\n" + indented(why, "  | ");
    return r;
  });
}

} // namespace

void addAssessmentCommands(CLI::App& app, Action& action) {
  auto* assessment = app.add_subcommand("assessment", "Risk assessments against a template");
  assessment->require_subcommand(1);
  {
    auto o = std::make_shared<AssessmentOptions>();
    auto* cmd = assessment->add_subcommand("start", "Start a draft pinned to a template version");
    cmd->add_option("--child", o->child, "The child's id")->required();
    cmd->add_option("--template", o->templateId, "The template")->capture_default_str();
    cmd->add_option("--version", o->version, "Its version (default: the latest published)");
    addRepeated(cmd, "--participant", o->participants, "Who took part (repeat)");
    cmd->add_option("--local-authority", o->localAuthority, "Local authority (default: saved)");
    cmd->add_option("--police-force-area", o->policeForceArea, "Police force area");
    onParsed(cmd, action, o, start);
  }
  {
    auto o = std::make_shared<AssessmentOptions>();
    auto* cmd =
        assessment->add_subcommand("questions", "The questions that apply, with their answers");
    cmd->add_option("ASSESSMENT", o->id, "The assessment's id")->required();
    onParsed(cmd, action, o, questions);
  }
  {
    auto o = std::make_shared<AssessmentOptions>();
    auto* cmd = assessment->add_subcommand(
        "answer", "Save answers QUESTION=VALUE (checked against the template); with none, at a "
                  "terminal, walk through the questions");
    cmd->add_option("ASSESSMENT", o->id, "The assessment's id")->required();
    cmd->add_option("ANSWERS", o->answers, "QUESTION=VALUE ...");
    addRepeated(cmd, "--recency", o->recencies,
                "QUESTION=current|within_6_months|6_12_months for an indicator that is "
                "present (repeat)");
    onParsed(cmd, action, o, answer);
  }
  {
    auto o = std::make_shared<AssessmentOptions>();
    auto* cmd = assessment->add_subcommand(
        "walk", "Answer the questions one by one at a terminal (skip logic applied)");
    cmd->add_option("ASSESSMENT", o->id, "The assessment's id")->required();
    onParsed(cmd, action, o, [](Env& env, const AssessmentOptions& opts) {
      const sync::Uuid id = parseId(opts.id, "an assessment");
      return withWorkspace(env, [&](Workspace& ws) { return walk(ws, id); });
    });
  }
  {
    auto o = std::make_shared<AssessmentOptions>();
    auto* cmd = assessment->add_subcommand(
        "submit", "Check every answer, score, explain, record the judgement and lock");
    cmd->add_option("ASSESSMENT", o->id, "The assessment's id")->required();
    cmd->add_option("--level", o->level,
                    "The judged level (default: the computed one; lowering needs --reason and "
                    "--supervisor)");
    cmd->add_option("--reason", o->reason, "Why the judged level differs");
    cmd->add_option("--supervisor", o->supervisor, "The supervisor who signed off");
    cmd->add_option("--supervisor-signed-at", o->supervisorSignedAt,
                    "When they signed off (default: now)");
    cmd->add_option("--child-view", o->childView, "The child's view");
    cmd->add_option("--carer-view", o->carerView, "The carer's view");
    cmd->add_option("--analysis", o->analysis, "The assessor's analysis");
    addRepeated(cmd, "--action", o->actions, "An action agreed (repeat)");
    onParsed(cmd, action, o, submit);
  }
  {
    auto o = std::make_shared<AssessmentOptions>();
    auto* cmd = assessment->add_subcommand("show", "Score, level and why");
    cmd->add_option("ASSESSMENT", o->id, "The assessment's id")->required();
    onParsed(cmd, action, o, show);
  }
}

} // namespace outpost::field
