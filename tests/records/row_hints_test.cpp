// The record store's in-memory id -> row table (an internal piece, tested
// directly: the store only ever sees it through reads that must still be right).
#include "model/row_hints.hpp"

#include <outpost/context.hpp>

#include <doctest/doctest.h>

#include <map>
#include <random>

using outpost::model::RowHints;
using outpost::sync::Uuid;

namespace {

/// Ids alike but for their last four bytes (an app may choose ids that are not
/// random): mixed with random ones, more of them than the table's first size.
Uuid idNumber(std::uint32_t n) {
  Uuid id;
  id.bytes[0] = 0x42;
  id.bytes[12] = static_cast<std::uint8_t>(n >> 24);
  id.bytes[13] = static_cast<std::uint8_t>(n >> 16);
  id.bytes[14] = static_cast<std::uint8_t>(n >> 8);
  id.bytes[15] = static_cast<std::uint8_t>(n);
  return id;
}

} // namespace

TEST_SUITE("records.row_hints") {
  TEST_CASE("finds what was put, and nothing else") {
    RowHints h;
    CHECK_FALSE(h.find(idNumber(1)).has_value());
    h.put(idNumber(1), 10, 100);
    h.put(idNumber(2), 20, 100);
    CHECK(h.find(idNumber(1)) == 10);
    CHECK(h.find(idNumber(2)) == 20);
    CHECK_FALSE(h.find(idNumber(3)).has_value());
    h.put(idNumber(1), 11, 100); // replaced, not added
    CHECK(h.find(idNumber(1)) == 11);
    CHECK(h.size() == 2);
  }

  TEST_CASE("holds no more than the limit, and no row number below 1") {
    RowHints h;
    h.put(idNumber(1), 0, 100);
    h.put(idNumber(2), -5, 100);
    CHECK(h.size() == 0);
    for (std::uint32_t n = 1; n <= 5; ++n) {
      h.put(idNumber(n), n, 3);
    }
    CHECK(h.size() == 3);
    CHECK_FALSE(h.find(idNumber(4)).has_value());
    h.put(idNumber(2), 99, 3); // a held id is still replaced at the limit
    CHECK(h.find(idNumber(2)) == 99);
  }

  TEST_CASE("agrees with a map over random puts and erases, across growth") {
    const outpost::Context context;
    RowHints h;
    std::map<Uuid, std::int64_t> want;
    std::mt19937 rng(7);
    std::vector<Uuid> ids;
    for (int k = 0; k < 4000; ++k) {
      ids.push_back(k % 2 == 0 ? Uuid::random() : idNumber(static_cast<std::uint32_t>(k)));
    }
    for (int step = 0; step < 40000; ++step) {
      const Uuid& id = ids[rng() % ids.size()];
      if (rng() % 3 == 0) {
        h.erase(id);
        want.erase(id);
      } else {
        const auto rid = static_cast<std::int64_t>(rng() % 100000 + 1);
        h.put(id, rid, 1000000);
        want[id] = rid;
      }
      if (step % 997 == 0) {
        for (const Uuid& each : ids) {
          const auto it = want.find(each);
          const auto got = h.find(each);
          REQUIRE(got.has_value() == (it != want.end()));
          if (got) {
            REQUIRE(*got == it->second);
          }
        }
      }
    }
    CHECK(h.size() == want.size());
    for (const auto& [id, rid] : want) {
      h.erase(id);
    }
    CHECK(h.size() == 0);
    for (const Uuid& each : ids) {
      CHECK_FALSE(h.find(each).has_value());
    }
  }

  TEST_CASE("clear forgets every row") {
    RowHints h;
    h.put(idNumber(1), 1, 10);
    h.clear();
    CHECK(h.size() == 0);
    CHECK_FALSE(h.find(idNumber(1)).has_value());
    h.put(idNumber(1), 2, 10);
    CHECK(h.find(idNumber(1)) == 2);
  }
}
