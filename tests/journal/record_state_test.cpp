// The stored form of a record's merge state (format 2, docs/ARCHITECTURE.md): random
// states round-trip, format 1 bytes still read, and damaged bytes are refused or read
// as some state, never a crash.

#include <outpost/error.hpp>
#include <outpost/sync/merge.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <random>

using namespace outpost;
using namespace outpost::sync;

namespace {

Uuid randomUuid(std::mt19937_64& rng) {
  Uuid u;
  for (auto& b : u.bytes) {
    b = static_cast<std::uint8_t>(rng());
  }
  return u;
}

std::string randomText(std::mt19937_64& rng, std::size_t maxSize) {
  std::string s(rng() % (maxSize + 1), '\0');
  for (auto& c : s) {
    c = static_cast<char>(rng()); // any byte, NUL included
  }
  return s;
}

Value randomValue(std::mt19937_64& rng) {
  switch (rng() % 8) {
  case 0:
    return Null{};
  case 1:
    return Tombstone{};
  case 2:
    return rng() % 2 == 0;
  case 3:
    return static_cast<std::int64_t>(rng()) >> (rng() % 64);
  case 4:
    return static_cast<double>(static_cast<std::int64_t>(rng())) / 1024.0;
  case 5:
    return randomText(rng, 40);
  case 6: {
    Bytes b(rng() % 20);
    for (auto& x : b) {
      x = static_cast<std::uint8_t>(rng());
    }
    return b;
  }
  default: {
    StringList l(rng() % 4);
    for (auto& s : l) {
      s = randomText(rng, 8);
    }
    return l;
  }
  }
}

Hlc randomHlc(std::mt19937_64& rng, Hlc near) {
  switch (rng() % 4) {
  case 0:
    return near; // the common case: the same HLC as another version
  case 1:
    return Hlc{near.value + rng() % 1000000};
  case 2:
    return Hlc{near.value - rng() % 1000000};
  default:
    return Hlc{rng() >> (rng() % 64)}; // 0 and the largest values too
  }
}

FieldVersion randomVersion(std::mt19937_64& rng, const std::vector<Uuid>& devices, Hlc near) {
  return {randomValue(rng), randomHlc(rng, near), devices[rng() % devices.size()], randomUuid(rng)};
}

RecordState randomRecord(std::mt19937_64& rng) {
  std::vector<Uuid> devices(1 + rng() % 5);
  for (auto& d : devices) {
    d = randomUuid(rng);
  }
  const Hlc near{rng()};
  RecordState r;
  const std::size_t fields = rng() % 12;
  for (std::size_t i = 0; i < fields; ++i) {
    std::string name = rng() % 8 == 0 ? std::string(kRecordField) : randomText(rng, 12);
    FieldState& s = r.fields[std::move(name)];
    if (rng() % 4 != 0) {
      s.current = randomVersion(rng, devices, near);
    }
    const auto many = [&] { return rng() % 3 == 0 ? rng() % 4 : 0; };
    for (auto n = many(); n > 0; --n) {
      s.conflicts.push_back(randomVersion(rng, devices, near));
    }
    for (auto n = many(); n > 0; --n) {
      s.entries.push_back(randomVersion(rng, devices, near));
    }
    for (auto n = many(); n > 0; --n) {
      s.superseded.push_back({randomHlc(rng, near), devices[rng() % devices.size()]});
    }
  }
  return r;
}

// Format 1, as the server wrote it before format 2.
void putU32(std::string& out, std::size_t v) {
  for (int i = 0; i < 4; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}
std::string encodeRecordStateV1(const RecordState& record) {
  std::string out(1, '\x01');
  putU32(out, record.fields.size());
  for (const auto& [name, state] : record.fields) {
    putU32(out, name.size());
    out.append(name);
    const std::string bytes = encodeFieldState(state);
    putU32(out, bytes.size());
    out.append(bytes);
  }
  return out;
}

// Decodes damaged bytes: corrupt, or some state that encodes and decodes again.
void decodeDamaged(std::string_view bytes) {
  try {
    const RecordState r = decodeRecordState(bytes);
    CHECK(decodeRecordState(encodeRecordState(r)) == r);
  } catch (const Error& e) {
    CHECK(e.code() == Errc::corrupt);
  }
}

} // namespace

TEST_SUITE("sync.record_state") {
  TEST_CASE("random record states survive the stored form, old and new") {
    std::mt19937_64 rng(20240601);
    for (int i = 0; i < 2000; ++i) {
      CAPTURE(i);
      const RecordState r = randomRecord(rng);
      const std::string bytes = encodeRecordState(r);
      REQUIRE(bytes.size() >= 1);
      CHECK(bytes[0] == '\x02');
      CHECK(decodeRecordState(bytes) == r);
      CHECK(encodeRecordState(decodeRecordState(bytes)) == bytes);
      // A row written in format 1 reads the same, and is written back in format 2.
      const std::string old = encodeRecordStateV1(r);
      CHECK(decodeRecordState(old) == r);
      CHECK(encodeRecordState(decodeRecordState(old)) == bytes);
    }
    CHECK(decodeRecordState("") == RecordState{});
    CHECK(decodeRecordState(encodeRecordState({})) == RecordState{});
  }

  TEST_CASE("format 1 bytes of a known record still read") {
    // One field "n" with a current version: Text "x" at HLC 0x0102, device 0x11...,
    // change 0x22..., nothing else.
    std::string v1("\x01\x01\x00\x00\x00\x01\x00\x00\x00n", 10);
    std::string field("\x01\x01\x02\x01\x00\x00\x00\x00\x00\x00", 10);
    field += std::string(16, '\x11') + std::string(16, '\x22') + "\x06\x01x";
    field += std::string(12, '\0'); // no conflicts, entries, superseded
    putU32(v1, field.size());
    v1 += field;
    Uuid device;
    device.bytes.fill(0x11);
    Uuid change;
    change.bytes.fill(0x22);
    RecordState expected;
    expected.fields["n"].current = FieldVersion{std::string("x"), Hlc{0x0102}, device, change};
    CHECK(decodeRecordState(v1) == expected);
  }

  TEST_CASE("a new record's state is less than half its format 1 size") {
    // The shape of the benchmark's records: 38 fields written at once by one device.
    std::mt19937_64 rng(7);
    const Uuid device = randomUuid(rng);
    const Hlc hlc = Hlc::make(1717200000000, 3);
    RecordState r;
    const auto set = [&](std::string name, Value value) {
      r.fields[std::move(name)].current =
          FieldVersion{std::move(value), hlc, device, randomUuid(rng)};
    };
    set(std::string(kRecordField), Null{});
    set("subject_id", std::string("subj-000123"));
    set("assessor_id", std::string("user-042"));
    set("status", std::string("final"));
    set("risk_level", std::string("medium"));
    set("created_at", std::string("2024-03-01T10:00:00Z"));
    set("updated_at", std::string("2024-03-02T11:30:00Z"));
    set("note", std::string("child reported school contact; family visit agreed"));
    for (int k = 1; k <= 30; ++k) {
      char name[8];
      std::snprintf(name, sizeof name, "ind_%02d", k);
      if (k <= 10) {
        set(name, k % 2 == 0);
      } else if (k <= 20) {
        set(name, std::int64_t{k * 3});
      } else {
        set(name, std::string("suspected"));
      }
    }
    REQUIRE(r.fields.size() == 38);
    const std::string v1 = encodeRecordStateV1(r);
    const std::string v2 = encodeRecordState(r);
    MESSAGE("38-field record: format 1 " << v1.size() << " bytes, format 2 " << v2.size());
    CHECK(v2.size() * 100 < v1.size() * 45);
    CHECK(decodeRecordState(v2) == r);
  }

  TEST_CASE("damaged bytes are refused as corrupt or read as some state") {
    std::mt19937_64 rng(99);
    for (int i = 0; i < 200; ++i) {
      CAPTURE(i);
      const std::string bytes = encodeRecordState(randomRecord(rng));
      for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
        CHECK_THROWS_AS(
            [&] {
              try {
                (void)decodeRecordState(std::string_view(bytes).substr(0, cut));
              } catch (const Error& e) {
                CHECK(e.code() == Errc::corrupt);
                throw;
              }
            }(),
            Error);
      }
      CHECK_THROWS_AS((void)decodeRecordState(bytes + "x"), Error);
      if (i < 20) {
        for (std::size_t at = 0; at < bytes.size(); ++at) {
          for (int bit = 0; bit < 8; ++bit) {
            std::string flipped = bytes;
            flipped[at] = static_cast<char>(flipped[at] ^ (1 << bit));
            decodeDamaged(flipped);
          }
        }
      }
      for (int k = 0; k < 50; ++k) {
        std::string damaged = bytes;
        for (auto n = 1 + rng() % 4; n > 0; --n) {
          damaged[rng() % damaged.size()] = static_cast<char>(rng());
        }
        decodeDamaged(damaged);
      }
    }
    // Counts and lengths far beyond the bytes there are.
    decodeDamaged(std::string("\x02\xff\xff\xff\xff\x0f", 6));
    decodeDamaged(std::string("\x02\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12));
    decodeDamaged(std::string("\x02\x00\x01\xff\xff\xff\xff\x0f", 8));
    decodeDamaged(std::string("\x02\x00\x01\x01n\x01\x00", 7));      // device index out of range
    decodeDamaged(std::string("\x02\x00\x01\x01n\x10", 6));          // an unknown part
    decodeDamaged(std::string("\x02\x00\x02\x01n\x00\x01n\x00", 9)); // a field twice
    CHECK_THROWS_AS((void)decodeRecordState(std::string("\x02\x00\x02\x01n\x00\x01n\x00", 9)),
                    Error);
    CHECK_THROWS_AS((void)decodeRecordState(std::string("\x03", 1)), Error);
  }
}
