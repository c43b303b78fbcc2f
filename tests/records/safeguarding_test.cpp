#include "records_fixture.hpp"

#include <outpost/safeguarding.hpp>

#include <doctest/doctest.h>

using namespace outpost;
using namespace outpost::test;
using namespace outpost::safeguarding;
using namespace std::chrono_literals;

namespace {

Scope scope() { return Scope{"team-1", "Leeds", "West Yorkshire", "looked_after_75y"}; }

struct Domain : RecordsFixture {
  model::TemplateCatalog catalog = model::TemplateCatalog::withBuiltins();
  Children children{*store};
  Assessments assessments{*store, catalog, clock};
  ContactNotes notes{*store, clock};
  MissingEpisodes missing{*store, clock};
  SharingDecisions sharing{*store, clock};
  Concerns concerns{*store};
  Referrals referrals{*store, clock};

  Uuid child() {
    Child c;
    c.name = "Jay";
    c.dateOfBirth = "2013-05-01";
    c.scope = scope();
    return children.add(c);
  }
  model::AssessmentContext context(std::int64_t age = 14) {
    model::AssessmentContext ctx;
    ctx.childAgeYears = age;
    ctx.today = model::Date{std::chrono::year{2026}, std::chrono::month{1}, std::chrono::day{15}};
    return ctx;
  }
  static model::Answers baseline() {
    model::Answers a;
    a.values["dis_status"] = std::string("none");
    a.values["voice_child"] = std::string("(the child's words)");
    a.values["voice_analysis"] = std::string("(analysis)");
    return a;
  }
  /// A draft with one current serious indicator (5 points: "no current risk" for
  /// a 14-year-old; the under-13 override makes it "significant" at 12).
  Uuid draft(const Uuid& c) {
    const Uuid id = assessments.start({c, "cse-screening", 1, "worker-7", {"Jay"}, scope()});
    auto a = baseline();
    a.values["pl_cars_unknown_adults"] = true;
    a.recency["ind_pl_cars_unknown_adults"] = model::Recency::current;
    assessments.saveAnswers(id, a);
    return id;
  }
};

} // namespace

TEST_SUITE("records.child") {
  TEST_CASE("a child is recorded with details and read back") {
    Domain d;
    Child c;
    c.name = "Jay";
    c.aliases = {"J"};
    c.estimatedAgeYears = 14;
    c.careStatus = "looked_after";
    c.learningDisability = true;
    c.agencies = {"CAMHS"};
    c.scope = scope();
    const Uuid id = d.children.add(c);
    const auto v = d.children.view(id);
    REQUIRE(v);
    CHECK(v->name == "Jay");
    CHECK(v->aliases == std::vector<std::string>{"J"});
    CHECK(v->estimatedAgeYears == 14);
    CHECK(v->learningDisability);
    CHECK(v->careStatus == "looked_after");
    CHECK(v->scope.policeForceArea == "West Yorkshire");
    CHECK(v->scope.retentionClass == "looked_after_75y");
    CHECK(v->status == "active");
  }

  TEST_CASE("a child needs a date of birth or an estimated age, and both areas") {
    Domain d;
    Child c;
    c.name = "Jay";
    c.scope = scope();
    CHECK(errorMessage([&] { (void)d.children.add(c); }).find("child.date_of_birth") !=
          std::string::npos);
    c.estimatedAgeYears = 15;
    c.scope.policeForceArea.clear();
    CHECK(errorMessage([&] { (void)d.children.add(c); }).find("child.police_force_area") !=
          std::string::npos);
    c.careStatus = "fostered";
    CHECK(errorCode([&] { (void)d.children.add(c); }) == Errc::validation);
  }

  TEST_CASE("viewing a child is audited as a view") {
    Domain d;
    const Uuid id = d.child();
    (void)d.children.view(id);
    const auto events = d.store->audit().events(0, 100);
    CHECK(events.back().action == model::AuditAction::view);
    CHECK(events.back().record == id);
  }
}

TEST_SUITE("records.assessment") {
  TEST_CASE("an assessment is pinned to its template and scored at submission") {
    Domain d;
    const Uuid c = d.child();
    const Uuid id = d.draft(c);
    const auto explanation = d.assessments.submit(id, {}, d.context(12));
    CHECK(explanation.level == "significant"); // under-13 override
    const auto a = d.assessments.view(id);
    REQUIRE(a);
    CHECK(a->templateId == "cse-screening");
    CHECK(a->templateVersion == 1);
    CHECK(a->status == "submitted");
    CHECK(a->computedLevel == "significant");
    CHECK(a->judgedLevel == "significant");
    CHECK(a->score == 5);
    CHECK(a->explanation.find("significant") != std::string::npos);
    CHECK(a->reviewDue == "2026-02-15"); // sooner: a current serious indicator
    CHECK(a->answers.values.size() == 4);
  }

  TEST_CASE("an unknown template version cannot be started") {
    Domain d;
    const Uuid c = d.child();
    CHECK(errorCode([&] {
            (void)d.assessments.start({c, "cse-screening", 99, "w", {}, scope()});
          }) == Errc::validation);
  }

  TEST_CASE("incomplete answers are refused at submission, naming the question") {
    Domain d;
    const Uuid id = d.assessments.start({d.child(), "cse-screening", 1, "w", {}, scope()});
    CHECK(errorMessage([&] {
            (void)d.assessments.submit(id, {}, d.context());
          }).find("assessment.answers.dis_status") != std::string::npos);
    CHECK(d.assessments.view(id)->status == "draft");
  }

  TEST_CASE("a submitted assessment's answers are locked") {
    Domain d;
    const Uuid id = d.draft(d.child());
    (void)d.assessments.submit(id, {}, d.context());
    CHECK(errorMessage([&] {
            d.assessments.saveAnswers(id, Domain::baseline());
          }).find("assessment.answers: is signed and frozen") != std::string::npos);
    CHECK(errorCode([&] { (void)d.assessments.submit(id, {}, d.context()); }) == Errc::validation);
  }

  TEST_CASE("judgement can raise the level freely") {
    Domain d;
    const Uuid id = d.draft(d.child());
    Judgement j;
    j.level = "elevated";
    (void)d.assessments.submit(id, j, d.context(14));
    CHECK(d.assessments.view(id)->computedLevel == "no_current_risk");
    CHECK(d.assessments.view(id)->judgedLevel == "elevated");
  }

  TEST_CASE("lowering the level needs a reason and a supervisor's sign-off") {
    Domain d;
    const Uuid id = d.draft(d.child());
    Judgement j;
    j.level = "elevated";
    SUBCASE("without a reason") {
      j.supervisor = "sup-1";
      j.supervisorSignedAtMs = d.clock.unixMillis();
      CHECK(errorMessage([&] {
              (void)d.assessments.submit(id, j, d.context(12));
            }).find("assessment.judgement_reason") != std::string::npos);
    }
    SUBCASE("without a supervisor") {
      j.reason = "disclosure retracted and verified";
      CHECK(errorMessage([&] {
              (void)d.assessments.submit(id, j, d.context(12));
            }).find("assessment.supervisor") != std::string::npos);
    }
    CHECK(d.assessments.view(id)->status == "draft");
    SUBCASE("with both it is accepted") {
      j.reason = "reason";
      j.supervisor = "sup-1";
      j.supervisorSignedAtMs = d.clock.unixMillis();
      (void)d.assessments.submit(id, j, d.context(12));
      CHECK(d.assessments.view(id)->judgedLevel == "elevated");
    }
  }

  TEST_CASE("a judged level must be one of the template's levels") {
    Domain d;
    const Uuid id = d.draft(d.child());
    Judgement j;
    j.level = "catastrophic";
    CHECK(errorMessage([&] {
            (void)d.assessments.submit(id, j, d.context());
          }).find("assessment.judged_level") != std::string::npos);
  }

  TEST_CASE("the lifecycle only moves forward: submitted, reviewed, superseded") {
    Domain d;
    const Uuid c = d.child();
    const Uuid id = d.draft(c);
    CHECK(errorCode([&] { d.assessments.review(id, "sup-1"); }) == Errc::validation);
    (void)d.assessments.submit(id, {}, d.context());
    d.assessments.review(id, "sup-1");
    CHECK(d.assessments.view(id)->status == "reviewed");
    CHECK(errorCode([&] {
            d.store->update(id, {{"status", std::string("submitted")}});
          }) == Errc::validation);
    const Uuid next = d.draft(c);
    CHECK(errorCode([&] { d.assessments.supersede(id, d.draft(d.child())); }) == Errc::validation);
    d.assessments.supersede(id, next);
    const auto a = d.assessments.view(id);
    CHECK(a->status == "superseded");
    CHECK(a->supersededBy == next);
  }

  TEST_CASE("review due dates and levels are queryable") {
    Domain d;
    const Uuid c = d.child();
    const Uuid a = d.draft(c);
    (void)d.assessments.submit(a, {}, d.context(12)); // due 2026-02-15
    const Uuid b = d.draft(c);
    Judgement raise;
    raise.level = "at_risk";
    (void)d.assessments.submit(b, raise, d.context(14));
    const std::int64_t may2026 = 1'777'593'600'000;
    CHECK(d.assessments.reviewsDue(may2026).ids.size() == 2);
    CHECK(d.assessments.reviewsDue(1'767'225'600'000).ids.empty());
    CHECK(d.assessments.atLevel("significant").ids == std::vector<Uuid>{a});
    CHECK(d.assessments.atLevel("at_risk").ids == std::vector<Uuid>{b});
    d.assessments.supersede(a, b);
    CHECK(d.assessments.reviewsDue(may2026).ids == std::vector<Uuid>{b});
  }
}

TEST_SUITE("records.contact_note") {
  ContactNote note(const Uuid& child) {
    ContactNote n;
    n.child = child;
    n.startedAtMs = 1'767'225'600'000;
    n.place = "cafe";
    n.present = {{"Jay", "child"}, {"Sam", "worker"}};
    n.seenAlone = true;
    n.facts = "Met at the cafe; talked about school";
    n.childWords = "I stay at a friend's flat";
    n.actions = {{"call school", "worker-7", "2026-01-10"}};
    n.scope = scope();
    return n;
  }

  TEST_CASE("a draft note is editable, and signing freezes it") {
    Domain d;
    ContactNote n = note(d.child());
    n.id = d.notes.add(n);
    n.facts = "Met at the cafe; talked about school and a new older friend";
    d.notes.edit(n);
    CHECK(d.notes.view(n.id)->facts == n.facts);
    d.clock.advance(1h);
    d.notes.sign(n.id);
    const auto signedNote = d.notes.view(n.id);
    CHECK(signedNote->status == "signed");
    CHECK(signedNote->signedBy == "worker-7");
    CHECK(signedNote->signedAtMs == d.clock.unixMillis());
    CHECK(signedNote->present.size() == 2);
    CHECK(signedNote->actions.front().deadline == "2026-01-10");
    n.facts = "rewritten";
    CHECK(errorMessage([&] { d.notes.edit(n); }).find("contact_note.facts: is signed and frozen") !=
          std::string::npos);
    CHECK(errorCode([&] { d.notes.sign(n.id); }) == Errc::validation);
  }

  TEST_CASE("corrections to a signed note are addenda, appended only") {
    Domain d;
    const Uuid id = d.notes.add(note(d.child()));
    CHECK(errorMessage([&] { d.notes.addAddendum(id, "x"); }).find("contact_note.addenda") !=
          std::string::npos);
    d.notes.sign(id);
    d.notes.addAddendum(id, "The cafe was on Park Road, not Station Road.");
    d.notes.addAddendum(id, "Second correction.");
    const auto n = d.notes.view(id);
    REQUIRE(n->addenda.size() == 2);
    CHECK(n->addenda[0].by == "worker-7");
    CHECK(n->addenda[1].text == "Second correction.");
    CHECK(errorCode([&] {
            d.store->update(id, {{"addenda", sync::StringList{}}});
          }) == Errc::validation);
  }

  TEST_CASE("notes are found by full-text search over facts and the child's words") {
    Domain d;
    const Uuid c = d.child();
    const Uuid a = d.notes.add(note(c));
    ContactNote other = note(c);
    other.facts = "Home visit; mother present";
    other.childWords = "nothing to say";
    const Uuid b = d.notes.add(other);
    CHECK(d.notes.search("flat").ids == std::vector<Uuid>{a});
    CHECK(d.notes.search("mother").ids == std::vector<Uuid>{b});
    CHECK(d.notes.search("cafe OR mother").ids.size() == 2);
    // an edit re-indexes the draft
    other.id = b;
    other.facts = "Home visit; grandmother present";
    d.notes.edit(other);
    CHECK(d.notes.search("mother").ids.empty());
    CHECK(d.notes.search("grandmother").ids == std::vector<Uuid>{b});
  }
}

TEST_SUITE("records.missing_episode") {
  TEST_CASE("a return creates a return-home interview due 72 hours later") {
    Domain d;
    const Uuid c = d.child();
    const Uuid e =
        d.missing.report({{}, c, d.clock.unixMillis(), {}, "bus station", "MP/1", "high", scope()});
    d.clock.advance(20h);
    const std::int64_t returned = d.clock.unixMillis();
    const Uuid rhi = d.missing.recordReturn(e, returned, "friend's flat");
    const auto r = d.store->get(rhi);
    REQUIRE(r);
    CHECK(r->integer("deadline") == returned + kReturnInterviewWindowMs);
    CHECK(r->text("status") == "due");
    CHECK(d.store->get(e)->text("status") == "returned");
    CHECK(d.missing.overdueInterviews().ids.empty());
    d.clock.advance(72h);
    CHECK(d.missing.overdueInterviews().ids.empty()); // due exactly now: not yet overdue
    d.clock.advance(1ms);
    CHECK(d.missing.overdueInterviews().ids == std::vector<Uuid>{rhi});
  }

  TEST_CASE("an interview held leaves the overdue list, declined needs a reason") {
    Domain d;
    const Uuid c = d.child();
    const Uuid e1 = d.missing.report({{}, c, d.clock.unixMillis(), {}, {}, {}, {}, scope()});
    const Uuid e2 = d.missing.report({{}, c, d.clock.unixMillis(), {}, {}, {}, {}, scope()});
    const Uuid r1 = d.missing.recordReturn(e1, d.clock.unixMillis(), "");
    const Uuid r2 = d.missing.recordReturn(e2, d.clock.unixMillis() + 1000, "");
    d.clock.advance(100h);
    CHECK(d.missing.overdueInterviews().ids == std::vector<Uuid>{r1, r2});
    d.missing.offerInterview(r1, d.clock.unixMillis(), "indep-1");
    CHECK(d.missing.overdueInterviews().ids.size() == 2); // offered is not held
    d.missing.completeInterview(
        r1, d.clock.unixMillis(),
        {"indep-1", true, "town", "older boys", "taxi", "", {"rows at home"}, {"gifts"}});
    CHECK(d.missing.overdueInterviews().ids == std::vector<Uuid>{r2});
    CHECK(errorCode([&] { d.missing.declineInterview(r2, ""); }) == Errc::validation);
    d.missing.declineInterview(r2, "child refused to meet");
    CHECK(d.missing.overdueInterviews().ids.empty());
    CHECK(errorCode([&] { d.missing.offerInterview(r2, d.clock.unixMillis(), "x"); }) ==
          Errc::validation);
  }

  TEST_CASE("the deadline cannot be set to anything but 72 hours after the return") {
    Domain d;
    const Uuid c = d.child();
    const Uuid e = d.missing.report({{}, c, d.clock.unixMillis(), {}, {}, {}, {}, scope()});
    const Uuid rhi = d.missing.recordReturn(e, d.clock.unixMillis(), "");
    CHECK(errorCode([&] {
            d.store->update(rhi, {{"deadline", d.clock.unixMillis() + 1}});
          }) == Errc::validation);
  }
}

TEST_SUITE("records.sharing") {
  TEST_CASE("both decisions are recorded, sharing is audited as a share") {
    Domain d;
    const Uuid c = d.child();
    SharingDecision share;
    share.child = c;
    share.share = true;
    share.purpose = "strategy discussion";
    share.recipients = {"police"};
    share.sharedItems = "the two contact notes of January";
    share.reason = "risk of significant harm";
    share.lawfulBasis = "safeguarding_dpa2018_sch1";
    share.consentStatus = "not_sought";
    share.consentNotSoughtReason = "seeking consent would increase the risk";
    share.decidedBy = "worker-7";
    share.managerConsulted = "mgr-2";
    share.scope = scope();
    const Uuid id = d.sharing.record(share);
    CHECK(d.store->audit().events(0, 100).back().action == model::AuditAction::share);
    CHECK(errorCode([&] {
            d.store->update(id, {{"reason", std::string("x")}});
          }) == Errc::validation);

    SharingDecision noShare = share;
    noShare.share = false;
    noShare.recipients.clear();
    noShare.sharedItems.clear();
    (void)d.sharing.record(noShare);
    CHECK(d.store->audit().events(0, 100).back().action == model::AuditAction::create);
  }

  TEST_CASE("a decision to share names recipients and what, consent not sought needs why") {
    Domain d;
    SharingDecision s;
    s.share = true;
    s.purpose = "p";
    s.reason = "r";
    s.lawfulBasis = "consent";
    s.consentStatus = "not_sought";
    s.decidedBy = "w";
    s.scope = scope();
    const std::string m = errorMessage([&] { (void)d.sharing.record(s); });
    CHECK(m.find("sharing_decision.recipients") != std::string::npos);
    CHECK(m.find("sharing_decision.shared_items") != std::string::npos);
    CHECK(m.find("sharing_decision.consent_not_sought_reason") != std::string::npos);
  }
}

TEST_SUITE("records.concerns") {
  TEST_CASE("people, vehicles and places of concern carry provenance and link to children") {
    Domain d;
    const Uuid c1 = d.child();
    const Uuid c2 = d.child();
    PersonOfConcern p;
    p.name = "'Dee'";
    p.children = {c1};
    p.provenance = Provenance::hearsay;
    p.scope = scope();
    const Uuid person = d.concerns.addPerson(p);
    VehicleOfConcern v;
    v.registration = "AB12";
    v.registrationPartial = true;
    v.colour = "silver";
    v.scope = scope();
    const Uuid vehicle = d.concerns.addVehicle(v);
    d.concerns.linkChild(vehicle, c1);
    d.concerns.linkChild(vehicle, c2);
    d.concerns.linkChild(vehicle, c2); // once only
    LocationOfConcern l;
    l.address = "1 High St";
    l.venueType = "takeaway";
    l.scope = scope();
    l.scope.localAuthority.clear();
    CHECK(errorMessage([&] {
            (void)d.concerns.addLocation(l);
          }).find("location_of_concern.local_authority") != std::string::npos);
    l.scope = scope();
    l.children = {c2};
    const Uuid location = d.concerns.addLocation(l);
    CHECK(d.store->get(person)->text("provenance") == "hearsay");
    CHECK(d.children.records(c1).ids == std::vector<Uuid>{person, vehicle});
    CHECK(d.children.records(c2).ids == std::vector<Uuid>{vehicle, location});
    CHECK(d.children.records(c2, std::string(kLocationOfConcernType)).ids ==
          std::vector<Uuid>{location});
  }
}

TEST_SUITE("records.referral") {
  TEST_CASE("a referral moves queued, sent, acknowledged, outcome and never back") {
    Domain d;
    const Uuid c = d.child();
    const Uuid id = d.referrals.queue({c, "mash", "", "significant risk", std::nullopt, scope()});
    CHECK(d.referrals.status(id) == "queued");
    d.referrals.markSent(id);
    CHECK(errorCode([&] { d.referrals.markSent(id); }) == Errc::validation);
    d.referrals.markAcknowledged(id);
    CHECK(errorCode([&] {
            d.store->update(id, {{"status", std::string("queued")}});
          }) == Errc::validation);
    d.referrals.recordOutcome(id, "strategy discussion held; plan agreed");
    CHECK(d.referrals.status(id) == "outcome");
    CHECK(errorCode([&] { d.referrals.markAcknowledged(id); }) == Errc::validation);
  }

  TEST_CASE("a cross-border referral names the receiving council, states need their times") {
    Domain d;
    const Uuid c = d.child();
    CHECK(errorMessage([&] {
            (void)d.referrals.queue({c, "other_council", "", "moved", std::nullopt, scope()});
          }).find("referral.receiving_authority") != std::string::npos);
    const Uuid id = d.referrals.queue({c, "police", "", "r", std::nullopt, scope()});
    CHECK(errorMessage([&] {
            d.store->update(id, {{"status", std::string("sent")}});
          }).find("referral.sent_at") != std::string::npos);
    CHECK(errorCode([&] { (void)d.referrals.status(Uuid::random()); }) == Errc::not_found);
  }
}
