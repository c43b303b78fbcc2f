// outpost-field driven as a script would drive it (--json), against a real
// outpost-server and outpostctl on 127.0.0.1, with real vaults in temp folders.

#include "programs.hpp"

#include <doctest/doctest.h>

using namespace outpost::test;

namespace {

/// What a refused command must leave as it was: the changes waiting to sync, the
/// audit trail's length and the records on the device (from `status`, which neither
/// writes nor views records).
json footprint(const Device& d) {
  const json s = d.ok({"status"});
  return {{"pending", s.at("pendingChanges")},
          {"audit", s.at("auditEvents")},
          {"records", s.at("records")}};
}

const std::string kUnknownId = "6f1c1f2e-3d4b-4c5a-9e8f-7a6b5c4d3e2f";

struct Field {
  TempDir scratch;
  Central central{scratch};
  std::optional<ServerProcess> server;
  Field() {
    central.ctl({"worker", "add", "worker-a", "--team", "north"});
    central.ctl({"worker", "add", "worker-b", "--team", "north"});
    server.emplace(central.data());
  }
  /// A device initialised and enrolled for `worker`.
  Device enrolled(const std::string& name, const std::string& worker) {
    Device d(scratch, name);
    d.ok({"init", "--local-authority", "Leeds", "--police-force-area", "West Yorkshire"});
    const json e = d.ok({"enroll", central.payload(worker, server->port())});
    CHECK(e.at("worker") == worker);
    CHECK(e.at("team") == "north");
    return d;
  }
};

} // namespace

TEST_SUITE("field_app") {
  TEST_CASE("a worker's day offline: child, explained assessment, signed note, overdue interview") {
    Field f;
    const Device a = f.enrolled("a", "worker-a");
    const std::string child = a.ok({"child", "add", "--name", "Jay", "--dob", "2014-03-02",
                                    "--care-status", "looked_after"})
                                  .at("child");
    const std::string assessment = a.ok({"assessment", "start", "--child", child}).at("assessment");
    const json saved =
        a.ok({"assessment", "answer", assessment, "dis_status=none", "pl_cars_unknown_adults=yes",
              "--recency", "pl_cars_unknown_adults=current", "voice_child=says they are mates",
              "voice_analysis=lifts from adults the family does not know"});
    CHECK(saved.at("saved").size() == 4);
    CHECK(saved.at("provisional").at("score") == 5);

    // Under 13 with a current serious indicator: the override makes it significant.
    const json submitted = a.ok({"assessment", "submit", assessment});
    CHECK(submitted.at("score") == 5);
    CHECK(submitted.at("computedLevel") == "significant");
    CHECK(submitted.at("explanation").at("bandLevel") == "no_current_risk");
    CHECK(submitted.at("explanation").at("overrides").at(0).at("rule") ==
          "serious_young_or_learning_disability");
    CHECK(submitted.at("explanation").at("contributions").at(0).at("indicator") ==
          "ind_pl_cars_unknown_adults");
    const json shown = a.ok({"assessment", "show", assessment});
    CHECK(shown.at("status") == "submitted");
    CHECK(shown.at("judgedLevel") == "significant");
    CHECK(shown.at("why").get<std::string>().find(
              "override serious_young_or_learning_disability") != std::string::npos);

    const std::string note =
        a.ok({"note", "add", "--child", child, "--place", "cafe near school", "--facts",
              "collected by a car", "--seen-alone", "--present", "Sam:foster carer"})
            .at("note");
    CHECK(a.ok({"note", "sign", note}).at("status") == "signed");
    CHECK(a.refused({"note", "sign", note}) == "validation");
    CHECK(a.ok({"note", "addendum", note, "The car was silver."}).at("addenda") == 1);
    const json n = a.ok({"note", "show", note});
    CHECK(n.at("present").at(0).at("role") == "foster carer");
    CHECK(n.at("addenda").at(0).at("by") == "worker-a");

    const std::string episode =
        a.ok({"missing", "report", "--child", child, "--reported", "-5d", "--police-ref", "WY-1"})
            .at("episode");
    const json returned = a.ok({"missing", "return", episode, "--at", "-4d"});
    CHECK(returned.at("overdue") == true);
    const json overdue = a.ok({"missing", "overdue"});
    REQUIRE(overdue.at("overdue").size() == 1);
    CHECK(overdue.at("overdue").at(0).at("hoursOverdue").get<int>() >= 23);

    const std::string concern = a.ok({"concern", "add", "vehicle", "--provenance", "first_hand",
                                      "--registration", "YX1", "--partial", "--colour", "silver"})
                                    .at("concern");
    CHECK(a.ok({"concern", "link", concern, child}).at("type") == "vehicle_of_concern");
    a.ok({"share",
          "record",
          "--decision",
          "share",
          "--child",
          child,
          "--purpose",
          "strategy discussion",
          "--reason",
          "significant harm suspected",
          "--lawful-basis",
          "safeguarding_dpa2018_sch1",
          "--consent",
          "not_sought",
          "--consent-reason",
          "would put the child at risk",
          "--recipient",
          "police",
          "--items",
          "the assessment"});
    a.ok({"referral", "add", "--child", child, "--to", "mash", "--reason", "significant",
          "--assessment", assessment});

    const json status = a.ok({"status"});
    CHECK(status.at("locked") == true);
    CHECK(status.at("enrolled") == true);
    CHECK(status.at("worker") == "worker-a");
    CHECK(status.at("overdueInterviews") == 1);
    CHECK(status.at("overdueReviews") == 0);
    CHECK(status.at("pendingChanges").get<int>() >= 10);
    CHECK(status.at("lastSync").is_null());
    CHECK(status.at("records").at("child") == 1);

    const json shownChild = a.ok({"child", "show", child});
    CHECK(shownChild.at("child").at("name") == "Jay");
    // The assessment, note, episode, interview, vehicle, sharing decision and referral.
    CHECK(shownChild.at("records").size() == 7);
    const json audit = a.ok({"audit", "verify"});
    CHECK(audit.at("intact") == true);
    CHECK(audit.at("eventsChecked").get<int>() > 10);

    // The day's first sync: every record reaches the hub, and edits made one after
    // another on one device are never in conflict with each other.
    const json synced = a.ok({"sync"});
    CHECK(synced.at("pendingChanges") == 0);
    CHECK(synced.at("recordsInConflict") == 0);
    CHECK(f.central.ctl({"conflicts", "list"}).empty());
    const json exported = f.central.ctl({"export", "--format", "json"});
    CHECK(exported.at("records").size() == 8);
  }

  TEST_CASE("bad input is refused with a stable error name and changes nothing") {
    Field f;
    const Device a = f.enrolled("a", "worker-a");
    const std::string child = a.ok({"child", "add", "--name", "Jay", "--age", "14"}).at("child");
    const std::string assessment = a.ok({"assessment", "start", "--child", child}).at("assessment");
    const json before = footprint(a);

    {
      // a wrong PIN, or none
      const Run wrong = a.field({"child", "add", "--name", "Kai", "--age", "12"}, "0000");
      CHECK(wrong.status == 1);
      CHECK(wrong.errorCode() == "wrong_pin");
      CHECK(wrong.document().at("attemptsLeft") == 9);
      CHECK(a.refused({"status"}, "1357") == "wrong_pin");
      const Run none = a.field({"child", "list"}, std::nullopt);
      CHECK(none.status == 1);
      CHECK(none.errorCode() == "invalid_argument");
      CHECK(none.document().at("error").at("message").get<std::string>().find("OUTPOST_PIN") !=
            std::string::npos);
      // Without a PIN, status still says whether the vault is locked.
      const Run locked = a.field({"status"}, std::nullopt);
      CHECK(locked.status == 0);
      CHECK(locked.document().at("locked") == true);
      CHECK(locked.document().at("details") == false);
      CHECK(a.ok({"unlock"}).at("pinCorrect") == true);
      CHECK(a.ok({"lock"}).at("locked") == true);
    }
    {
      // unknown and malformed ids
      CHECK(a.refused({"child", "show", kUnknownId}) == "not_found");
      CHECK(a.refused({"child", "edit", kUnknownId, "--school", "x"}) == "not_found");
      CHECK(a.refused({"note", "add", "--child", kUnknownId, "--facts", "x"}) == "not_found");
      CHECK(a.refused({"assessment", "start", "--child", kUnknownId}) == "not_found");
      CHECK(a.refused({"assessment", "show", child}) == "not_found"); // a child, not an assessment
      CHECK(a.refused({"missing", "return", kUnknownId}) == "not_found");
      CHECK(a.refused({"concern", "link", kUnknownId, child}) == "not_found");
      CHECK(a.refused({"child", "show", "jay"}) == "invalid_argument");
      CHECK(a.refused({"conflicts", "resolve", child, "school", "--take", "0"}) ==
            "invalid_argument"); // no conflict on that field
    }
    {
      // values the schema refuses
      const Run noAge = a.field({"child", "add", "--name", "Kai"});
      CHECK(noAge.errorCode() == "validation");
      CHECK(noAge.document().at("problems").at(0).at("field") == "child.date_of_birth");
      CHECK(a.refused({"child", "add", "--name", "Kai", "--age", "12", "--care-status", "x"}) ==
            "validation");
      CHECK(a.refused({"child", "edit", child}) == "invalid_argument"); // nothing to change
      CHECK(a.refused({"missing", "report", "--child", child, "--reported", "yesterday"}) ==
            "invalid_argument");
      CHECK(a.refused({"note", "add", "--child", child, "--facts", "x", "--present", "Sam"}) ==
            "invalid_argument");
      CHECK(a.refused({"referral", "add", "--child", child, "--to", "nobody", "--reason", "r"}) ==
            "invalid_argument");
    }
    {
      // command lines it does not understand
      const Run r = a.field({"child", "adopt"});
      CHECK(r.status == 2);
      CHECK(r.errorCode() == "invalid_argument");
      CHECK(a.field({"assessment", "answer", assessment, "--recency"}).status == 2);
      CHECK(a.refused({"init"}) == "already_exists");
      CHECK(a.refused({"wipe"}) == "invalid_argument"); // no terminal to confirm, no --yes
      CHECK(a.refused({"enroll", f.central.payload("worker-a", f.server->port())}) ==
            "already_exists");
    }
    {
      // answers the template refuses
      const auto problems = [&](std::vector<std::string> answers) {
        answers.insert(answers.begin(), {"assessment", "answer", assessment});
        const Run r = a.field(answers);
        CHECK(r.status == 1);
        CHECK(r.errorCode() == "validation");
        return r.document().value("problems", json::array());
      };
      CHECK(problems({"no_such_question=yes"}).at(0).at("question") == "no_such_question");
      CHECK(problems({"mw_missing=maybe"}).at(0).at("question") == "mw_missing");
      CHECK(problems({"mw_episodes_12m=3"}).at(0).at("question") ==
            "mw_episodes_12m"); // skip logic
      CHECK(problems({"mw_missing=yes", "--recency", "mw_missing=current", "mw_episodes_12m=999"})
                .at(0)
                .at("question") == "mw_episodes_12m"); // constraint
      CHECK(problems({"pl_cars_unknown_adults=yes"}).at(0).at("question") ==
            "ind_pl_cars_unknown_adults"); // a present indicator needs its recency
      CHECK(problems({"dis_status=told_someone"}).at(0).at("question") == "dis_status");
      CHECK(a.refused({"assessment", "answer", assessment, "dis_status"}) == "invalid_argument");
      CHECK(a.refused({"assessment", "answer", assessment}) == "invalid_argument"); // no terminal
      // Submitting a draft without the required answers names each of them.
      const Run submit = a.field({"assessment", "submit", assessment});
      CHECK(submit.errorCode() == "validation");
      CHECK(submit.document().at("problems").size() >= 3);
      CHECK(footprint(a) == before);
      const json shown = a.ok({"assessment", "show", assessment}); // a view: audited
      CHECK(shown.at("status") == "draft");
      CHECK(shown.at("answers").at("values").empty());
    }
  }

  TEST_CASE("a judged level below the computed one needs a reason and a supervisor's sign-off") {
    Field f;
    const Device a = f.enrolled("a", "worker-a");
    const std::string child = a.ok({"child", "add", "--name", "Jay", "--age", "14"}).at("child");
    const std::string assessment = a.ok({"assessment", "start", "--child", child}).at("assessment");
    a.ok({"assessment", "answer", assessment, "dis_status=disclosed", "dis_to_whom=a teacher",
          "voice_child=(words)", "voice_analysis=(analysis)"});
    const json answered = footprint(a);
    CHECK(a.refused({"assessment", "submit", assessment, "--level", "no_current_risk"}) ==
          "validation");
    CHECK(a.refused({"assessment", "submit", assessment, "--level", "grave"}) == "validation");
    CHECK(footprint(a) == answered);
    const json ok = a.ok({"assessment", "submit", assessment, "--level", "at_risk", "--reason",
                          "disclosure retracted and explained", "--supervisor", "team manager"});
    CHECK(ok.at("computedLevel") == "significant");
    CHECK(ok.at("judgedLevel") == "at_risk");
  }

  TEST_CASE("enrollment refuses a bad payload or code and changes nothing") {
    Field f;
    Device b(f.scratch, "b");
    b.ok({"init"});
    const std::string good = f.central.payload("worker-b", f.server->port());
    CHECK(b.refused({"enroll", "outpost-enroll:v1:garbage"}) == "invalid_argument");
    CHECK(b.refused({"enroll", "ABCD-EFGH"}) == "invalid_argument"); // a code needs --server
    // A well-formed payload whose code the server never issued.
    const std::string wrongCode = good.substr(0, good.rfind(':') + 1) + "AAAA-BBBB-CCCC-DDDD";
    CHECK(b.refused({"enroll", wrongCode}) == "auth_failed");
    CHECK(b.ok({"status"}).at("enrolled") == false);
    CHECK(b.refused({"child", "add", "--name", "Kai", "--age", "12"}) == "invalid_argument");
    // The code alone, with the server's address and key given separately.
    const std::string rest = good.substr(std::string("outpost-enroll:v1:").size());
    const auto c1 = rest.find(':');
    const auto c2 = rest.find(':', c1 + 1);
    const auto c3 = rest.find(':', c2 + 1);
    const json e = b.ok({"enroll", rest.substr(c3 + 1), "--server", rest.substr(0, c2),
                         "--server-key", rest.substr(c2 + 1, c3 - c2 - 1)});
    CHECK(e.at("worker") == "worker-b");
    CHECK(b.ok({"status"}).at("enrolled") == true);
  }

  TEST_CASE("the walk asks only the questions that apply, checks each answer and saves it") {
    Field f;
    const Device a = f.enrolled("a", "worker-a");
    const std::string child = a.ok({"child", "add", "--name", "Jay", "--age", "15"}).at("child");
    const std::string assessment = a.ok({"assessment", "start", "--child", child}).at("assessment");
    // Context (9 questions): yes, "maybe" (refused, asked again), no, then keep the rest;
    // missing: yes + recency, then the episode count (asked because of the yes): 400
    // (refused by the constraint), then 4; then stop.
    const std::string input = "yes\nmaybe\nno\n\n\n\n\n\n\n\nyes\nwithin_6_months\n\n400\n4\n!\n";
    const Run r = a.field({"assessment", "walk", assessment}, std::string(), input);
    REQUIRE_MESSAGE(r.status == 0, r.out << r.err);
    CHECK(r.err.find("not saved") != std::string::npos);
    const json done = r.document();
    CHECK(done.at("finished") == false);
    const json shown = a.ok({"assessment", "show", assessment});
    const json values = shown.at("answers").at("values");
    CHECK(values.at("ctx_looked_after") == true);
    CHECK(values.at("ctx_learning_needs") == false);
    CHECK(values.at("mw_missing") == true);
    CHECK(values.at("mw_episodes_12m") == 4);
    CHECK(shown.at("answers").at("recency").at("ind_mw_missing") == "within_6_months");
    CHECK(values.size() == 4);
  }

  TEST_CASE("the minimal embedding example records an assessment and syncs it") {
    Field f;
    const std::string payload = f.central.payload("worker-a", f.server->port());
    const Run r = run(f.scratch.path(), MINIMAL_EMBEDDING_PATH,
                      {(f.scratch / "minimal").string(), payload}, {{"OUTPOST_PIN", "2468"}});
    REQUIRE_MESSAGE(r.status == 0, r.out << r.err);
    CHECK(r.out.find("level at_risk") != std::string::npos);
    CHECK(r.out.find("synced: pushed") != std::string::npos);
    const Run exported = f.central.ctlRun({"export", "--format", "json"});
    REQUIRE(exported.status == 0);
    const json records = json::parse(exported.out).at("records");
    int assessments = 0;
    for (const json& rec : records) {
      if (rec.at("type") == "assessment") {
        ++assessments;
        CHECK(rec.at("fields").at("computed_level") == "at_risk");
        CHECK(rec.at("team") == "north");
      }
    }
    CHECK(assessments == 1);
    CHECK(f.central.ctl({"conflicts", "list"}).empty());
  }

  TEST_CASE("two devices edit one field offline: a conflict, resolved on one, gone everywhere") {
    Field f;
    const Device a = f.enrolled("a", "worker-a");
    const Device b = f.enrolled("b", "worker-b");
    const std::string child =
        a.ok({"child", "add", "--name", "Jay", "--age", "14", "--school", "Park Road"}).at("child");
    CHECK(a.ok({"sync"}).at("pushed").get<int>() > 0);
    CHECK(b.ok({"sync"}).at("pulled").get<int>() > 0);
    CHECK(b.ok({"child", "show", child}).at("child").at("school") == "Park Road");

    a.ok({"child", "edit", child, "--school", "Northfield College"});
    b.ok({"child", "edit", child, "--school", "Riverside"});
    a.ok({"sync"});
    const json bSync = b.ok({"sync"});
    CHECK(bSync.at("recordsInConflict") == 1);
    a.ok({"sync"});
    CHECK(f.central.ctl({"conflicts", "list"}).size() == 1);

    const json listed = b.ok({"conflicts", "list"}).at("conflicts");
    REQUIRE(listed.size() == 1);
    CHECK(listed.at(0).at("record") == child);
    const json field = listed.at(0).at("fields").at(0);
    CHECK(field.at("field") == "school");
    std::set<std::string> values{field.at("current").at("value")};
    for (const json& c : field.at("competing")) {
      values.insert(c.at("value").get<std::string>());
    }
    CHECK(values == std::set<std::string>{"Northfield College", "Riverside"});
    CHECK(a.ok({"status"}).at("conflicts") == 1);

    // Out of range, and a value the schema refuses, change nothing.
    CHECK(b.refused({"conflicts", "resolve", child, "school", "--take", "7"}) ==
          "invalid_argument");
    CHECK(b.refused({"conflicts", "resolve", child, "school"}) == "invalid_argument");
    CHECK(b.ok({"conflicts", "list"}).at("conflicts").size() == 1);

    const json resolved =
        b.ok({"conflicts", "resolve", child, "school", "--text", "Northfield College"});
    CHECK(resolved.at("fieldsStillInConflict") == 0);
    b.ok({"sync"});
    a.ok({"sync"});
    CHECK(b.ok({"conflicts", "list"}).at("conflicts").empty());
    CHECK(a.ok({"conflicts", "list"}).at("conflicts").empty());
    CHECK(f.central.ctl({"conflicts", "list"}).empty());
    CHECK(a.ok({"child", "show", child}).at("child").at("school") == "Northfield College");
    const json status = a.ok({"status"});
    CHECK(status.at("pendingChanges") == 0);
    CHECK(status.at("conflicts") == 0);
    CHECK_FALSE(status.at("lastSync").is_null());
  }

  TEST_CASE("a revoked device is wiped at its next sync") {
    Field f;
    const Device b = f.enrolled("b", "worker-b");
    b.ok({"child", "add", "--name", "Kai", "--age", "13"});
    b.ok({"sync"});
    const std::string device = b.ok({"status"}).at("device");
    f.central.ctl({"revoke", device});
    const Run r = b.field({"sync"});
    CHECK(r.status == 1);
    CHECK(r.errorCode() == "revoked");
    CHECK(r.document().at("wiped") == true);
    CHECK_FALSE(fs::exists(b.dir() / "vault"));
    CHECK(b.refused({"status"}) == "not_found"); // no vault: init and enroll again
  }

  TEST_CASE("without the server, sync fails, says so and keeps every change") {
    Field f;
    const Device a = f.enrolled("a", "worker-a");
    a.ok({"child", "add", "--name", "Kai", "--age", "13"});
    f.server.reset(); // the server stops: the device is offline
    const json before = a.ok({"status"});
    const Run r = a.field({"sync", "--timeout", "5"});
    CHECK(r.status == 1);
    const std::string code = r.errorCode();
    CHECK((code == "network" || code == "timeout"));
    const json after = a.ok({"status"});
    CHECK(after.at("pendingChanges") == before.at("pendingChanges"));
    CHECK(after.at("records") == before.at("records"));
    CHECK_FALSE(after.at("lastSyncError").is_null());
    CHECK(after.at("lastSync").is_null());
  }
}
