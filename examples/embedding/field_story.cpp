// A worker's day on the SDK alone, as an app would write it: open the encrypted
// vault, record a child, run the cse-screening assessment, write and sign a contact
// note, report a missing episode whose return-home interview is overdue, and check
// the journal and the audit trail. `make demo` runs it; every figure it prints is
// computed by the SDK.
//
//   field_story [FOLDER]   (default: a new temp folder, removed at the end)

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

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

using namespace outpost;
namespace sg = outpost::safeguarding;
namespace fs = std::filesystem;

namespace {

bool fileContains(const fs::path& file, const std::string& needle) {
  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes.find(needle) != std::string::npos;
}

} // namespace

int main(int argc, char** argv) {
  const bool scratch = argc < 2;
  fs::path folder;
  if (scratch) {
    std::string tmpl = (fs::temp_directory_path() / "outpost-field-story-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::cerr << "field_story: cannot create a temp folder\n";
      return 1;
    }
    folder = tmpl;
  } else {
    folder = argv[1];
  }
  try {
    Context context;
    platform::FileKeyStore keyStore{folder / "keys"};
    platform::SystemClock clock;
    VaultOptions options;
    const std::string pin = "2468";

    auto vault = Vault::exists(folder / "vault")
                     ? Vault::open(context, folder / "vault", keyStore, options)
                     : Vault::create(context, folder / "vault", pin, keyStore, options);
    if (vault->isLocked() && vault->unlock(pin).status != UnlockStatus::unlocked) {
      std::cerr << "field_story: the vault did not unlock\n";
      return 1;
    }
    std::cout << "   vault open in " << (folder / "vault").string()
              << " (XChaCha20-Poly1305 pages, Argon2id PIN, WAL)\n";

    // The record store must not outlive the vault: it lives in this block.
    auto records_ = std::make_unique<model::RecordStore>(
        context, *vault, clock, model::RecordStoreOptions{.workerId = "worker-a"});
    model::RecordStore& records = *records_;
    const model::TemplateCatalog templates = model::TemplateCatalog::withBuiltins();
    sg::Children children{records};
    sg::Assessments assessments{records, templates, clock};
    sg::ContactNotes notes{records, clock};
    sg::MissingEpisodes missing{records, clock};
    const sg::Scope scope{"cse-team-north", "Leeds", "West Yorkshire", "standard"};

    sg::Child child;
    child.name = "Jay";
    child.dateOfBirth = "2014-03-02";
    child.careStatus = "looked_after";
    child.scope = scope;
    const sync::Uuid jay = children.add(child);
    std::cout << "   recorded a child, id " << jay.toString() << "\n";

    const sync::Uuid assessment =
        assessments.start({jay, "cse-screening", 1, "worker-a", {"Jay"}, scope});
    model::Answers answers;
    answers.values["dis_status"] = std::string("none");
    answers.values["voice_child"] = std::string("says the older lads are his mates");
    answers.values["voice_analysis"] = std::string("gifts and lifts from unknown adults");
    answers.values["pl_cars_unknown_adults"] = true;
    answers.recency["ind_pl_cars_unknown_adults"] = model::Recency::current;
    assessments.saveAnswers(assessment, answers);
    model::AssessmentContext facts;
    facts.childAgeYears = 12;
    const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
    facts.today = model::Date{today};
    const model::ScoreExplanation result = assessments.submit(assessment, {}, facts);
    std::cout << "   cse-screening v1 submitted; the SDK's explanation:\n";
    std::string line;
    std::istringstream explanation(model::describe(result));
    while (std::getline(explanation, line)) {
      std::cout << "     | " << line << "\n";
    }

    sg::ContactNote note;
    note.child = jay;
    note.startedAtMs = clock.unixMillis();
    note.place = "cafe near school";
    note.seenAlone = true;
    note.facts = "Jay was collected by a car he did not know; marker-7f3a";
    note.childWords = "he's my mate, he buys me stuff";
    note.scope = scope;
    const sync::Uuid noteId = notes.add(note);
    notes.sign(noteId);
    try {
      note.id = noteId;
      note.facts = "rewritten after signing";
      notes.edit(note);
    } catch (const Error& e) {
      std::cout << "   contact note signed; editing it now is refused: " << e.message() << "\n";
    }
    notes.addAddendum(noteId, "The car was a silver hatchback.");

    sg::MissingEpisode episode;
    episode.child = jay;
    const std::int64_t fourDaysAgo = clock.unixMillis() - 4LL * 24 * 3600 * 1000;
    episode.reportedAtMs = fourDaysAgo - 6LL * 3600 * 1000;
    episode.lastSeenPlace = "bus station";
    episode.policeReference = "WY-000123";
    episode.scope = scope;
    const sync::Uuid episodeId = missing.report(episode);
    (void)missing.recordReturn(episodeId, fourDaysAgo, "friend's flat");
    const auto overdue = missing.overdueInterviews();
    std::cout << "   missing episode recorded; return-home interviews overdue (past 72 h): "
              << overdue.ids.size() << "\n";

    const auto pending = records.journal().pending(1000);
    const auto audit = records.audit().verify();
    std::cout << "   journal: " << pending.size() << " field changes waiting to sync\n";
    std::cout << "   audit chain: " << (audit.intact ? "intact" : "BROKEN") << ", "
              << audit.eventsChecked << " events, " << audit.signaturesChecked
              << " Ed25519 checkpoint signatures\n";
    records.lock();
    records_.reset();
    vault.reset();

    int files = 0;
    int plaintext = 0;
    for (const auto& e : fs::recursive_directory_iterator(folder / "vault")) {
      if (e.is_regular_file()) {
        ++files;
        plaintext += fileContains(e.path(), "marker-7f3a") ? 1 : 0;
        plaintext += fileContains(e.path(), "SQLite format 3") ? 1 : 0;
      }
    }
    std::cout << "   locked; " << files << " vault files searched for the note's text and the "
              << "SQLite header: " << plaintext << " found\n";
    if (scratch) {
      fs::remove_all(folder);
    }
    return (audit.intact && plaintext == 0 && overdue.ids.size() == 1) ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "field_story: " << e.what() << "\n";
    if (scratch) {
      fs::remove_all(folder);
    }
    return 1;
  }
}
