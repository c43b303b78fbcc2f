// Children, contact notes, missing episodes and return-home interviews, sharing
// decisions, people/vehicles/places of concern and referrals: each command is one
// call of the SDK's typed safeguarding API (one vault transaction: values, journal,
// audit), or a read of it.

#include "commands.hpp"
#include "input.hpp"

#include <outpost/journal.hpp>

#include <chrono>

namespace outpost::field {

namespace {

std::string_view syncStateName(model::SyncState s) {
  switch (s) {
  case model::SyncState::pending:
    return "pending";
  case model::SyncState::synced:
    return "synced";
  case model::SyncState::conflict:
    return "conflict";
  case model::SyncState::rejected:
    return "rejected";
  }
  return "pending";
}

json textList(const std::vector<std::string>& items) { return items; }

std::string joined(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) {
    s += (s.empty() ? "" : ", ") + i;
  }
  return s;
}

/// Splits "A:B[:C]" into its parts (at most `parts`); the last part keeps any further ':'.
std::vector<std::string> splitColon(const std::string& text, std::size_t parts) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (out.size() + 1 < parts) {
    const std::size_t at = text.find(':', start);
    if (at == std::string::npos) {
      break;
    }
    out.push_back(text.substr(start, at - start));
    start = at + 1;
  }
  out.push_back(text.substr(start));
  return out;
}

// ---------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------

struct ChildOptions {
  std::string id;
  std::string name;
  std::vector<std::string> aliases;
  std::string dateOfBirth;
  std::optional<std::int64_t> age;
  std::string gender;
  std::vector<std::string> needs;
  std::optional<std::string> learningDisability; // yes/no
  std::string school;
  std::string careStatus;
  std::string placingAuthority;
  std::vector<std::string> agencies;
  std::string leadProfessional;
  std::string localAuthority;
  std::string policeForceArea;
  std::string status;
  bool all = false;
};

void addChildFieldOptions(CLI::App* cmd, ChildOptions& o) {
  addRepeated(cmd, "--alias", o.aliases, "Another name the child is known by (repeat)");
  cmd->add_option("--dob", o.dateOfBirth, "Date of birth, YYYY-MM-DD");
  cmd->add_option("--age", o.age, "Estimated age in years, when the date of birth is not known")
      ->check(CLI::Range(0, 25));
  cmd->add_option("--gender", o.gender, "Gender");
  addRepeated(cmd, "--need", o.needs, "A disability or learning need (repeat)");
  cmd->add_option("--learning-disability", o.learningDisability,
                  "yes or no: the child has a learning disability");
  cmd->add_option("--school", o.school, "School or college");
  cmd->add_option("--care-status", o.careStatus,
                  "none, child_in_need, child_protection_plan, looked_after or care_leaver");
  cmd->add_option("--placing-authority", o.placingAuthority, "Placing authority (looked after)");
  addRepeated(cmd, "--agency", o.agencies, "An agency involved (repeat)");
  cmd->add_option("--lead-professional", o.leadProfessional, "Lead professional");
  cmd->add_option("--local-authority", o.localAuthority,
                  "Local authority (default: the one given at init or enroll)");
  cmd->add_option("--police-force-area", o.policeForceArea,
                  "Police force area (default: the one given at init or enroll)");
}

std::optional<bool> learningDisability(const ChildOptions& o) {
  if (!o.learningDisability) {
    return std::nullopt;
  }
  const auto b = parseBool(*o.learningDisability);
  if (!b) {
    throw Failure(Errc::invalid_argument, "--learning-disability: give yes or no");
  }
  return b;
}

json childJson(const sg::Child& c, const model::Record& r) {
  return {{"id", c.id.toString()},
          {"name", c.name},
          {"aliases", textList(c.aliases)},
          {"dateOfBirth", c.dateOfBirth ? json(*c.dateOfBirth) : json(nullptr)},
          {"estimatedAge", c.estimatedAgeYears ? json(*c.estimatedAgeYears) : json(nullptr)},
          {"gender", c.gender},
          {"needs", textList(c.needs)},
          {"learningDisability", c.learningDisability},
          {"school", c.school},
          {"careStatus", c.careStatus},
          {"placingAuthority", c.placingAuthority},
          {"agencies", textList(c.agencies)},
          {"leadProfessional", c.leadProfessional},
          {"ownerTeam", c.scope.ownerTeam},
          {"localAuthority", c.scope.localAuthority},
          {"policeForceArea", c.scope.policeForceArea},
          {"status", c.status},
          {"syncState", syncStateName(r.syncState)},
          {"createdBy", r.text("created_by")},
          {"createdAt", isoTime(r.createdAtMs)},
          {"updatedAt", isoTime(r.updatedAtMs)}};
}

Result childAdd(Env& env, const ChildOptions& o) {
  const auto ld = learningDisability(o);
  return withWorkspace(env, [&](Workspace& ws) {
    sg::Child c;
    c.name = o.name;
    c.aliases = o.aliases;
    if (!o.dateOfBirth.empty()) {
      c.dateOfBirth = o.dateOfBirth;
    }
    c.estimatedAgeYears = o.age;
    c.gender = o.gender;
    c.needs = o.needs;
    c.learningDisability = ld.value_or(false);
    c.school = o.school;
    c.careStatus = o.careStatus;
    c.placingAuthority = o.placingAuthority;
    c.agencies = o.agencies;
    c.leadProfessional = o.leadProfessional;
    c.scope = ws.scope(o.localAuthority, o.policeForceArea);
    const sync::Uuid id = ws.domain().children.add(c);
    Result r;
    r.data = {{"child", id.toString()}, {"name", c.name}, {"team", c.scope.ownerTeam}};
    r.text = "recorded child " + id.toString() + " (team " + c.scope.ownerTeam + ")\n";
    return r;
  });
}

Result childEdit(Env& env, const ChildOptions& o) {
  const sync::Uuid id = parseId(o.id, "a child");
  const auto ld = learningDisability(o);
  model::FieldValues f;
  const auto text = [&](const char* field, const std::string& value) {
    if (!value.empty()) {
      f[field] = value;
    }
  };
  const auto list = [&](const char* field, const std::vector<std::string>& value) {
    if (!value.empty()) {
      f[field] = sync::StringList(value);
    }
  };
  text("name", o.name);
  list("aliases", o.aliases);
  text("date_of_birth", o.dateOfBirth);
  if (o.age) {
    f["estimated_age"] = *o.age;
  }
  text("gender", o.gender);
  list("needs", o.needs);
  if (ld) {
    f["learning_disability"] = *ld;
  }
  text("school", o.school);
  text("care_status", o.careStatus);
  text("placing_authority", o.placingAuthority);
  list("agencies", o.agencies);
  text("lead_professional", o.leadProfessional);
  text("local_authority", o.localAuthority);
  text("police_force_area", o.policeForceArea);
  text("status", o.status);
  if (f.empty()) {
    throw Failure(Errc::invalid_argument,
                  "nothing to change; give at least one field, e.g. --school or --care-status "
                  "(see 'child edit --help')");
  }
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(id, sg::kChildType, "child");
    ws.records().update(id, f);
    Result r;
    json changed = json::array();
    for (const auto& [name, value] : f) {
      changed.push_back(name);
    }
    r.data = {{"child", id.toString()}, {"changed", changed}};
    r.text = "updated child " + id.toString() + ": " + changed.dump() + "\n";
    return r;
  });
}

Result childList(Env& env, const ChildOptions& o) {
  return withWorkspace(env, [&](Workspace& ws) {
    model::RecordQuery q;
    q.type = std::string(sg::kChildType);
    if (!o.all) {
      q.status = "active";
    }
    q.limit = 200;
    Result r;
    json list = json::array();
    for (;;) {
      const model::IdPage page = ws.records().queryIds(q);
      for (const sync::Uuid& id : page.ids) {
        const auto rec = ws.records().view(id); // shown to the worker: audited
        if (!rec) {
          continue;
        }
        const std::string dob = rec->text("date_of_birth");
        const auto age = rec->integer("estimated_age");
        list.push_back({{"id", id.toString()},
                        {"name", rec->text("name")},
                        {"dateOfBirth", dob.empty() ? json(nullptr) : json(dob)},
                        {"estimatedAge", age ? json(*age) : json(nullptr)},
                        {"status", rec->text("status")},
                        {"syncState", syncStateName(rec->syncState)}});
        r.text += id.toString() + "  " + rec->text("name") + "  " +
                  (dob.empty() ? (age ? "about " + std::to_string(*age) : std::string("?")) : dob) +
                  "  " + rec->text("status") + "  " + std::string(syncStateName(rec->syncState)) +
                  "\n";
      }
      if (!page.next) {
        break;
      }
      q.after = page.next;
    }
    if (list.empty()) {
      r.text = "no children recorded on this device\n";
    }
    r.data = {{"children", list}};
    return r;
  });
}

Result childShow(Env& env, const ChildOptions& o) {
  const sync::Uuid id = parseId(o.id, "a child");
  return withWorkspace(env, [&](Workspace& ws) {
    const model::Record rec = ws.requireRecord(id, sg::kChildType, "child");
    const auto c = ws.domain().children.view(id);
    Result r;
    json linked = json::array();
    std::string linkedText;
    std::optional<std::string> after;
    for (;;) {
      const model::IdPage page = ws.domain().children.records(id, std::nullopt, 200, after);
      for (const sync::Uuid& lid : page.ids) {
        const auto l = ws.records().get(lid); // type and status only
        if (!l) {
          continue;
        }
        linked.push_back({{"id", lid.toString()},
                          {"type", l->type},
                          {"status", l->text("status")},
                          {"createdAt", isoTime(l->createdAtMs)},
                          {"syncState", syncStateName(l->syncState)}});
        linkedText += "  " + l->type + " " + lid.toString() + " " + l->text("status") + " (" +
                      std::string(syncStateName(l->syncState)) + ")\n";
      }
      if (!page.next) {
        break;
      }
      after = page.next;
    }
    json conflictFields = json::array();
    for (const model::FieldConflict& fc : ws.records().conflicts(id)) {
      conflictFields.push_back(fc.field);
    }
    r.data = {{"child", childJson(*c, rec)}, {"records", linked}, {"conflicts", conflictFields}};
    r.text = "child " + id.toString() + " (" + c->status + ", " +
             std::string(syncStateName(rec.syncState)) + ")\n  name: " + c->name + "\n";
    if (c->dateOfBirth) {
      r.text += "  date of birth: " + *c->dateOfBirth + "\n";
    }
    if (c->estimatedAgeYears) {
      r.text += "  estimated age: " + std::to_string(*c->estimatedAgeYears) + "\n";
    }
    if (!c->aliases.empty()) {
      r.text += "  also known as: " + joined(c->aliases) + "\n";
    }
    for (const auto& [label, value] :
         {std::pair<const char*, const std::string&>{"gender", c->gender},
          {"school", c->school},
          {"care status", c->careStatus},
          {"placing authority", c->placingAuthority},
          {"lead professional", c->leadProfessional}}) {
      if (!value.empty()) {
        r.text += std::string("  ") + label + ": " + value + "\n";
      }
    }
    if (c->learningDisability) {
      r.text += "  learning disability: yes\n";
    }
    r.text += "  team " + c->scope.ownerTeam + ", " + c->scope.localAuthority + ", " +
              c->scope.policeForceArea + "\n";
    if (!conflictFields.empty()) {
      r.text += "  fields in conflict: " + conflictFields.dump() + " (see 'conflicts list')\n";
    }
    r.text += linked.empty() ? "  no records linked yet\n"
                             : "  records (" + std::to_string(linked.size()) + "):\n" + linkedText;
    return r;
  });
}

// ---------------------------------------------------------------------------
// Contact notes
// ---------------------------------------------------------------------------

struct NoteOptions {
  std::string id;
  std::string child;
  std::string started = "now";
  std::string ended;
  std::string place;
  bool unplanned = false;
  bool seenAlone = false;
  std::vector<std::string> present;
  std::string facts;
  std::string analysis;
  std::string childWords;
  std::vector<std::string> actions;
  std::string text;
  std::string localAuthority;
  std::string policeForceArea;
};

Result noteAdd(Env& env, const NoteOptions& o) {
  const sync::Uuid child = parseId(o.child, "a child");
  const std::int64_t now = nowMs();
  sg::ContactNote n;
  n.child = child;
  n.startedAtMs = parseTime(o.started, now, "--started");
  if (!o.ended.empty()) {
    n.endedAtMs = parseTime(o.ended, now, "--ended");
    if (*n.endedAtMs < n.startedAtMs) {
      throw Failure(Errc::invalid_argument, "--ended is before --started");
    }
  }
  n.place = o.place;
  n.planned = !o.unplanned;
  n.seenAlone = o.seenAlone;
  for (const std::string& p : o.present) {
    const auto parts = splitColon(p, 2);
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      throw Failure(Errc::invalid_argument,
                    "--present '" + p + "': give NAME:ROLE, e.g. --present 'Sam:foster carer'");
    }
    n.present.push_back({parts[0], parts[1]});
  }
  for (const std::string& a : o.actions) {
    const auto parts = splitColon(a, 3);
    if (parts.size() < 2 || parts[0].empty() || parts[1].empty() ||
        (parts.size() == 3 && !model::parseDate(parts[2]))) {
      throw Failure(Errc::invalid_argument,
                    "--action '" + a + "': give ACTION:OWNER or ACTION:OWNER:YYYY-MM-DD");
    }
    n.actions.push_back({parts[0], parts[1], parts.size() == 3 ? parts[2] : std::string()});
  }
  n.facts = o.facts;
  n.analysis = o.analysis;
  n.childWords = o.childWords;
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(child, sg::kChildType, "child");
    n.scope = ws.scope(o.localAuthority, o.policeForceArea);
    const sync::Uuid id = ws.domain().notes.add(n);
    Result r;
    r.data = {{"note", id.toString()}, {"child", child.toString()}, {"status", "draft"}};
    r.text = "contact note " + id.toString() +
             " saved as a draft; sign it with 'note sign' (then it is frozen)\n";
    return r;
  });
}

Result noteSign(Env& env, const NoteOptions& o) {
  const sync::Uuid id = parseId(o.id, "a contact note");
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(id, sg::kContactNoteType, "contact note");
    ws.domain().notes.sign(id);
    const auto rec = ws.records().get(id);
    Result r;
    r.data = {{"note", id.toString()},
              {"status", "signed"},
              {"signedAt", isoTime(rec->integer("signed_at").value_or(0))},
              {"signedBy", rec->text("signed_by")}};
    r.text = "signed contact note " + id.toString() +
             "; it is frozen now: corrections are addenda ('note addendum')\n";
    return r;
  });
}

Result noteAddendum(Env& env, const NoteOptions& o) {
  const sync::Uuid id = parseId(o.id, "a contact note");
  if (o.text.empty()) {
    throw Failure(Errc::invalid_argument, "the addendum is empty; give its text");
  }
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(id, sg::kContactNoteType, "contact note");
    ws.domain().notes.addAddendum(id, o.text);
    const auto rec = ws.records().get(id);
    const auto* addenda = std::get_if<sync::StringList>(&rec->get("addenda"));
    Result r;
    r.data = {{"note", id.toString()}, {"addenda", addenda ? addenda->size() : 0}};
    r.text = "added an addendum to contact note " + id.toString() + "\n";
    return r;
  });
}

Result noteShow(Env& env, const NoteOptions& o) {
  const sync::Uuid id = parseId(o.id, "a contact note");
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(id, sg::kContactNoteType, "contact note");
    const sg::ContactNote n = *ws.domain().notes.view(id);
    json present = json::array();
    for (const auto& p : n.present) {
      present.push_back({{"name", p.name}, {"role", p.role}});
    }
    json actions = json::array();
    for (const auto& a : n.actions) {
      actions.push_back({{"action", a.action}, {"owner", a.owner}, {"deadline", a.deadline}});
    }
    json addenda = json::array();
    std::string addendaText;
    for (const auto& a : n.addenda) {
      addenda.push_back({{"at", isoTime(a.atMs)}, {"by", a.by}, {"text", a.text}});
      addendaText += "  addendum " + isoTime(a.atMs) + " by " + a.by + ": " + a.text + "\n";
    }
    Result r;
    r.data = {{"note", id.toString()},
              {"child", n.child.toString()},
              {"status", n.status},
              {"startedAt", isoTime(n.startedAtMs)},
              {"endedAt", n.endedAtMs ? json(isoTime(*n.endedAtMs)) : json(nullptr)},
              {"place", n.place},
              {"planned", n.planned},
              {"seenAlone", n.seenAlone},
              {"present", present},
              {"facts", n.facts},
              {"analysis", n.analysis},
              {"childWords", n.childWords},
              {"actions", actions},
              {"signedAt", n.signedAtMs ? json(isoTime(*n.signedAtMs)) : json(nullptr)},
              {"signedBy", n.signedBy},
              {"addenda", addenda}};
    r.text = "contact note " + id.toString() + " (" + n.status + ") for child " +
             n.child.toString() + "\n  " + isoTime(n.startedAtMs) + " at " + n.place +
             (n.planned ? ", planned" : ", unplanned") + (n.seenAlone ? ", seen alone" : "") +
             "\n  facts: " + n.facts + "\n";
    if (!n.childWords.empty()) {
      r.text += "  child's words: " + n.childWords + "\n";
    }
    if (!n.analysis.empty()) {
      r.text += "  analysis: " + n.analysis + "\n";
    }
    if (n.signedAtMs) {
      r.text += "  signed " + isoTime(*n.signedAtMs) + " by " + n.signedBy + "\n";
    }
    r.text += addendaText;
    return r;
  });
}

// ---------------------------------------------------------------------------
// Missing episodes and return-home interviews
// ---------------------------------------------------------------------------

struct MissingOptions {
  std::string id;
  std::string child;
  std::string reported = "now";
  std::string lastSeen;
  std::string lastSeenPlace;
  std::string policeReference;
  std::string policeRisk;
  std::string at = "now";
  std::string foundPlace;
  std::string interviewer;
  bool notIndependent = false;
  std::string whereWent;
  std::string withWhom;
  std::string travel;
  std::string harm;
  std::vector<std::string> pushFactors;
  std::vector<std::string> pullFactors;
  std::string reason;
  std::string localAuthority;
  std::string policeForceArea;
};

Result missingReport(Env& env, const MissingOptions& o) {
  const sync::Uuid child = parseId(o.child, "a child");
  const std::int64_t now = nowMs();
  sg::MissingEpisode e;
  e.child = child;
  e.reportedAtMs = parseTime(o.reported, now, "--reported");
  if (!o.lastSeen.empty()) {
    e.lastSeenAtMs = parseTime(o.lastSeen, now, "--last-seen");
  }
  e.lastSeenPlace = o.lastSeenPlace;
  e.policeReference = o.policeReference;
  e.policeRiskGrading = o.policeRisk;
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(child, sg::kChildType, "child");
    e.scope = ws.scope(o.localAuthority, o.policeForceArea);
    const sync::Uuid id = ws.domain().missing.report(e);
    Result r;
    r.data = {{"episode", id.toString()}, {"child", child.toString()}, {"status", "missing"}};
    r.text = "missing episode " + id.toString() +
             " reported; when the child is back: 'missing return " + id.toString() + "'\n";
    return r;
  });
}

Result missingReturn(Env& env, const MissingOptions& o) {
  const sync::Uuid id = parseId(o.id, "a missing episode");
  const std::int64_t now = nowMs();
  const std::int64_t at = parseTime(o.at, now, "--at");
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(id, sg::kMissingEpisodeType, "missing episode");
    const sync::Uuid interview = ws.domain().missing.recordReturn(id, at, o.foundPlace);
    const std::int64_t deadline = at + sg::kReturnInterviewWindowMs;
    const bool overdue = deadline < ws.clock().unixMillis();
    Result r;
    r.data = {{"episode", id.toString()},
              {"interview", interview.toString()},
              {"returnedAt", isoTime(at)},
              {"deadline", isoTime(deadline)},
              {"overdue", overdue}};
    r.text = "child returned " + isoTime(at) + "; return-home interview " + interview.toString() +
             " is due by " + isoTime(deadline) + (overdue ? " (ALREADY OVERDUE)" : "") + "\n";
    return r;
  });
}

Result interviewAction(Env& env, const MissingOptions& o, std::string_view what) {
  const sync::Uuid id = parseId(o.id, "a return-home interview");
  const std::int64_t at = parseTime(o.at, nowMs(), "--at");
  if ((what == "declined" || what == "not_possible") && o.reason.empty()) {
    throw Failure(Errc::invalid_argument, "say why with --reason");
  }
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(id, sg::kReturnHomeInterviewType, "return-home interview");
    sg::MissingEpisodes& m = ws.domain().missing;
    const std::string interviewer = o.interviewer.empty() ? ws.enrolled().workerId : o.interviewer;
    if (what == "offered") {
      m.offerInterview(id, at, interviewer);
    } else if (what == "done") {
      sg::InterviewOutcome out;
      out.interviewer = interviewer;
      out.independent = !o.notIndependent;
      out.whereWent = o.whereWent;
      out.withWhom = o.withWhom;
      out.travel = o.travel;
      out.harm = o.harm;
      out.pushFactors = o.pushFactors;
      out.pullFactors = o.pullFactors;
      m.completeInterview(id, at, out);
    } else if (what == "declined") {
      m.declineInterview(id, o.reason);
    } else {
      m.interviewNotPossible(id, o.reason);
    }
    Result r;
    r.data = {{"interview", id.toString()}, {"status", std::string(what)}};
    r.text = "return-home interview " + id.toString() + ": " + std::string(what) + "\n";
    return r;
  });
}

Result missingOverdue(Env& env, const MissingOptions&) {
  return withWorkspace(env, [&](Workspace& ws) {
    const std::int64_t now = ws.clock().unixMillis();
    json list = json::array();
    Result r;
    std::optional<std::string> after;
    for (;;) {
      const model::IdPage page = ws.domain().missing.overdueInterviews(200, after);
      for (const sync::Uuid& id : page.ids) {
        const auto rec = ws.records().get(id);
        if (!rec) {
          continue;
        }
        const std::int64_t deadline = rec->integer("deadline").value_or(0);
        const std::int64_t hours = (now - deadline) / 3'600'000;
        list.push_back({{"interview", id.toString()},
                        {"child", rec->text("child")},
                        {"episode", rec->text("episode")},
                        {"status", rec->text("status")},
                        {"returnedAt", isoTime(rec->integer("returned_at").value_or(0))},
                        {"deadline", isoTime(deadline)},
                        {"hoursOverdue", hours}});
        r.text += "interview " + id.toString() + " for child " + rec->text("child") + ": due " +
                  isoTime(deadline) + ", " + std::to_string(hours) + " h overdue (" +
                  rec->text("status") + ")\n";
      }
      if (!page.next) {
        break;
      }
      after = page.next;
    }
    if (list.empty()) {
      r.text = "no return-home interview is overdue\n";
    }
    r.data = {{"overdue", list}};
    return r;
  });
}

// ---------------------------------------------------------------------------
// Information sharing
// ---------------------------------------------------------------------------

struct ShareOptions {
  std::string child;
  std::string decision;
  std::string purpose;
  std::vector<std::string> recipients;
  std::string items;
  std::string reason;
  std::string lawfulBasis;
  std::string consent;
  std::string consentReason;
  std::string manager;
  std::string method;
  std::vector<std::string> protectedIdentities;
  std::string localAuthority;
  std::string policeForceArea;
};

Result shareRecord(Env& env, const ShareOptions& o) {
  std::optional<sync::Uuid> child;
  if (!o.child.empty()) {
    child = parseId(o.child, "a child");
  }
  return withWorkspace(env, [&](Workspace& ws) {
    if (child) {
      (void)ws.requireRecord(*child, sg::kChildType, "child");
    }
    sg::SharingDecision d;
    d.child = child;
    d.share = o.decision == "share";
    d.purpose = o.purpose;
    d.recipients = o.recipients;
    d.sharedItems = o.items;
    d.reason = o.reason;
    d.lawfulBasis = o.lawfulBasis;
    d.consentStatus = o.consent;
    d.consentNotSoughtReason = o.consentReason;
    d.decidedBy = ws.enrolled().workerId;
    d.managerConsulted = o.manager;
    d.method = o.method;
    d.protectedIdentities = o.protectedIdentities;
    d.scope = ws.scope(o.localAuthority, o.policeForceArea);
    const sync::Uuid id = ws.domain().sharing.record(d);
    Result r;
    r.data = {{"decision", id.toString()}, {"share", d.share}};
    r.text = std::string("recorded the decision ") + (d.share ? "to share" : "not to share") +
             ": " + id.toString() + (d.share ? " (audited as a share)" : "") + "\n";
    return r;
  });
}

// ---------------------------------------------------------------------------
// People, vehicles and places of concern
// ---------------------------------------------------------------------------

struct ConcernOptions {
  std::string kind;
  std::vector<std::string> children;
  std::string provenance;
  std::string seen;
  std::string description;
  std::string name;
  std::vector<std::string> nicknames;
  std::vector<std::string> phones;
  std::string registration;
  bool partial = false;
  std::string make;
  std::string model;
  std::string colour;
  std::string marks;
  std::string address;
  std::string venueType;
  std::string localAuthority;
  std::string policeForceArea;
  std::string concern;
  std::string child;
};

Result concernAdd(Env& env, const ConcernOptions& o) {
  std::vector<sync::Uuid> children;
  for (const std::string& c : o.children) {
    children.push_back(parseId(c, "a child"));
  }
  std::optional<std::int64_t> seen;
  if (!o.seen.empty()) {
    seen = parseTime(o.seen, nowMs(), "--seen");
  }
  const sg::Provenance provenance =
      o.provenance == "hearsay" ? sg::Provenance::hearsay : sg::Provenance::firstHand;
  return withWorkspace(env, [&](Workspace& ws) {
    for (const sync::Uuid& c : children) {
      (void)ws.requireRecord(c, sg::kChildType, "child");
    }
    const auto fill = [&](sg::Concern& c) {
      c.children = children;
      c.provenance = provenance;
      c.seenAtMs = seen;
      c.description = o.description;
      c.scope = ws.scope(o.localAuthority, o.policeForceArea);
    };
    sync::Uuid id;
    if (o.kind == "person") {
      sg::PersonOfConcern p;
      fill(p);
      p.name = o.name;
      p.nicknames = o.nicknames;
      p.phoneNumbers = o.phones;
      id = ws.domain().concerns.addPerson(p);
    } else if (o.kind == "vehicle") {
      sg::VehicleOfConcern v;
      fill(v);
      v.registration = o.registration;
      v.registrationPartial = o.partial;
      v.make = o.make;
      v.model = o.model;
      v.colour = o.colour;
      v.marks = o.marks;
      id = ws.domain().concerns.addVehicle(v);
    } else {
      sg::LocationOfConcern l;
      fill(l);
      l.address = o.address;
      l.venueType = o.venueType;
      id = ws.domain().concerns.addLocation(l);
    }
    Result r;
    r.data = {{"concern", id.toString()}, {"kind", o.kind}, {"children", o.children}};
    r.text = "recorded " + o.kind + " of concern " + id.toString() + " (" +
             (provenance == sg::Provenance::firstHand ? "first hand" : "hearsay") + ")\n";
    return r;
  });
}

Result concernLink(Env& env, const ConcernOptions& o) {
  const sync::Uuid concern = parseId(o.concern, "a person, vehicle or location of concern");
  const sync::Uuid child = parseId(o.child, "a child");
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(child, sg::kChildType, "child");
    const model::Record c = ws.requireRecord(concern, "", "person, vehicle or location of concern");
    ws.domain().concerns.linkChild(concern, child);
    Result r;
    r.data = {{"concern", concern.toString()}, {"type", c.type}, {"child", child.toString()}};
    r.text = "linked child " + child.toString() + " to " + c.type + " " + concern.toString() + "\n";
    return r;
  });
}

// ---------------------------------------------------------------------------
// Referrals
// ---------------------------------------------------------------------------

struct ReferralOptions {
  std::string child;
  std::string destination;
  std::string authority;
  std::string reason;
  std::string assessment;
  std::string localAuthority;
  std::string policeForceArea;
};

Result referralAdd(Env& env, const ReferralOptions& o) {
  const sync::Uuid child = parseId(o.child, "a child");
  std::optional<sync::Uuid> assessment;
  if (!o.assessment.empty()) {
    assessment = parseId(o.assessment, "an assessment");
  }
  return withWorkspace(env, [&](Workspace& ws) {
    (void)ws.requireRecord(child, sg::kChildType, "child");
    if (assessment) {
      (void)ws.requireRecord(*assessment, sg::kAssessmentType, "assessment");
    }
    sg::Referral ref;
    ref.child = child;
    ref.destination = o.destination;
    ref.receivingAuthority = o.authority;
    ref.reason = o.reason;
    ref.assessment = assessment;
    ref.scope = ws.scope(o.localAuthority, o.policeForceArea);
    const sync::Uuid id = ws.domain().referrals.queue(ref);
    Result r;
    r.data = {{"referral", id.toString()}, {"status", "queued"}, {"destination", o.destination}};
    r.text = "referral " + id.toString() + " to " + o.destination +
             " queued; it reaches the central team at the next sync\n";
    return r;
  });
}

void addScopeOptions(CLI::App* cmd, std::string& la, std::string& pfa) {
  cmd->add_option("--local-authority", la, "Local authority (default: from init or enroll)");
  cmd->add_option("--police-force-area", pfa, "Police force area (default: from init or enroll)");
}

} // namespace

void addRecordCommands(CLI::App& app, Action& action) {
  // child
  auto* child = app.add_subcommand("child", "Children and young people");
  child->require_subcommand(1);
  {
    auto o = std::make_shared<ChildOptions>();
    auto* add = child->add_subcommand("add", "Record a child");
    add->add_option("--name", o->name, "The child's name")->required();
    addChildFieldOptions(add, *o);
    onParsed(add, action, o, childAdd);
  }
  {
    auto o = std::make_shared<ChildOptions>();
    auto* edit = child->add_subcommand("edit", "Change a child's details (only the fields given)");
    edit->add_option("CHILD", o->id, "The child's id")->required();
    edit->add_option("--name", o->name, "The child's name");
    edit->add_option("--status", o->status, "active or closed");
    addChildFieldOptions(edit, *o);
    onParsed(edit, action, o, childEdit);
  }
  {
    auto o = std::make_shared<ChildOptions>();
    auto* list = child->add_subcommand("list", "List the children on this device");
    list->add_flag("--all", o->all, "Include closed records");
    onParsed(list, action, o, childList);
  }
  {
    auto o = std::make_shared<ChildOptions>();
    auto* show = child->add_subcommand("show", "Show a child and the records linked to them");
    show->add_option("CHILD", o->id, "The child's id")->required();
    onParsed(show, action, o, childShow);
  }

  // note
  auto* note = app.add_subcommand("note", "Contact notes");
  note->require_subcommand(1);
  {
    auto o = std::make_shared<NoteOptions>();
    auto* add = note->add_subcommand("add", "Write a contact note (a draft until signed)");
    add->add_option("--child", o->child, "The child's id")->required();
    add->add_option("--facts", o->facts, "What happened (facts, kept apart from analysis)")
        ->required();
    add->add_option("--place", o->place, "Where the contact took place");
    add->add_option("--started", o->started, "When it started (now, -2h, YYYY-MM-DDTHH:MM)")
        ->capture_default_str();
    add->add_option("--ended", o->ended, "When it ended");
    add->add_flag("--unplanned", o->unplanned, "The contact was not planned");
    add->add_flag("--seen-alone", o->seenAlone, "The child was seen alone");
    addRepeated(add, "--present", o->present, "Who was present, NAME:ROLE (repeat)");
    add->add_option("--analysis", o->analysis, "The worker's analysis");
    add->add_option("--child-words", o->childWords, "The child's own words");
    addRepeated(add, "--action", o->actions, "An action, ACTION:OWNER[:YYYY-MM-DD] (repeat)");
    addScopeOptions(add, o->localAuthority, o->policeForceArea);
    onParsed(add, action, o, noteAdd);
  }
  {
    auto o = std::make_shared<NoteOptions>();
    auto* sign = note->add_subcommand("sign", "Sign a note: it is frozen from then on");
    sign->add_option("NOTE", o->id, "The note's id")->required();
    onParsed(sign, action, o, noteSign);
  }
  {
    auto o = std::make_shared<NoteOptions>();
    auto* addendum = note->add_subcommand("addendum", "Add a correction to a signed note");
    addendum->add_option("NOTE", o->id, "The note's id")->required();
    addendum->add_option("TEXT", o->text, "The correction")->required();
    onParsed(addendum, action, o, noteAddendum);
  }
  {
    auto o = std::make_shared<NoteOptions>();
    auto* show = note->add_subcommand("show", "Show a contact note");
    show->add_option("NOTE", o->id, "The note's id")->required();
    onParsed(show, action, o, noteShow);
  }

  // missing
  auto* missing = app.add_subcommand("missing", "Missing episodes and return-home interviews");
  missing->require_subcommand(1);
  {
    auto o = std::make_shared<MissingOptions>();
    auto* report = missing->add_subcommand("report", "Report a child missing");
    report->add_option("--child", o->child, "The child's id")->required();
    report->add_option("--reported", o->reported, "When it was reported (now, -2d, ...)")
        ->capture_default_str();
    report->add_option("--last-seen", o->lastSeen, "When the child was last seen");
    report->add_option("--last-seen-place", o->lastSeenPlace, "Where the child was last seen");
    report->add_option("--police-ref", o->policeReference, "Police reference");
    report->add_option("--police-risk", o->policeRisk, "no_apparent_risk, low, medium or high");
    addScopeOptions(report, o->localAuthority, o->policeForceArea);
    onParsed(report, action, o, missingReport);
  }
  {
    auto o = std::make_shared<MissingOptions>();
    auto* ret = missing->add_subcommand(
        "return", "The child is back: a return-home interview is due within 72 hours");
    ret->add_option("EPISODE", o->id, "The missing episode's id")->required();
    ret->add_option("--at", o->at, "When the child returned (now, -4d, ...)")
        ->capture_default_str();
    ret->add_option("--found-place", o->foundPlace, "Where the child was found");
    onParsed(ret, action, o, missingReturn);
  }
  {
    auto* interview = missing->add_subcommand("interview", "Return-home interviews");
    interview->require_subcommand(1);
    for (const auto& [name, help, what] :
         {std::tuple<const char*, const char*, const char*>{"offer", "Offer the interview",
                                                            "offered"},
          {"done", "Record the interview held", "done"},
          {"declined", "The child declined it", "declined"},
          {"not-possible", "It could not happen", "not_possible"}}) {
      auto o = std::make_shared<MissingOptions>();
      auto* cmd = interview->add_subcommand(name, help);
      const std::string status = what;
      cmd->add_option("INTERVIEW", o->id, "The interview's id")->required();
      if (status == "offered" || status == "done") {
        cmd->add_option("--at", o->at, "When (now, -1d, ...)")->capture_default_str();
        cmd->add_option("--interviewer", o->interviewer, "Who (default: this device's worker)");
      }
      if (status == "done") {
        cmd->add_flag("--not-independent", o->notIndependent,
                      "The interviewer was not independent");
        cmd->add_option("--where", o->whereWent, "Where the child went");
        cmd->add_option("--with", o->withWhom, "With whom");
        cmd->add_option("--travel", o->travel, "How they travelled");
        cmd->add_option("--harm", o->harm, "Harm suffered");
        addRepeated(cmd, "--push", o->pushFactors, "A push factor (repeat)");
        addRepeated(cmd, "--pull", o->pullFactors, "A pull factor (repeat)");
      }
      if (status == "declined" || status == "not_possible") {
        cmd->add_option("--reason", o->reason, "Why")->required();
      }
      onParsed(cmd, action, o, [status](Env& env, const MissingOptions& opts) {
        return interviewAction(env, opts, status);
      });
    }
  }
  {
    auto o = std::make_shared<MissingOptions>();
    auto* overdue =
        missing->add_subcommand("overdue", "Return-home interviews past their 72-hour deadline");
    onParsed(overdue, action, o, missingOverdue);
  }

  // share
  auto* share = app.add_subcommand("share", "Information-sharing decisions");
  share->require_subcommand(1);
  {
    auto o = std::make_shared<ShareOptions>();
    auto* rec = share->add_subcommand(
        "record", "Record a decision to share or not to share (both are recorded)");
    rec->add_option("--decision", o->decision, "share or not_share")
        ->required()
        ->check(CLI::IsMember({"share", "not_share"}));
    rec->add_option("--child", o->child, "The child concerned");
    rec->add_option("--purpose", o->purpose, "Why the information is (not) shared")->required();
    rec->add_option("--reason", o->reason, "The reasoning")->required();
    rec->add_option("--lawful-basis", o->lawfulBasis,
                    "safeguarding_dpa2018_sch1, consent, legal_obligation, public_task, "
                    "vital_interests or not_applicable")
        ->required();
    rec->add_option("--consent", o->consent, "given, refused, not_sought or not_applicable")
        ->required();
    rec->add_option("--consent-reason", o->consentReason, "Why consent was not sought");
    addRepeated(rec, "--recipient", o->recipients, "Who receives it (repeat)");
    rec->add_option("--items", o->items, "Exactly what was shared");
    rec->add_option("--manager", o->manager, "The manager consulted");
    rec->add_option("--method", o->method, "How it was sent");
    addRepeated(rec, "--protect", o->protectedIdentities,
                "A person whose identity must be protected (repeat)");
    addScopeOptions(rec, o->localAuthority, o->policeForceArea);
    onParsed(rec, action, o, shareRecord);
  }

  // concern
  auto* concern = app.add_subcommand("concern", "People, vehicles and places of concern");
  concern->require_subcommand(1);
  {
    auto o = std::make_shared<ConcernOptions>();
    auto* add = concern->add_subcommand("add", "Record a person, vehicle or place of concern");
    add->add_option("KIND", o->kind, "person, vehicle or location")
        ->required()
        ->check(CLI::IsMember({"person", "vehicle", "location"}));
    add->add_option("--provenance", o->provenance, "How the worker knows: first_hand or hearsay")
        ->required()
        ->check(CLI::IsMember({"first_hand", "hearsay"}));
    addRepeated(add, "--child", o->children, "A child linked to it (repeat)");
    add->add_option("--seen", o->seen, "When it was seen (now, -2d, ...)");
    add->add_option("--description", o->description, "Description");
    add->add_option("--name", o->name, "person: the name");
    addRepeated(add, "--nickname", o->nicknames, "person: a nickname (repeat)");
    addRepeated(add, "--phone", o->phones, "person: a phone number (repeat)");
    add->add_option("--registration", o->registration, "vehicle: registration (full or partial)");
    add->add_flag("--partial", o->partial, "vehicle: the registration is partial");
    add->add_option("--make", o->make, "vehicle: make");
    add->add_option("--model", o->model, "vehicle: model");
    add->add_option("--colour", o->colour, "vehicle: colour");
    add->add_option("--marks", o->marks, "vehicle: distinguishing marks");
    add->add_option("--address", o->address, "location: the address");
    add->add_option("--venue-type", o->venueType,
                    "location: hotel, takeaway, taxi_firm, party_house, park, shop, "
                    "private_address or other");
    addScopeOptions(add, o->localAuthority, o->policeForceArea);
    onParsed(add, action, o, concernAdd);
  }
  {
    auto o = std::make_shared<ConcernOptions>();
    auto* link = concern->add_subcommand("link", "Link a child to a person, vehicle or place");
    link->add_option("CONCERN", o->concern, "The concern's id")->required();
    link->add_option("CHILD", o->child, "The child's id")->required();
    onParsed(link, action, o, concernLink);
  }

  // referral
  auto* referral = app.add_subcommand("referral", "Referrals and escalations");
  referral->require_subcommand(1);
  {
    auto o = std::make_shared<ReferralOptions>();
    auto* add = referral->add_subcommand("add", "Queue a referral (sent at the next sync)");
    add->add_option("--child", o->child, "The child's id")->required();
    add->add_option("--to", o->destination,
                    "mash, strategy_discussion, mace, police or other_council")
        ->required()
        ->check(CLI::IsMember({"mash", "strategy_discussion", "mace", "police", "other_council"}));
    add->add_option("--reason", o->reason, "Why")->required();
    add->add_option("--authority", o->authority, "The receiving council (other_council)");
    add->add_option("--assessment", o->assessment, "The assessment it rests on");
    addScopeOptions(add, o->localAuthority, o->policeForceArea);
    onParsed(add, action, o, referralAdd);
  }
}

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace outpost::field
