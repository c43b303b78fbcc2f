// The stored form of a record's merge state (format 3, docs/ARCHITECTURE.md): random
// states round-trip, derived change ids are a flag, format 1 and 2 bytes still read,
// and damaged bytes are refused or read as some state, never a crash.

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

/// A version whose change id is now and then left all-zero (a derived one).
FieldVersion randomVersion(std::mt19937_64& rng, const std::vector<Uuid>& devices, Hlc near) {
  return {randomValue(rng), randomHlc(rng, near), devices[rng() % devices.size()],
          rng() % 3 == 0 ? Uuid{} : randomUuid(rng)};
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
      CHECK(bytes[0] == '\x03');
      CHECK(decodeRecordState(bytes) == r);
      CHECK(encodeRecordState(decodeRecordState(bytes)) == bytes);
      // A row written in format 1 reads the same, and is written back in format 3.
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

  TEST_CASE("format 2 bytes of a known record still read") {
    // Field "n": current Text "x" at HLC 0x0102 by device 0x11..., change 0x22...;
    // superseded: HLC 0x0100 by device 0x33... (index 1: format 2 shifts it by one).
    std::string v2("\x02\x02", 2);
    v2 += std::string(16, '\x11') + std::string(16, '\x33');
    v2 += std::string("\x01\x01n\x09\x01\x84\x04", 7) + std::string(16, '\x22');
    encodeValue(std::string("x"), v2);
    v2 += std::string("\x01\x03\x03", 3);
    Uuid device;
    device.bytes.fill(0x11);
    Uuid other;
    other.bytes.fill(0x33);
    Uuid change;
    change.bytes.fill(0x22);
    RecordState expected;
    expected.fields["n"].current = FieldVersion{std::string("x"), Hlc{0x0102}, device, change};
    expected.fields["n"].superseded = {{Hlc{0x0100}, other}};
    CHECK(decodeRecordState(v2) == expected);
    // Written back in format 3: the version byte and the second device's stamp.
    std::string v3 = v2;
    v3[0] = '\x03';
    v3[v3.size() - 2] = '\x05';
    CHECK(encodeRecordState(expected) == v3);
    // An all-zero id a device sent before "derived-ids" (format 2) reads as the
    // derived one; format 3 never writes one out. A superseded version has no id.
    std::string nilId = v2;
    REQUIRE(nilId[40] == '\x04'); // the HLC's last byte; the change id follows
    std::fill(nilId.begin() + 41, nilId.begin() + 57, '\0');
    RecordState derived = expected;
    derived.fields["n"].current->changeId = Uuid{};
    CHECK(decodeRecordState(nilId) == derived);
    nilId[0] = '\x03';
    nilId[nilId.size() - 2] = '\x05';
    CHECK_THROWS_AS((void)decodeRecordState(nilId), Error);
    std::string flagged = v3;
    flagged[flagged.size() - 2] = '\x07';
    CHECK_THROWS_AS((void)decodeRecordState(flagged), Error);
  }

  TEST_CASE("derived change ids are stored as a flag and derived again when asked for") {
    std::mt19937_64 rng(11);
    const Uuid record = randomUuid(rng);
    const Uuid a = randomUuid(rng);
    const Uuid b = randomUuid(rng);
    const Hlc first = Hlc::make(1717200000000, 0);
    const Hlc later = Hlc::make(1717200005000, 2);
    RecordState r;
    r.fields["risk"].current = FieldVersion{std::string("high"), later, b, Uuid{}};
    r.fields["risk"].conflicts = {FieldVersion{std::string("low"), first, a, Uuid{}}};
    r.fields["risk"].superseded = {{Hlc::make(1717100000000, 0), a}};
    const Uuid sent = randomUuid(rng);
    r.fields["school"].current = FieldVersion{std::string("x"), first, a, sent};
    r.fields["notes"].entries = {FieldVersion{StringList{"one"}, first, a, Uuid{}},
                                 FieldVersion{StringList{"two"}, later, b, Uuid{}}};
    const std::string bytes = encodeRecordState(r);
    RecordState spelled = r;
    spelled.fields["risk"].current->changeId = derivedChangeId(b, record, "risk", later);
    spelled.fields["risk"].conflicts[0].changeId = derivedChangeId(a, record, "risk", first);
    spelled.fields["notes"].entries[0].changeId = derivedChangeId(a, record, "notes", first);
    spelled.fields["notes"].entries[1].changeId = derivedChangeId(b, record, "notes", later);
    // Left out: four ids of 16 bytes each.
    CHECK(bytes.size() + 4 * 16 == encodeRecordState(spelled).size());
    CHECK(decodeRecordState(bytes) == r);
    CHECK(decodeRecordState(bytes, record) == spelled);
    CHECK(decodeRecordState(encodeRecordState(spelled), record) == spelled);
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
    const std::string v3 = encodeRecordState(r);
    // As the server keeps a new record's write: every id derived, so left out.
    RecordState derived = r;
    for (auto& [name, state] : derived.fields) {
      state.current->changeId = Uuid{};
    }
    const std::string compact = encodeRecordState(derived);
    MESSAGE("38-field record: format 1 " << v1.size() << " bytes, format 3 " << v3.size()
                                         << ", with its ids derived " << compact.size());
    CHECK(v3.size() * 100 < v1.size() * 45);
    CHECK(compact.size() + 38 * 16 == v3.size());
    CHECK(decodeRecordState(v3) == r);
    CHECK(decodeRecordState(compact) == derived);
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
    for (const char* format : {"\x02", "\x03"}) {
      CAPTURE(format[0]);
      decodeDamaged(std::string(format) + std::string("\x00\x01\x01n\x01\x00", 6));
      decodeDamaged(std::string(format) + std::string("\x00\x01\x01n\x01\x02", 6));
      CHECK_THROWS_AS(
          (void)decodeRecordState(std::string(format) + std::string("\x00\x01\x01n\x01\x00", 6)),
          Error);
    }
    CHECK_THROWS_AS((void)decodeRecordState(std::string("\x03", 1)), Error);
    CHECK_THROWS_AS((void)decodeRecordState(std::string("\x04\x00\x00", 3)), Error);
  }
}
