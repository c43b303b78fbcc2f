// w1.sdk's store: what it reads back is checked field by field against the
// generated record, as strictly as W1's JSON would be, and its JSON is W1's.

#include "sdk_store.hpp"
#include "w1.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

using namespace outpost::bench;
namespace fs = std::filesystem;

TEST_SUITE("bench.sdk_store") {
  TEST_CASE("a read matches the record it stored, and no record that differs in any field") {
    const fs::path dir =
        fs::temp_directory_path() / ("outpost-sdk-store-" + std::to_string(getpid()));
    fs::remove_all(dir);
    std::vector<Record> records;
    std::vector<std::string> payloads;
    for (std::uint32_t i = 0; i < 20; ++i) {
      records.push_back(generate(i, 20));
      payloads.push_back(records.back().json());
    }
    auto store = makeSdkStore(0);
    store->create(dir);
    store->insert(records, payloads);
    for (std::size_t k = 0; k < records.size(); ++k) {
      CHECK(store->readMatches(records[k], payloads[k]));
      CHECK(store->read(records[k].id) == payloads[k]);
    }
    Record r = records[3];
    const std::string& payload = payloads[3];
    CHECK(store->readMatches(r, payload));
    SUBCASE("another record's id") { r.id = records[4].id; }
    SUBCASE("an id never stored") { r.id = "00000000-0000-4000-8000-000000000000"; }
    SUBCASE("not an id") { r.id = "subj-000001"; }
    SUBCASE("the subject") { r.subjectId += "0"; }
    SUBCASE("the assessor") { r.assessorId = "user-999"; }
    SUBCASE("the status") { r.status = r.status == "draft" ? "final" : "draft"; }
    SUBCASE("the risk level") { r.riskLevel = r.riskLevel == "high" ? "low" : "high"; }
    SUBCASE("the creation time, by a second") { r.created += 1; }
    SUBCASE("the revision time, by a second") { r.updated -= 1; }
    SUBCASE("a yes/no indicator") { r.flags[2] = !r.flags[2]; }
    SUBCASE("a count") { r.counts[0] += 1; }
    SUBCASE("a state") { r.states[1] = r.states[1] == "none" ? "current" : "none"; }
    SUBCASE("the note") { r.note += "."; }
    CHECK_FALSE(store->readMatches(r, payload));
    store->checkpointAndClose();
    fs::remove_all(dir);
  }
}
