// The built-in safeguarding entity types (DOMAIN.md) and their lifecycle rules.
// Rules are part of the types, so they hold for every write, through the typed
// API (safeguarding.hpp) or the generic record API alike.

#include <outpost/expression.hpp>
#include <outpost/records.hpp>
#include <outpost/safeguarding.hpp>

#include <algorithm>
#include <chrono>

namespace outpost::model {

namespace {

using sync::MergePolicy;

constexpr auto kFrozen = MergePolicy::immutableAfterSign;
constexpr auto kAppend = MergePolicy::appendOnly;

FieldSpec field(std::string name, FieldType type, bool required = false,
                MergePolicy policy = MergePolicy::lww) {
  FieldSpec f;
  f.name = std::move(name);
  f.type = type;
  f.required = required;
  f.policy = policy;
  return f;
}

FieldSpec enumField(std::string name, std::vector<std::string> allowed, bool required = false,
                    MergePolicy policy = MergePolicy::lww) {
  FieldSpec f = field(std::move(name), FieldType::enumeration, required, policy);
  f.allowed = std::move(allowed);
  return f;
}

FieldSpec ref(std::string name, std::string type, bool required = false,
              MergePolicy policy = MergePolicy::lww) {
  FieldSpec f = field(std::move(name), FieldType::reference, required, policy);
  f.referenceType = std::move(type);
  return f;
}

FieldSpec refList(std::string name, std::string type) {
  FieldSpec f = field(std::move(name), FieldType::list);
  f.referenceType = std::move(type);
  return f;
}

FieldSpec structList(std::string name, std::vector<FieldSpec> sub,
                     MergePolicy policy = MergePolicy::lww) {
  FieldSpec f = field(std::move(name), FieldType::list, false, policy);
  f.subFields = std::move(sub);
  return f;
}

const std::string* text(const FieldValues& f, std::string_view name) {
  const auto it = f.find(name);
  return it == f.end() ? nullptr : std::get_if<std::string>(&it->second);
}

std::optional<std::int64_t> integer(const FieldValues& f, std::string_view name) {
  const auto it = f.find(name);
  if (it == f.end()) {
    return std::nullopt;
  }
  const auto* i = std::get_if<std::int64_t>(&it->second);
  return i ? std::optional(*i) : std::nullopt;
}

/// The field holds a value (an empty text counts as none).
bool has(const FieldValues& f, std::string_view name) {
  const auto it = f.find(name);
  if (it == f.end()) {
    return false;
  }
  const auto* s = std::get_if<std::string>(&it->second);
  return s == nullptr || !s->empty();
}

std::string statusOf(const FieldValues& f) {
  const std::string* s = text(f, "status");
  return s ? *s : std::string();
}

/// A rule that the status only moves forward through `order` (one step or more).
TypeRule forwardOnly(std::string type, std::vector<std::string> order) {
  return [type = std::move(type), order = std::move(order)](const RuleInput& in) {
    std::vector<FieldProblem> problems;
    if (in.before == nullptr || !in.changed.contains("status")) {
      if (in.before == nullptr && statusOf(in.after) != order.front()) {
        problems.push_back({type + ".status", "a new record starts as " + order.front()});
      }
      return problems;
    }
    const auto rank = [&](const std::string& s) {
      return std::find(order.begin(), order.end(), s) - order.begin();
    };
    if (rank(statusOf(in.after)) <= rank(statusOf(*in.before))) {
      problems.push_back({type + ".status", "can only move forward (" + statusOf(*in.before) +
                                                " -> " + statusOf(in.after) + " is not allowed)"});
    }
    return problems;
  };
}

std::optional<std::int64_t> dateMs(const FieldValues& f, std::string_view name) {
  const std::string* s = text(f, name);
  if (!s) {
    return std::nullopt;
  }
  const auto d = parseDate(*s);
  if (!d) {
    return std::nullopt;
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::sys_days(*d).time_since_epoch())
      .count();
}

/// Local authority and police force area are required on this type.
TypeRule areasRequired(std::string type) {
  return [type = std::move(type)](const RuleInput& in) {
    std::vector<FieldProblem> problems;
    for (const char* name : {"local_authority", "police_force_area"}) {
      if (!has(in.after, name)) {
        problems.push_back({type + "." + name, "is required"});
      }
    }
    return problems;
  };
}

EntityType childType() {
  EntityType t;
  t.name = std::string(safeguarding::kChildType);
  t.statuses = {"active", "closed"};
  t.fields = {
      field("name", FieldType::text, true),
      field("aliases", FieldType::list),
      field("date_of_birth", FieldType::date),
      field("estimated_age", FieldType::integer),
      field("gender", FieldType::text),
      field("needs", FieldType::list),
      field("learning_disability", FieldType::boolean),
      field("school", FieldType::text),
      enumField("care_status",
                {"none", "child_in_need", "child_protection_plan", "looked_after", "care_leaver"}),
      field("placing_authority", FieldType::text),
      field("agencies", FieldType::list),
      field("lead_professional", FieldType::text),
  };
  t.rules = {areasRequired(t.name), [](const RuleInput& in) {
               std::vector<FieldProblem> p;
               if (!has(in.after, "date_of_birth") && !has(in.after, "estimated_age")) {
                 p.push_back({"child.date_of_birth", "give a date of birth or an estimated age"});
               }
               return p;
             }};
  return t;
}

EntityType assessmentType() {
  EntityType t;
  t.name = std::string(safeguarding::kAssessmentType);
  t.statuses = {"draft", "submitted", "reviewed", "superseded"};
  t.riskField = "judged_level";
  t.signedField = "submitted_at";
  t.fields = {
      ref("child", std::string(safeguarding::kChildType), true, kFrozen),
      field("template_id", FieldType::text, true, kFrozen),
      field("template_version", FieldType::integer, true, kFrozen),
      field("template_hash", FieldType::text, false, kFrozen),
      field("level_order", FieldType::list, false, kFrozen),
      field("assessed_by", FieldType::text, true, kFrozen),
      field("participants", FieldType::list, false, kFrozen),
      field("answers", FieldType::text, false, kFrozen),
      field("score", FieldType::integer, false, kFrozen),
      field("computed_level", FieldType::text, false, kFrozen),
      field("explanation", FieldType::text, false, kFrozen),
      field("judged_level", FieldType::text, false, kFrozen),
      field("judgement_reason", FieldType::text, false, kFrozen),
      field("supervisor", FieldType::text, false, kFrozen),
      field("supervisor_signed_at", FieldType::dateTime, false, kFrozen),
      field("child_view", FieldType::text, false, kFrozen),
      field("carer_view", FieldType::text, false, kFrozen),
      field("analysis", FieldType::text, false, kFrozen),
      field("actions", FieldType::list, false, kFrozen),
      field("review_due", FieldType::date, false, kFrozen),
      field("submitted_at", FieldType::dateTime),
      field("reviewed_by", FieldType::text),
      field("reviewed_at", FieldType::dateTime),
      ref("superseded_by", std::string(safeguarding::kAssessmentType)),
  };
  t.dueAt = [](const FieldValues& f) -> std::optional<std::int64_t> {
    const std::string s = statusOf(f);
    return s == "submitted" || s == "reviewed" ? dateMs(f, "review_due") : std::nullopt;
  };
  t.rules = {
      forwardOnly(t.name, t.statuses),
      [](const RuleInput& in) {
        std::vector<FieldProblem> p;
        const std::string status = statusOf(in.after);
        const bool submitted = status != "draft";
        if (submitted != has(in.after, "submitted_at")) {
          p.push_back(
              {"assessment.submitted_at", "is set exactly when the assessment is submitted"});
        }
        if (submitted) {
          for (const char* name : {"computed_level", "judged_level", "review_due", "answers"}) {
            if (!has(in.after, name)) {
              p.push_back({std::string("assessment.") + name, "is required once submitted"});
            }
          }
        }
        if (status == "reviewed" &&
            (!has(in.after, "reviewed_by") || !has(in.after, "reviewed_at"))) {
          p.push_back({"assessment.reviewed_by", "a review needs the reviewer and the time"});
        }
        if (status == "superseded" && !has(in.after, "superseded_by")) {
          p.push_back({"assessment.superseded_by", "name the assessment that supersedes it"});
        }
        // Judgement can raise freely; lowering below the computed level needs a
        // written reason and a supervisor's sign-off.
        const std::string* computed = text(in.after, "computed_level");
        const std::string* judged = text(in.after, "judged_level");
        const auto it = in.after.find("level_order");
        const auto* order =
            it == in.after.end() ? nullptr : std::get_if<sync::StringList>(&it->second);
        if (computed && judged && order) {
          const auto rank = [&](const std::string& l) {
            return std::find(order->begin(), order->end(), l) - order->begin();
          };
          if (rank(*judged) == static_cast<std::ptrdiff_t>(order->size())) {
            p.push_back({"assessment.judged_level", "is not a level of the template"});
          } else if (rank(*judged) < rank(*computed)) {
            const std::string* reason = text(in.after, "judgement_reason");
            if (!reason || reason->empty()) {
              p.push_back({"assessment.judgement_reason",
                           "lowering the level below the computed one needs a reason"});
            }
            if (!has(in.after, "supervisor") || !has(in.after, "supervisor_signed_at")) {
              p.push_back({"assessment.supervisor",
                           "lowering the level below the computed one needs a supervisor's "
                           "sign-off"});
            }
          }
        }
        return p;
      },
  };
  return t;
}

EntityType contactNoteType() {
  EntityType t;
  t.name = std::string(safeguarding::kContactNoteType);
  t.statuses = {"draft", "signed"};
  t.signedField = "signed_at";
  t.searchFields = {"facts", "analysis", "child_words"};
  t.fields = {
      ref("child", std::string(safeguarding::kChildType), true, kFrozen),
      field("started_at", FieldType::dateTime, true, kFrozen),
      field("ended_at", FieldType::dateTime, false, kFrozen),
      field("place", FieldType::text, false, kFrozen),
      field("planned", FieldType::boolean, false, kFrozen),
      structList("present",
                 {field("name", FieldType::text, true), field("role", FieldType::text, true)},
                 kFrozen),
      field("seen_alone", FieldType::boolean, false, kFrozen),
      field("facts", FieldType::text, false, kFrozen),
      field("analysis", FieldType::text, false, kFrozen),
      field("child_words", FieldType::text, false, kFrozen),
      structList("actions",
                 {field("action", FieldType::text, true), field("owner", FieldType::text, true),
                  field("deadline", FieldType::date)},
                 kFrozen),
      field("signed_at", FieldType::dateTime),
      field("signed_by", FieldType::text, false, kFrozen),
      structList("addenda",
                 {field("at", FieldType::dateTime, true), field("by", FieldType::text, true),
                  field("text", FieldType::text, true)},
                 kAppend),
  };
  t.rules = {
      forwardOnly(t.name, t.statuses), [](const RuleInput& in) {
        std::vector<FieldProblem> p;
        const bool signedNow = has(in.after, "signed_at");
        if (signedNow != (statusOf(in.after) == "signed")) {
          p.push_back({"contact_note.status", "is signed exactly when signed_at is set"});
        }
        if (signedNow && !has(in.after, "signed_by")) {
          p.push_back({"contact_note.signed_by", "is required to sign"});
        }
        if (in.changed.contains("addenda") && !(in.before && has(*in.before, "signed_at"))) {
          p.push_back({"contact_note.addenda", "a draft is edited; addenda correct a signed note"});
        }
        return p;
      }};
  return t;
}

EntityType missingEpisodeType() {
  EntityType t;
  t.name = std::string(safeguarding::kMissingEpisodeType);
  t.statuses = {"missing", "returned", "closed"};
  t.fields = {
      ref("child", std::string(safeguarding::kChildType), true),
      field("reported_at", FieldType::dateTime, true),
      field("last_seen_at", FieldType::dateTime),
      field("last_seen_place", FieldType::text),
      field("returned_at", FieldType::dateTime),
      field("found_place", FieldType::text),
      field("police_reference", FieldType::text),
      enumField("police_risk_grading", {"no_apparent_risk", "low", "medium", "high"}),
  };
  t.rules = {forwardOnly(t.name, t.statuses), [](const RuleInput& in) {
               std::vector<FieldProblem> p;
               const auto reported = integer(in.after, "reported_at");
               const auto returned = integer(in.after, "returned_at");
               if ((statusOf(in.after) != "missing") != returned.has_value()) {
                 p.push_back(
                     {"missing_episode.returned_at", "is set exactly when the child has returned"});
               } else if (returned && reported && *returned < *reported) {
                 p.push_back({"missing_episode.returned_at", "is before the episode was reported"});
               }
               return p;
             }};
  return t;
}

EntityType returnHomeInterviewType() {
  EntityType t;
  t.name = std::string(safeguarding::kReturnHomeInterviewType);
  t.statuses = {"due", "offered", "done", "declined", "not_possible"};
  t.fields = {
      ref("episode", std::string(safeguarding::kMissingEpisodeType), true, kFrozen),
      ref("child", std::string(safeguarding::kChildType), true, kFrozen),
      field("returned_at", FieldType::dateTime, true, kFrozen),
      field("deadline", FieldType::dateTime, true, kFrozen),
      field("offered_at", FieldType::dateTime),
      field("interviewer", FieldType::text),
      field("independent", FieldType::boolean),
      field("held_at", FieldType::dateTime),
      field("outcome_reason", FieldType::text),
      field("where_went", FieldType::text),
      field("with_whom", FieldType::text),
      field("travel", FieldType::text),
      field("harm", FieldType::text),
      field("push_factors", FieldType::list),
      field("pull_factors", FieldType::list),
  };
  t.dueAt = [](const FieldValues& f) -> std::optional<std::int64_t> {
    const std::string s = statusOf(f);
    return s == "due" || s == "offered" ? integer(f, "deadline") : std::nullopt;
  };
  t.rules = {[](const RuleInput& in) {
    std::vector<FieldProblem> p;
    const auto returned = integer(in.after, "returned_at");
    const auto deadline = integer(in.after, "deadline");
    if (returned && deadline && *deadline != *returned + safeguarding::kReturnInterviewWindowMs) {
      p.push_back({"return_home_interview.deadline", "is 72 hours after the return"});
    }
    const std::string status = statusOf(in.after);
    if (in.before && in.changed.contains("status")) {
      const std::string was = statusOf(*in.before);
      if (was != "due" && was != "offered") {
        p.push_back({"return_home_interview.status", "is final once " + was});
      }
    }
    if (status == "offered" && !has(in.after, "offered_at")) {
      p.push_back({"return_home_interview.offered_at", "is required once offered"});
    }
    if (status == "done" && (!has(in.after, "held_at") || !has(in.after, "interviewer"))) {
      p.push_back(
          {"return_home_interview.held_at", "a held interview needs its time and interviewer"});
    }
    if ((status == "declined" || status == "not_possible") && !has(in.after, "outcome_reason")) {
      p.push_back({"return_home_interview.outcome_reason", "say why"});
    }
    return p;
  }};
  return t;
}

EntityType sharingDecisionType() {
  EntityType t;
  t.name = std::string(safeguarding::kSharingDecisionType);
  t.signedField = "decided_at";
  t.fields = {
      ref("child", std::string(safeguarding::kChildType), false, kFrozen),
      enumField("decision", {"share", "not_share"}, true, kFrozen),
      field("purpose", FieldType::text, true, kFrozen),
      field("recipients", FieldType::list, false, kFrozen),
      field("shared_items", FieldType::text, false, kFrozen),
      field("reason", FieldType::text, true, kFrozen),
      enumField("lawful_basis",
                {"safeguarding_dpa2018_sch1", "consent", "legal_obligation", "public_task",
                 "vital_interests", "not_applicable"},
                true, kFrozen),
      enumField("consent_status", {"given", "refused", "not_sought", "not_applicable"}, true,
                kFrozen),
      field("consent_not_sought_reason", FieldType::text, false, kFrozen),
      field("decided_by", FieldType::text, true, kFrozen),
      field("decided_at", FieldType::dateTime, true),
      field("manager_consulted", FieldType::text, false, kFrozen),
      field("method", FieldType::text, false, kFrozen),
      field("protected_identities", FieldType::list, false, kFrozen),
  };
  t.rules = {[](const RuleInput& in) {
    std::vector<FieldProblem> p;
    const std::string* decision = text(in.after, "decision");
    if (decision && *decision == "share") {
      const auto it = in.after.find("recipients");
      const auto* r = it == in.after.end() ? nullptr : std::get_if<sync::StringList>(&it->second);
      if (!r || r->empty()) {
        p.push_back({"sharing_decision.recipients", "a decision to share names the recipients"});
      }
      if (!has(in.after, "shared_items")) {
        p.push_back({"sharing_decision.shared_items", "record exactly what was shared"});
      }
    }
    const std::string* consent = text(in.after, "consent_status");
    if (consent && *consent == "not_sought" && !has(in.after, "consent_not_sought_reason")) {
      p.push_back({"sharing_decision.consent_not_sought_reason", "say why consent was not sought"});
    }
    return p;
  }};
  return t;
}

std::vector<FieldSpec> concernCommon() {
  return {refList("children", std::string(safeguarding::kChildType)),
          enumField("provenance", {"first_hand", "hearsay"}, true),
          field("seen_at", FieldType::dateTime), field("description", FieldType::text)};
}

EntityType concernType(std::string_view name, std::vector<FieldSpec> own) {
  EntityType t;
  t.name = std::string(name);
  t.statuses = {"active", "closed"};
  t.fields = std::move(own);
  for (FieldSpec& f : concernCommon()) {
    t.fields.push_back(std::move(f));
  }
  return t;
}

EntityType referralType() {
  EntityType t;
  t.name = std::string(safeguarding::kReferralType);
  t.statuses = {"queued", "sent", "acknowledged", "outcome"};
  t.fields = {
      ref("child", std::string(safeguarding::kChildType), true, kFrozen),
      enumField("destination", {"mash", "strategy_discussion", "mace", "police", "other_council"},
                true, kFrozen),
      field("receiving_authority", FieldType::text, false, kFrozen),
      field("reason", FieldType::text, true, kFrozen),
      ref("assessment", std::string(safeguarding::kAssessmentType), false, kFrozen),
      field("sent_at", FieldType::dateTime),
      field("acknowledged_at", FieldType::dateTime),
      field("outcome", FieldType::text),
      field("outcome_at", FieldType::dateTime),
  };
  t.rules = {forwardOnly(t.name, t.statuses), [](const RuleInput& in) {
               std::vector<FieldProblem> p;
               const std::string s = statusOf(in.after);
               const std::string* dest = text(in.after, "destination");
               if (dest && *dest == "other_council" && !has(in.after, "receiving_authority")) {
                 p.push_back({"referral.receiving_authority", "name the council referred to"});
               }
               const auto need = [&](const char* f, bool when) {
                 if (when && !has(in.after, f)) {
                   p.push_back({std::string("referral.") + f, "is required in status " + s});
                 }
               };
               need("sent_at", s != "queued");
               need("acknowledged_at", s == "acknowledged" || s == "outcome");
               need("outcome", s == "outcome");
               need("outcome_at", s == "outcome");
               return p;
             }};
  return t;
}

} // namespace

void registerSafeguardingTypes(Schema& schema) {
  schema.add(childType());
  schema.add(assessmentType());
  schema.add(contactNoteType());
  schema.add(missingEpisodeType());
  schema.add(returnHomeInterviewType());
  schema.add(sharingDecisionType());
  schema.add(concernType(safeguarding::kPersonOfConcernType,
                         {field("name", FieldType::text, true), field("nicknames", FieldType::list),
                          field("phone_numbers", FieldType::list)}));
  schema.add(concernType(safeguarding::kVehicleOfConcernType,
                         {field("registration", FieldType::text, true),
                          field("registration_partial", FieldType::boolean),
                          field("make", FieldType::text), field("model", FieldType::text),
                          field("colour", FieldType::text), field("marks", FieldType::text)}));
  EntityType location =
      concernType(safeguarding::kLocationOfConcernType,
                  {field("address", FieldType::text, true),
                   enumField("venue_type", {"hotel", "takeaway", "taxi_firm", "party_house", "park",
                                            "shop", "private_address", "other"})});
  location.rules.push_back(areasRequired(location.name));
  schema.add(std::move(location));
  schema.add(referralType());
}

} // namespace outpost::model
