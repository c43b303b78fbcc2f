// The code of docs/embedding-guide.md, built and run so that the guide stays true.
// Keep the two in step: each block between "guide:" markers appears in the guide.

#include "../support/temp_dir.hpp"

#include <outpost/audit.hpp>
#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/journal.hpp>
#include <outpost/platform/clock.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/records.hpp>
#include <outpost/safeguarding.hpp>
#include <outpost/template.hpp>
#include <outpost/vault.hpp>

#include <doctest/doctest.h>
#include <sodium.h>

#include <iostream>
#include <sstream>

namespace {

using namespace outpost;
namespace sg = outpost::safeguarding;

// guide: open
std::unique_ptr<Vault> openVault(Context& context, platform::KeyStore& keyStore,
                                 const std::filesystem::path& dir, std::string_view pin,
                                 VaultOptions options) {
  if (!Vault::exists(dir)) {
    return Vault::create(context, dir, pin, keyStore, options); // returned unlocked
  }
  auto vault = Vault::open(context, dir, keyStore, options);
  const UnlockResult r = vault->unlock(pin);
  if (r.status == UnlockStatus::wrongPin) {
    std::clog << "wrong PIN, " << r.attemptsLeft << " attempts left\n";
    return nullptr;
  }
  if (r.status == UnlockStatus::shredded) {
    std::clog << "the vault was wiped after too many wrong PINs: re-enroll\n";
    return nullptr;
  }
  return vault;
}
// guide: end

void fieldVisit(const std::filesystem::path& folder, VaultOptions options, std::ostream& ui) {
  // guide: setup
  Context context;                                  // initialises libsodium
  platform::FileKeyStore keyStore{folder / "keys"}; // Android/iOS: the platform adapter
  platform::SystemClock clock;
  auto vault = openVault(context, keyStore, folder / "vault", "2468", options);
  REQUIRE(vault);

  model::RecordStore records{context, *vault, clock, {.workerId = "worker-7"}};
  model::TemplateCatalog templates = model::TemplateCatalog::withBuiltins();
  sg::Children children{records};
  sg::Assessments assessments{records, templates, clock};
  sg::ContactNotes notes{records, clock};
  sg::MissingEpisodes missing{records, clock};
  const sg::Scope scope{"cse-team-north", "Leeds", "West Yorkshire", "standard"};
  // guide: end

  // guide: child
  sg::Child child;
  child.name = "Jay";
  child.dateOfBirth = "2012-05-01";
  child.careStatus = "looked_after";
  child.scope = scope;
  const sync::Uuid jay = children.add(child);
  // guide: end

  // guide: assessment
  const sync::Uuid assessment =
      assessments.start({jay, "cse-screening", 1, "worker-7", {"Jay", "foster carer"}, scope});

  model::Answers answers;
  answers.values["dis_status"] = std::string("none");
  answers.values["voice_child"] = std::string("(the child's words)");
  answers.values["voice_analysis"] = std::string("(the worker's analysis)");
  answers.values["pl_cars_unknown_adults"] = true;
  answers.recency["ind_pl_cars_unknown_adults"] = model::Recency::current;
  assessments.saveAnswers(assessment, answers); // drafts can be saved as often as needed

  model::AssessmentContext facts;
  facts.childAgeYears = 12;
  facts.today = model::Date{std::chrono::year{2026}, std::chrono::month{1}, std::chrono::day{15}};
  const model::ScoreExplanation result = assessments.submit(assessment, {}, facts);
  ui << model::describe(result); // which indicators and overrides made the level
  // guide: end
  CHECK(result.level == "significant");

  // guide: note
  sg::ContactNote note;
  note.child = jay;
  note.startedAtMs = clock.unixMillis();
  note.place = "cafe near school";
  note.seenAlone = true;
  note.facts = "Jay said an older man drives him to parties";
  note.childWords = "he's my mate, he buys me stuff";
  note.scope = scope;
  const sync::Uuid noteId = notes.add(note);
  notes.sign(noteId);                                     // frozen from now on
  notes.addAddendum(noteId, "The cafe is on Park Road."); // corrections are addenda
  // guide: end

  // guide: query
  for (const sync::Uuid& id : notes.search("parties").ids) { // FTS5 over notes
    const auto shown = notes.view(id);                       // audited as a view
  }
  model::RecordQuery q;
  q.linkedTo = jay;
  q.limit = 20;
  for (;;) {
    const model::RecordPage page = records.query(q);
    for (const model::Record& r : page.records) {
      ui << r.type << " " << r.text("status") << "\n";
    }
    if (!page.next) {
      break;
    }
    q.after = page.next;
  }
  const model::IdPage overdue = missing.overdueInterviews();
  // guide: end
  CHECK(overdue.ids.empty());

  // guide: errors
  try {
    note.id = noteId;
    note.facts = "rewritten";
    notes.edit(note);
  } catch (const Error& e) {
    if (e.code() == Errc::validation) {
      // "contact_note.facts: is signed and frozen: add an addendum instead"
      ui << "cannot save: " << e.message() << "\n";
    } else {
      throw; // locked, tampered, io, ...: see the error table
    }
  }
  // guide: end

  // guide: sync
  const auto batch = records.journal().pending(500); // oldest first, whole writes
  std::vector<std::int64_t> acked;
  for (const model::JournalEntry& e : batch) {
    acked.push_back(e.seq); // after the server acknowledged e.change
  }
  records.journal().acknowledge(acked);
  const model::AuditVerification audit = records.audit().verify();
  CHECK(records.journal().pendingCount() == 0);
  records.lock(); // wipes keys; unlock the vault and make a new RecordStore to go on
  // guide: end
  CHECK(audit.intact);
}

void registerVisit(model::RecordStore& records) {
  // guide: own-type
  model::EntityType visit;
  visit.name = "acme.school_visit";
  visit.statuses = {"planned", "done"};
  visit.fields = {
      model::FieldSpec{"child", model::FieldType::reference, true, {}, {}, "child", {}},
      model::FieldSpec{"notes",
                       model::FieldType::text,
                       false,
                       sync::MergePolicy::immutableAfterSign,
                       {},
                       {},
                       {}},
      model::FieldSpec{"signed_at", model::FieldType::dateTime, false, {}, {}, {}, {}},
  };
  visit.signedField = "signed_at";
  visit.searchFields = {"notes"};
  records.schema().add(visit);
  // guide: end
}

} // namespace

TEST_SUITE("records.guide") {
  TEST_CASE("the guide's own entity type registers and stores") {
    outpost::test::TempDir tmp;
    Context context;
    platform::FileKeyStore keyStore{tmp / "keys"};
    platform::SystemClock clock;
    VaultOptions fast;
    fast.argonOpsLimit = crypto_pwhash_OPSLIMIT_MIN;
    fast.argonMemLimitBytes = crypto_pwhash_MEMLIMIT_MIN;
    auto vault = Vault::create(context, tmp / "vault", "2468", keyStore, fast);
    model::RecordStore records{context, *vault, clock, {.workerId = "w"}};
    registerVisit(records);
    sg::Child child;
    child.name = "A";
    child.estimatedAgeYears = 13;
    child.scope = {"t", "la", "pfa", "standard"};
    const auto c = sg::Children{records}.add(child);
    const auto id = records.create(
        "acme.school_visit",
        {{"child", c.toString()}, {"owner_team", std::string("t")}, {"notes", std::string("x")}});
    CHECK(records.get(id)->text("status") == "planned");
  }

  TEST_CASE("the embedding guide's code runs as written") {
    outpost::test::TempDir tmp;
    VaultOptions fast;
    fast.argonOpsLimit = crypto_pwhash_OPSLIMIT_MIN;
    fast.argonMemLimitBytes = crypto_pwhash_MEMLIMIT_MIN;
    std::ostringstream ui;
    fieldVisit(tmp.path(), fast, ui);
    CHECK(ui.str().find("cannot save: contact_note.facts") != std::string::npos);
  }
}
