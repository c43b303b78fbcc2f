#include "generator.hpp"

#include <outpost/context.hpp>

#include <doctest/doctest.h>
#include <sodium.h>

#include <set>
#include <string>

using namespace outpost::bench;

namespace {
std::string sha256Hex(const std::string& data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}
} // namespace

TEST_SUITE("bench.generator") {
  TEST_CASE("the first 2000 records of the 100000 set hash to the published SHA-256") {
    const outpost::Context context;
    std::string all;
    for (std::uint32_t i = 0; i < 2000; ++i) {
      all += generate(i, 100000).json();
      all += '\n';
    }
    CHECK(sha256Hex(all) == "5e7ce8571894db4151f6d15824cd161f022dceff927ba69abf52752728a51dbe");
    // WORKLOADS.md: a mean of about 1048 bytes per record.
    const double mean = static_cast<double>(all.size()) / 2000.0;
    CHECK(mean > 1000.0);
    CHECK(mean < 1100.0);
  }

  TEST_CASE("fmix32 and xorshift32 follow their definitions") {
    CHECK(fmix32(0) == 0);
    CHECK(fmix32(1) == 0x514E28B7u); // MurmurHash3 fmix32(1)
    Stream s(0);                     // fmix32(0) == 0 is replaced by 1
    std::uint32_t x = 1;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    CHECK(s.next() == x);
  }

  TEST_CASE("a record depends only on (i, n) and ids are unique UUIDv4 text") {
    CHECK(generate(1234, 100000).json() == generate(1234, 100000).json());
    CHECK(generate(5, 100).json() != generate(5, 100000).json());
    std::set<std::string> ids;
    for (std::uint32_t i = 0; i < 5000; ++i) {
      const Record r = generate(i, 5000);
      CHECK(r.id.size() == 36);
      CHECK(r.id[14] == '4');
      CHECK((r.id[19] == '8' || r.id[19] == '9' || r.id[19] == 'a' || r.id[19] == 'b'));
      ids.insert(r.id);
      CHECK(r.note.size() >= 380);
      CHECK(r.note.size() <= 420);
      CHECK(r.updated >= r.created);
    }
    CHECK(ids.size() == 5000);
  }

  TEST_CASE("subjects are max(1, n/10) and named subj-%06u") {
    CHECK(subjectCount(5) == 1);
    CHECK(subjectCount(100000) == 10000);
    CHECK(subjectName(42) == "subj-000042");
    CHECK(isoTime(1704067200) == "2024-01-01T00:00:00Z");
  }
}
