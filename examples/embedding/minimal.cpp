// The smallest complete app on the Outpost SDK: open (or create) the encrypted vault,
// enroll the device once, record a child and a cse-screening assessment, and sync.
// docs/getting-started.md quotes it (a test checks the quotes match this file), CI
// builds it, and tests/field_app runs it against a real outpost-server.
//
//   minimal-embedding FOLDER PAYLOAD     the PIN comes from OUTPOST_PIN
//
// PAYLOAD is what `outpostctl enroll` prints (outpost-enroll:v1:...); it is used the
// first time only.

#include <outpost/context.hpp>
#include <outpost/device_identity.hpp>
#include <outpost/error.hpp>
#include <outpost/platform/clock.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/records.hpp>
#include <outpost/safeguarding.hpp>
#include <outpost/sync_client.hpp>
#include <outpost/template.hpp>
#include <outpost/vault.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

using namespace outpost;
namespace sg = outpost::safeguarding;

int main(int argc, char** argv) {
  const char* pin = std::getenv("OUTPOST_PIN");
  if (argc != 3 || pin == nullptr) {
    std::cerr << "usage: OUTPOST_PIN=... minimal-embedding FOLDER ENROLLMENT_PAYLOAD\n";
    return 2;
  }
  const std::filesystem::path folder = argv[1];
  try {
    // The library context, the platform's key store and clock, and the vault:
    // created on first run, else opened and unlocked with the worker's PIN.
    Context context;
    platform::FileKeyStore keyStore{folder / "keys"};
    platform::SystemClock clock;
    std::unique_ptr<Vault> vault;
    if (Vault::exists(folder / "vault")) {
      vault = Vault::open(context, folder / "vault", keyStore);
      if (vault->unlock(pin).status != UnlockStatus::unlocked) {
        std::cerr << "wrong PIN\n";
        return 1;
      }
    } else {
      vault = Vault::create(context, folder / "vault", pin, keyStore);
    }

    // Enrollment, once: the device makes its key pair and pins the server's key.
    std::optional<DeviceIdentity> identity = loadDeviceIdentity(*vault);
    if (!identity) {
      identity = enrollDevice(context, *vault, argv[2], "minimal-embedding/1");
    }

    // The record store over the unlocked vault, its sync client (made before the
    // first write, so that the store writes under the enrolled device id), and the
    // typed safeguarding API.
    model::RecordStore records{context, *vault, clock, {.workerId = identity->workerId}};
    SyncClient client{context, *vault, records, clock};
    const model::TemplateCatalog templates = model::TemplateCatalog::withBuiltins();
    sg::Children children{records};
    sg::Assessments assessments{records, templates, clock};
    const sg::Scope scope{identity->teamId, "Leeds", "West Yorkshire", "standard"};

    // A child, and an assessment pinned to the template the SDK ships.
    sg::Child child;
    child.name = "Jay";
    child.estimatedAgeYears = 14;
    child.scope = scope;
    const sync::Uuid jay = children.add(child);
    const sync::Uuid assessment =
        assessments.start({jay, "cse-screening", 1, identity->workerId, {"Jay"}, scope});

    // Answers are checked against the template when submitted; the SDK computes
    // the score and the level, and explains them.
    model::Answers answers;
    answers.values["dis_status"] = std::string("none");
    answers.values["voice_child"] = std::string("(the child's words)");
    answers.values["voice_analysis"] = std::string("(the worker's analysis)");
    answers.values["rel_older_friends"] = true;
    answers.recency["ind_rel_older_friends"] = model::Recency::current;
    answers.values["mon_unexplained_goods"] = true;
    answers.recency["ind_mon_unexplained_goods"] = model::Recency::within6Months;
    assessments.saveAnswers(assessment, answers);
    model::AssessmentContext facts;
    facts.childAgeYears = 14;
    facts.today =
        model::Date{std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now())};
    const model::ScoreExplanation result = assessments.submit(assessment, {}, facts);
    std::cout << model::describe(result);

    // Sync: push what this device wrote, pull what the team changed.
    const SyncReport report = client.sync();
    std::cout << "synced: pushed " << report.changesPushed << " changes, pulled "
              << report.changesPulled << "\n";
    records.lock(); // wipes the keys from memory
    return 0;
  } catch (const Error& e) {
    // Every error says what happened and what to do about it.
    std::cerr << e.what() << " (" << errcAdvice(e.code()) << ")\n";
    return 1;
  }
}
