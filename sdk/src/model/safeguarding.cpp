// The typed safeguarding API: mapping domain structs to record fields.

#include <outpost/error.hpp>
#include <outpost/expression.hpp>
#include <outpost/platform/clock.hpp>
#include <outpost/safeguarding.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <initializer_list>

namespace outpost::safeguarding {

namespace {

using nlohmann::json;
using sync::FieldValues;
using sync::StringList;
using sync::Value;

void putText(FieldValues& f, const char* name, const std::string& value) {
  f[name] = value.empty() ? Value{sync::Null{}} : Value{value};
}

void putList(FieldValues& f, const char* name, const std::vector<std::string>& value) {
  f[name] = value.empty() ? Value{sync::Null{}} : Value{StringList(value)};
}

void putInt(FieldValues& f, const char* name, std::optional<std::int64_t> value) {
  f[name] = value ? Value{*value} : Value{sync::Null{}};
}

void putScope(FieldValues& f, const Scope& s) {
  putText(f, "owner_team", s.ownerTeam);
  putText(f, "local_authority", s.localAuthority);
  putText(f, "police_force_area", s.policeForceArea);
  putText(f, "retention_class", s.retentionClass);
}

Scope scopeOf(const model::Record& r) {
  return Scope{r.text("owner_team"), r.text("local_authority"), r.text("police_force_area"),
               r.text("retention_class")};
}

std::vector<std::string> listOf(const model::Record& r, std::string_view name) {
  const auto* l = std::get_if<StringList>(&r.get(name));
  return l ? *l : std::vector<std::string>{};
}

Uuid uuidOf(const model::Record& r, std::string_view name) {
  return Uuid::parse(r.text(name)).value_or(Uuid{});
}

void requireType(RecordStore& store, const Uuid& id, std::string_view type) {
  const auto r = store.get(id);
  if (!r || r->type != type) {
    throw Error(Errc::not_found, "no " + std::string(type) + " with this id");
  }
}

/// Moves a record of `type` to `to` (with `fields`) if its status is one of `from`;
/// otherwise Error{validation}. Checked in the write's transaction.
void transition(RecordStore& store, const Uuid& id, std::string_view type,
                std::initializer_list<std::string_view> from, const std::string& to,
                FieldValues fields) {
  store.modify(id, [&](const model::Record& r) {
    if (r.type != type) {
      throw Error(Errc::not_found, "no " + std::string(type) + " with this id");
    }
    const std::string status = r.text("status");
    if (std::find(from.begin(), from.end(), status) == from.end()) {
      throw Error(Errc::validation,
                  std::string(type) + ".status: cannot go from " + status + " to " + to);
    }
    fields["status"] = to;
    return fields;
  });
}

model::IdPage idQuery(RecordStore& store, model::RecordQuery q, std::size_t limit,
                      std::optional<std::string> after) {
  q.limit = limit;
  q.after = std::move(after);
  return store.queryIds(q);
}

FieldValues childFields(const Child& c) {
  FieldValues f;
  putText(f, "name", c.name);
  putList(f, "aliases", c.aliases);
  f["date_of_birth"] = c.dateOfBirth ? Value{*c.dateOfBirth} : Value{sync::Null{}};
  putInt(f, "estimated_age", c.estimatedAgeYears);
  putText(f, "gender", c.gender);
  putList(f, "needs", c.needs);
  f["learning_disability"] = c.learningDisability;
  putText(f, "school", c.school);
  putText(f, "care_status", c.careStatus);
  putText(f, "placing_authority", c.placingAuthority);
  putList(f, "agencies", c.agencies);
  putText(f, "lead_professional", c.leadProfessional);
  putScope(f, c.scope);
  return f;
}

} // namespace

// ---------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------

Uuid Children::add(const Child& child) { return store_.create(kChildType, childFields(child)); }

void Children::update(const Child& child) {
  requireType(store_, child.id, kChildType);
  store_.update(child.id, childFields(child));
}

std::optional<Child> Children::view(const Uuid& id) {
  const auto r = store_.view(id);
  if (!r || r->type != kChildType) {
    return std::nullopt;
  }
  Child c;
  c.id = r->id;
  c.name = r->text("name");
  c.aliases = listOf(*r, "aliases");
  if (const auto dob = r->text("date_of_birth"); !dob.empty()) {
    c.dateOfBirth = dob;
  }
  c.estimatedAgeYears = r->integer("estimated_age");
  c.gender = r->text("gender");
  c.needs = listOf(*r, "needs");
  c.learningDisability = r->get("learning_disability") == Value{true};
  c.school = r->text("school");
  c.careStatus = r->text("care_status");
  c.placingAuthority = r->text("placing_authority");
  c.agencies = listOf(*r, "agencies");
  c.leadProfessional = r->text("lead_professional");
  c.scope = scopeOf(*r);
  c.status = r->text("status");
  return c;
}

model::IdPage Children::records(const Uuid& child, std::optional<std::string> type,
                                std::size_t limit, std::optional<std::string> after) {
  model::RecordQuery q;
  q.linkedTo = child;
  q.type = std::move(type);
  return idQuery(store_, q, limit, std::move(after));
}

// ---------------------------------------------------------------------------
// Assessments
// ---------------------------------------------------------------------------

std::string answersToJson(const model::Answers& answers) {
  json values = json::object();
  for (const auto& [question, answer] : answers.values) {
    std::visit(
        [&, q = question](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) {
            values[q] = {{"bool", v}};
          } else if constexpr (std::is_same_v<T, std::int64_t>) {
            values[q] = {{"int", v}};
          } else if constexpr (std::is_same_v<T, std::string>) {
            values[q] = {{"text", v}};
          } else if constexpr (std::is_same_v<T, model::Date>) {
            values[q] = {{"date", model::formatDate(v)}};
          } else {
            values[q] = {{"choices", v}};
          }
        },
        answer);
  }
  json recency = json::object();
  for (const auto& [indicator, r] : answers.recency) {
    recency[indicator] = std::string(model::recencyName(r));
  }
  return json{{"values", values}, {"recency", recency}}.dump();
}

model::Answers answersFromJson(std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) {
    throw Error(Errc::corrupt, "stored answers are not JSON");
  }
  model::Answers a;
  const json empty = json::object();
  const json& values = j.contains("values") ? j["values"] : empty;
  const json& recencies = j.contains("recency") ? j["recency"] : empty;
  for (const auto& [q, v] : values.items()) {
    if (v.contains("bool")) {
      a.values.emplace(q, v["bool"].get<bool>());
    } else if (v.contains("int")) {
      a.values.emplace(q, v["int"].get<std::int64_t>());
    } else if (v.contains("text")) {
      a.values.emplace(q, v["text"].get<std::string>());
    } else if (v.contains("date")) {
      const auto d = model::parseDate(v["date"].get<std::string>());
      if (!d) {
        throw Error(Errc::corrupt, "a stored date answer is malformed");
      }
      a.values.emplace(q, *d);
    } else if (v.contains("choices")) {
      a.values.emplace(q, v["choices"].get<std::vector<std::string>>());
    }
  }
  for (const auto& [ind, r] : recencies.items()) {
    for (const auto rec :
         {model::Recency::current, model::Recency::within6Months, model::Recency::sixTo12Months}) {
      if (model::recencyName(rec) == r.get<std::string>()) {
        a.recency.emplace(ind, rec);
      }
    }
  }
  return a;
}

Uuid Assessments::start(const AssessmentStart& s) {
  const model::Template* tmpl = catalog_.find(s.templateId, s.templateVersion);
  if (!tmpl) {
    throw Error(Errc::validation, "assessment.template_id: the template version is not available");
  }
  StringList levels;
  for (const model::Level& l : tmpl->definition().levels) {
    levels.push_back(l.id);
  }
  FieldValues f;
  f["child"] = s.child.toString();
  f["template_id"] = s.templateId;
  f["template_version"] = s.templateVersion;
  f["template_hash"] = tmpl->contentHash();
  f["level_order"] = levels;
  putText(f, "assessed_by", s.assessedBy);
  putList(f, "participants", s.participants);
  putScope(f, s.scope);
  return store_.create(kAssessmentType, std::move(f));
}

void Assessments::saveAnswers(const Uuid& id, const model::Answers& answers) {
  requireType(store_, id, kAssessmentType);
  store_.update(id, {{"answers", answersToJson(answers)}});
}

model::ScoreExplanation Assessments::submit(const Uuid& id, const Judgement& judgement,
                                            const model::AssessmentContext& context) {
  model::ScoreExplanation explanation;
  store_.modify(id, [&](const model::Record& r) {
    if (r.type != kAssessmentType) {
      throw Error(Errc::not_found, "no assessment with this id");
    }
    if (r.text("status") != "draft") {
      throw Error(Errc::validation, "assessment.status: only a draft can be submitted");
    }
    const model::Template* tmpl =
        catalog_.find(r.text("template_id"), r.integer("template_version").value_or(0));
    if (!tmpl) {
      throw Error(Errc::validation,
                  "assessment.template_id: the template version is not available");
    }
    const std::string stored = r.text("answers");
    const model::Answers answers = stored.empty() ? model::Answers{} : answersFromJson(stored);
    const auto problems = model::validateAnswers(*tmpl, answers, context);
    if (!problems.empty()) {
      std::string message;
      for (const auto& [question, list] : problems) {
        for (const std::string& p : list) {
          message += (message.empty() ? "" : "; ") + ("assessment.answers." + question) + ": " + p;
        }
      }
      throw Error(Errc::validation, message);
    }
    explanation = model::score(*tmpl, answers, context);
    FieldValues f;
    f["answers"] = stored.empty() ? answersToJson(answers) : stored;
    f["score"] = explanation.totalScore;
    f["computed_level"] = explanation.level;
    f["explanation"] = model::describe(explanation);
    f["judged_level"] = judgement.level.value_or(explanation.level);
    putText(f, "judgement_reason", judgement.reason);
    putText(f, "supervisor", judgement.supervisor);
    putInt(f, "supervisor_signed_at", judgement.supervisorSignedAtMs);
    putText(f, "child_view", judgement.childView);
    putText(f, "carer_view", judgement.carerView);
    putText(f, "analysis", judgement.analysis);
    putList(f, "actions", judgement.actions);
    f["review_due"] = model::formatDate(explanation.reviewDue);
    f["submitted_at"] = clock_.unixMillis();
    f["status"] = std::string("submitted");
    return f;
  });
  return explanation;
}

void Assessments::review(const Uuid& id, std::string_view reviewer) {
  transition(store_, id, kAssessmentType, {"submitted"}, "reviewed",
             {{"reviewed_by", std::string(reviewer)}, {"reviewed_at", clock_.unixMillis()}});
}

void Assessments::supersede(const Uuid& id, const Uuid& next) {
  requireType(store_, id, kAssessmentType);
  const auto a = store_.get(id);
  const auto b = store_.get(next);
  if (!b || b->type != kAssessmentType || b->text("child") != a->text("child") || id == next) {
    throw Error(Errc::validation,
                "assessment.superseded_by: must be another assessment of the same child");
  }
  store_.update(id, {{"status", std::string("superseded")}, {"superseded_by", next.toString()}});
}

std::optional<Assessment> Assessments::view(const Uuid& id) {
  const auto r = store_.view(id);
  if (!r || r->type != kAssessmentType) {
    return std::nullopt;
  }
  Assessment a;
  a.id = r->id;
  a.child = uuidOf(*r, "child");
  a.templateId = r->text("template_id");
  a.templateVersion = r->integer("template_version").value_or(0);
  a.status = r->text("status");
  if (const std::string answers = r->text("answers"); !answers.empty()) {
    a.answers = answersFromJson(answers);
  }
  a.score = r->integer("score");
  a.computedLevel = r->text("computed_level");
  a.judgedLevel = r->text("judged_level");
  a.explanation = r->text("explanation");
  a.judgementReason = r->text("judgement_reason");
  a.reviewDue = r->text("review_due");
  if (auto next = Uuid::parse(r->text("superseded_by"))) {
    a.supersededBy = *next;
  }
  return a;
}

model::IdPage Assessments::reviewsDue(std::int64_t beforeMs, std::size_t limit,
                                      std::optional<std::string> after) {
  model::RecordQuery q;
  q.type = std::string(kAssessmentType);
  q.dueBeforeMs = beforeMs;
  return idQuery(store_, q, limit, std::move(after));
}

model::IdPage Assessments::atLevel(std::string_view level, std::size_t limit,
                                   std::optional<std::string> after) {
  model::RecordQuery q;
  q.type = std::string(kAssessmentType);
  q.riskLevel = std::string(level);
  return idQuery(store_, q, limit, std::move(after));
}

// ---------------------------------------------------------------------------
// Contact notes
// ---------------------------------------------------------------------------

namespace {

FieldValues noteContent(const ContactNote& n) {
  FieldValues f;
  f["child"] = n.child.toString();
  f["started_at"] = n.startedAtMs;
  putInt(f, "ended_at", n.endedAtMs);
  putText(f, "place", n.place);
  f["planned"] = n.planned;
  StringList present;
  for (const PersonPresent& p : n.present) {
    present.push_back(json{{"name", p.name}, {"role", p.role}}.dump());
  }
  f["present"] = present.empty() ? Value{sync::Null{}} : Value{present};
  f["seen_alone"] = n.seenAlone;
  putText(f, "facts", n.facts);
  putText(f, "analysis", n.analysis);
  putText(f, "child_words", n.childWords);
  StringList actions;
  for (const NoteAction& a : n.actions) {
    json j{{"action", a.action}, {"owner", a.owner}};
    if (!a.deadline.empty()) {
      j["deadline"] = a.deadline;
    }
    actions.push_back(j.dump());
  }
  f["actions"] = actions.empty() ? Value{sync::Null{}} : Value{actions};
  return f;
}

} // namespace

Uuid ContactNotes::add(const ContactNote& note) {
  FieldValues f = noteContent(note);
  putScope(f, note.scope);
  return store_.create(kContactNoteType, std::move(f));
}

void ContactNotes::edit(const ContactNote& note) {
  requireType(store_, note.id, kContactNoteType);
  store_.update(note.id, noteContent(note));
}

void ContactNotes::sign(const Uuid& id) {
  transition(store_, id, kContactNoteType, {"draft"}, "signed",
             {{"signed_at", clock_.unixMillis()}, {"signed_by", store_.options().workerId}});
}

void ContactNotes::addAddendum(const Uuid& id, std::string_view text) {
  store_.modify(id, [&](const model::Record& r) {
    if (r.type != kContactNoteType) {
      throw Error(Errc::not_found, "no contact note with this id");
    }
    StringList addenda = listOf(r, "addenda");
    addenda.push_back(json{
        {"at", clock_.unixMillis()}, {"by", store_.options().workerId}, {"text", std::string(text)}}
                          .dump());
    return FieldValues{{"addenda", addenda}};
  });
}

std::optional<ContactNote> ContactNotes::view(const Uuid& id) {
  const auto r = store_.view(id);
  if (!r || r->type != kContactNoteType) {
    return std::nullopt;
  }
  ContactNote n;
  n.id = r->id;
  n.child = uuidOf(*r, "child");
  n.startedAtMs = r->integer("started_at").value_or(0);
  n.endedAtMs = r->integer("ended_at");
  n.place = r->text("place");
  n.planned = r->get("planned") == Value{true};
  for (const std::string& p : listOf(*r, "present")) {
    const json j = json::parse(p);
    n.present.push_back({j.value("name", ""), j.value("role", "")});
  }
  n.seenAlone = r->get("seen_alone") == Value{true};
  n.facts = r->text("facts");
  n.analysis = r->text("analysis");
  n.childWords = r->text("child_words");
  for (const std::string& a : listOf(*r, "actions")) {
    const json j = json::parse(a);
    n.actions.push_back({j.value("action", ""), j.value("owner", ""), j.value("deadline", "")});
  }
  n.signedAtMs = r->integer("signed_at");
  n.signedBy = r->text("signed_by");
  for (const std::string& a : listOf(*r, "addenda")) {
    const json j = json::parse(a);
    n.addenda.push_back({j.value("at", std::int64_t{0}), j.value("by", ""), j.value("text", "")});
  }
  n.scope = scopeOf(*r);
  n.status = r->text("status");
  return n;
}

model::IdPage ContactNotes::search(std::string_view text, std::size_t limit,
                                   std::optional<std::string> after) {
  model::RecordQuery q;
  q.type = std::string(kContactNoteType);
  q.text = std::string(text);
  return idQuery(store_, q, limit, std::move(after));
}

// ---------------------------------------------------------------------------
// Missing episodes
// ---------------------------------------------------------------------------

Uuid MissingEpisodes::report(const MissingEpisode& e) {
  FieldValues f;
  f["child"] = e.child.toString();
  f["reported_at"] = e.reportedAtMs;
  putInt(f, "last_seen_at", e.lastSeenAtMs);
  putText(f, "last_seen_place", e.lastSeenPlace);
  putText(f, "police_reference", e.policeReference);
  putText(f, "police_risk_grading", e.policeRiskGrading);
  putScope(f, e.scope);
  return store_.create(kMissingEpisodeType, std::move(f));
}

Uuid MissingEpisodes::recordReturn(const Uuid& episode, std::int64_t returnedAtMs,
                                   std::string_view foundPlace) {
  const auto e = store_.get(episode);
  if (!e || e->type != kMissingEpisodeType) {
    throw Error(Errc::not_found, "no missing episode with this id");
  }
  std::vector<model::RecordWrite> writes(2);
  writes[0].id = episode;
  writes[0].fields = {
      {"status", std::string("returned")},
      {"returned_at", returnedAtMs},
      {"found_place", foundPlace.empty() ? Value{sync::Null{}} : Value{std::string(foundPlace)}}};
  writes[1].type = std::string(kReturnHomeInterviewType);
  writes[1].fields = {
      {"episode", episode.toString()},       {"child", e->text("child")},
      {"returned_at", returnedAtMs},         {"deadline", returnedAtMs + kReturnInterviewWindowMs},
      {"owner_team", e->text("owner_team")}, {"retention_class", e->text("retention_class")}};
  if (const std::string la = e->text("local_authority"); !la.empty()) {
    writes[1].fields["local_authority"] = la;
  }
  if (const std::string pfa = e->text("police_force_area"); !pfa.empty()) {
    writes[1].fields["police_force_area"] = pfa;
  }
  return store_.writeBatch(writes)[1];
}

void MissingEpisodes::offerInterview(const Uuid& interview, std::int64_t offeredAtMs,
                                     std::string_view interviewer) {
  requireType(store_, interview, kReturnHomeInterviewType);
  store_.update(interview, {{"status", std::string("offered")},
                            {"offered_at", offeredAtMs},
                            {"interviewer", std::string(interviewer)}});
}

void MissingEpisodes::completeInterview(const Uuid& interview, std::int64_t heldAtMs,
                                        const InterviewOutcome& o) {
  requireType(store_, interview, kReturnHomeInterviewType);
  FieldValues f{
      {"status", std::string("done")}, {"held_at", heldAtMs}, {"independent", o.independent}};
  putText(f, "interviewer", o.interviewer);
  putText(f, "where_went", o.whereWent);
  putText(f, "with_whom", o.withWhom);
  putText(f, "travel", o.travel);
  putText(f, "harm", o.harm);
  putList(f, "push_factors", o.pushFactors);
  putList(f, "pull_factors", o.pullFactors);
  store_.update(interview, std::move(f));
}

void MissingEpisodes::declineInterview(const Uuid& interview, std::string_view reason) {
  requireType(store_, interview, kReturnHomeInterviewType);
  store_.update(interview,
                {{"status", std::string("declined")}, {"outcome_reason", std::string(reason)}});
}

void MissingEpisodes::interviewNotPossible(const Uuid& interview, std::string_view reason) {
  requireType(store_, interview, kReturnHomeInterviewType);
  store_.update(interview,
                {{"status", std::string("not_possible")}, {"outcome_reason", std::string(reason)}});
}

model::IdPage MissingEpisodes::overdueInterviews(std::size_t limit,
                                                 std::optional<std::string> after) {
  model::RecordQuery q;
  q.type = std::string(kReturnHomeInterviewType);
  q.dueBeforeMs = clock_.unixMillis();
  return idQuery(store_, q, limit, std::move(after));
}

// ---------------------------------------------------------------------------
// Sharing, concerns, referrals
// ---------------------------------------------------------------------------

Uuid SharingDecisions::record(const SharingDecision& d) {
  model::RecordWrite w;
  w.type = std::string(kSharingDecisionType);
  FieldValues& f = w.fields;
  if (d.child) {
    f["child"] = d.child->toString();
  }
  f["decision"] = std::string(d.share ? "share" : "not_share");
  putText(f, "purpose", d.purpose);
  putList(f, "recipients", d.recipients);
  putText(f, "shared_items", d.sharedItems);
  putText(f, "reason", d.reason);
  putText(f, "lawful_basis", d.lawfulBasis);
  putText(f, "consent_status", d.consentStatus);
  putText(f, "consent_not_sought_reason", d.consentNotSoughtReason);
  putText(f, "decided_by", d.decidedBy);
  f["decided_at"] = clock_.unixMillis();
  putText(f, "manager_consulted", d.managerConsulted);
  putText(f, "method", d.method);
  putList(f, "protected_identities", d.protectedIdentities);
  putScope(f, d.scope);
  if (d.share) {
    w.action = model::AuditAction::share;
  }
  return store_.writeBatch(std::span(&w, 1)).front();
}

namespace {

void putConcern(FieldValues& f, const Concern& c) {
  StringList children;
  for (const Uuid& id : c.children) {
    children.push_back(id.toString());
  }
  f["children"] = children.empty() ? Value{sync::Null{}} : Value{children};
  f["provenance"] = std::string(c.provenance == Provenance::firstHand ? "first_hand" : "hearsay");
  putInt(f, "seen_at", c.seenAtMs);
  putText(f, "description", c.description);
  putScope(f, c.scope);
}

} // namespace

Uuid Concerns::addPerson(const PersonOfConcern& p) {
  FieldValues f;
  putConcern(f, p);
  putText(f, "name", p.name);
  putList(f, "nicknames", p.nicknames);
  putList(f, "phone_numbers", p.phoneNumbers);
  return store_.create(kPersonOfConcernType, std::move(f));
}

Uuid Concerns::addVehicle(const VehicleOfConcern& v) {
  FieldValues f;
  putConcern(f, v);
  putText(f, "registration", v.registration);
  f["registration_partial"] = v.registrationPartial;
  putText(f, "make", v.make);
  putText(f, "model", v.model);
  putText(f, "colour", v.colour);
  putText(f, "marks", v.marks);
  return store_.create(kVehicleOfConcernType, std::move(f));
}

Uuid Concerns::addLocation(const LocationOfConcern& l) {
  FieldValues f;
  putConcern(f, l);
  putText(f, "address", l.address);
  putText(f, "venue_type", l.venueType);
  return store_.create(kLocationOfConcernType, std::move(f));
}

void Concerns::linkChild(const Uuid& concern, const Uuid& child) {
  store_.modify(concern, [&](const model::Record& r) {
    if (r.type != kPersonOfConcernType && r.type != kVehicleOfConcernType &&
        r.type != kLocationOfConcernType) {
      throw Error(Errc::not_found, "no person, vehicle or location of concern with this id");
    }
    StringList children = listOf(r, "children");
    const std::string text = child.toString();
    if (std::find(children.begin(), children.end(), text) == children.end()) {
      children.push_back(text);
    }
    return FieldValues{{"children", children}};
  });
}

Uuid Referrals::queue(const Referral& r) {
  FieldValues f;
  f["child"] = r.child.toString();
  putText(f, "destination", r.destination);
  putText(f, "receiving_authority", r.receivingAuthority);
  putText(f, "reason", r.reason);
  if (r.assessment) {
    f["assessment"] = r.assessment->toString();
  }
  putScope(f, r.scope);
  return store_.create(kReferralType, std::move(f));
}

void Referrals::markSent(const Uuid& id) {
  transition(store_, id, kReferralType, {"queued"}, "sent", {{"sent_at", clock_.unixMillis()}});
}

void Referrals::markAcknowledged(const Uuid& id) {
  transition(store_, id, kReferralType, {"queued", "sent"}, "acknowledged",
             {{"acknowledged_at", clock_.unixMillis()}});
}

void Referrals::recordOutcome(const Uuid& id, std::string_view outcome) {
  transition(store_, id, kReferralType, {"queued", "sent", "acknowledged"}, "outcome",
             {{"outcome", std::string(outcome)}, {"outcome_at", clock_.unixMillis()}});
}

std::string Referrals::status(const Uuid& id) {
  const auto r = store_.get(id);
  if (!r || r->type != kReferralType) {
    throw Error(Errc::not_found, "no referral with this id");
  }
  return r->text("status");
}

} // namespace outpost::safeguarding
