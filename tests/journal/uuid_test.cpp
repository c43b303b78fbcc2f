#include <outpost/context.hpp>
#include <outpost/sync/change.hpp>
#include <outpost/sync/uuid.hpp>

#include <doctest/doctest.h>

#include <cctype>
#include <set>
#include <string>

using outpost::sync::Uuid;

TEST_SUITE("sync.uuid") {
  TEST_CASE("random UUIDs are version 4, variant 1 and distinct") {
    outpost::Context context;
    std::set<Uuid> seen;
    for (int i = 0; i < 1000; ++i) {
      const Uuid id = Uuid::random();
      CHECK(id.version() == 4);
      CHECK((id.bytes[8] & 0xC0) == 0x80);
      CHECK(seen.insert(id).second);
    }
  }

  TEST_CASE("text form round-trips in lowercase 8-4-4-4-12") {
    outpost::Context context;
    const Uuid id = Uuid::random();
    const std::string text = id.toString();
    CHECK(text.size() == 36);
    CHECK(text[8] == '-');
    CHECK(text[23] == '-');
    CHECK(Uuid::parse(text) == id);
    const auto upper = Uuid::parse("0A1B2C3D-4E5F-4a6b-8c7d-9e0f1a2b3c4d");
    REQUIRE(upper);
    CHECK(upper->toString() == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  }

  TEST_CASE("malformed text does not parse") {
    for (const char* bad :
         {"", "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4",
          "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4dd", "0a1b2c3d-4e5f-4a6b-8c7d_9e0f1a2b3c4d",
          "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4g", "0a1b2c3-d4e5f-4a6b-8c7d-9e0f1a2b3c4d"}) {
      CAPTURE(bad);
      CHECK_FALSE(Uuid::parse(bad).has_value());
    }
  }

  TEST_CASE("every character of every position is judged as the 8-4-4-4-12 form says") {
    const std::string good = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    const std::string hex = "0123456789abcdefABCDEF";
    for (std::size_t at = 0; at < good.size(); ++at) {
      const bool dash = at == 8 || at == 13 || at == 18 || at == 23;
      for (int c = 0; c < 256; ++c) {
        std::string text = good;
        text[at] = static_cast<char>(c);
        const bool valid = dash ? c == '-' : hex.find(static_cast<char>(c)) != std::string::npos;
        const auto id = Uuid::parse(text);
        CAPTURE(at);
        CAPTURE(c);
        REQUIRE(id.has_value() == valid);
        if (valid) {
          std::string lower = text;
          for (char& ch : lower) {
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          }
          CHECK(id->toString() == lower);
        }
      }
    }
  }

  TEST_CASE("bytes convert only at exactly 16") {
    const std::uint8_t raw[16] = {1, 2, 3};
    CHECK(Uuid::fromBytes(raw).has_value());
    CHECK_FALSE(Uuid::fromBytes(std::span(raw, 15)).has_value());
    CHECK(Uuid{}.isNil());
  }
}

TEST_SUITE("sync.change_id") {
  TEST_CASE("a derived change id is BLAKE2b-128 of (device, record, big-endian HLC, field) as a "
            "version-8 UUID, the same whole or through a write's deriver") {
    outpost::Context context;
    Uuid device;
    Uuid record;
    for (std::uint8_t i = 0; i < 16; ++i) {
      device.bytes[i] = i;
      record.bytes[i] = static_cast<std::uint8_t>(16 + i);
    }
    const outpost::sync::Hlc hlc{0x0123456789abcdefULL};
    // Computed apart from the project's code (Python's hashlib.blake2b, digest_size=16).
    const Uuid expected = *Uuid::parse("e81cb82c-10d5-87a8-9b53-1835878d6290");
    CHECK(outpost::sync::derivedChangeId(device, record, "risk_level", hlc) == expected);
    const outpost::sync::ChangeIdDeriver derive(device, record, hlc);
    CHECK(derive("risk_level") == expected);
    for (const std::string_view field : {"", "a", "ind_01",
                                         "a field name longer than one block of "
                                         "the hash, which is 128 bytes long, so "
                                         "that it takes two compressions"}) {
      CHECK(derive(field) == outpost::sync::derivedChangeId(device, record, field, hlc));
    }
    CHECK(derive("ind_01") != derive("ind_02"));
  }
}
