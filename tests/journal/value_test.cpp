#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/sync/change.hpp>
#include <outpost/sync/value.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

using namespace outpost::sync;

TEST_SUITE("sync.value") {
  TEST_CASE("every kind of value has a canonical JSON form that reads back equal") {
    outpost::Context context;
    const std::vector<std::pair<Value, std::string>> cases = {
        {Null{}, "null"},
        {Tombstone{}, R"({"$tombstone":true})"},
        {true, "true"},
        {std::int64_t{-42}, "-42"},
        {1.5, "1.5"},
        {std::string("a \"quoted\" word"), R"("a \"quoted\" word")"},
        {Bytes{0, 1, 2, 255}, R"({"$bytes":"AAEC/w=="})"},
        {StringList{"a", "b"}, R"(["a","b"])"},
    };
    for (const auto& [value, json] : cases) {
      CAPTURE(json);
      CHECK(toJson(value) == json);
      CHECK(valueFromJson(json) == value);
    }
  }

  TEST_CASE("an integer and a double with the same number are different values") {
    CHECK(Value{std::int64_t{1}} != Value{1.0});
    CHECK(valueFromJson("1.0") == Value{1.0});
    CHECK(valueFromJson("1") == Value{std::int64_t{1}});
  }

  TEST_CASE("text that is not a canonical value is refused") {
    for (const char* bad :
         {"{", R"({"x":1})", "[1,2]", "18446744073709551615", R"({"$bytes":"!!"})"}) {
      CAPTURE(bad);
      CHECK_THROWS_AS((void)valueFromJson(bad), outpost::Error);
    }
    CHECK_THROWS_AS((void)toJson(std::numeric_limits<double>::quiet_NaN()), outpost::Error);
  }

  TEST_CASE("the binary storage form round-trips every kind including extremes") {
    FieldValues fields{{"n", Null{}},
                       {"t", Tombstone{}},
                       {"b", false},
                       {"min", std::numeric_limits<std::int64_t>::min()},
                       {"max", std::numeric_limits<std::int64_t>::max()},
                       {"neg", std::int64_t{-1}},
                       {"d", -0.25},
                       {"s", std::string(1000, 'x')},
                       {"bytes", Bytes{9, 8, 7}},
                       {"list", StringList{"", "x"}}};
    const std::string encoded = encodeFields(fields);
    CHECK(decodeFields(encoded) == fields);
    // read one field at a time: the same fields, in name order
    FieldReader reader(encoded);
    FieldValues read;
    std::string_view name;
    Value value;
    while (reader.next(name, value)) {
      CHECK((read.empty() || read.rbegin()->first < name));
      read.emplace(std::string(name), value);
    }
    CHECK(read == fields);
  }

  TEST_CASE("integers and lengths on either side of a varint's one-byte form round-trip") {
    FieldValues fields;
    for (const std::int64_t v : std::initializer_list<std::int64_t>{0, 1, -1, 63, -64, 64, -65, 127,
                                                                    128, 8191, 8192, -8193}) {
      fields.emplace("i" + std::to_string(v), v);
    }
    for (const std::size_t len : {0U, 1U, 127U, 128U, 16383U, 16384U}) {
      fields.emplace("s" + std::to_string(len), std::string(len, 'x'));
    }
    CHECK(decodeFields(encodeFields(fields)) == fields);
  }

  TEST_CASE("truncated or trailing binary input is reported as corrupt") {
    const std::string encoded = encodeFields({{"s", std::string("hello")}});
    for (std::size_t cut = 0; cut < encoded.size(); ++cut) {
      CHECK_THROWS_AS((void)decodeFields(encoded.substr(0, cut)), outpost::Error);
    }
    CHECK_THROWS_AS((void)decodeFields(encoded + "x"), outpost::Error);
    const auto readAll = [](const std::string& in) {
      FieldReader reader(in);
      std::string_view name;
      Value value;
      while (reader.next(name, value)) {
      }
    };
    for (std::size_t cut = 0; cut < encoded.size(); ++cut) {
      CHECK_THROWS_AS(readAll(encoded.substr(0, cut)), outpost::Error);
    }
    CHECK_THROWS_AS(readAll(encoded + "x"), outpost::Error);
    try {
      (void)decodeFields("\x01\x01s\x63");
      FAIL("no throw");
    } catch (const outpost::Error& e) {
      CHECK(e.code() == outpost::Errc::corrupt);
    }
  }

  TEST_CASE("stored fields out of name order, repeated or over-counted are reported as corrupt") {
    const std::string a = encodeFields({{"a", true}}).substr(1); // without the count
    const std::string b = encodeFields({{"b", true}}).substr(1);
    CHECK(decodeFields("\x02" + a + b).size() == 2);
    for (const std::string& bad : {"\x02" + b + a, "\x02" + a + a,
                                   // a count of 2^35 - 1 with one field: no huge reservation
                                   std::string("\xff\xff\xff\xff\x7f") + a}) {
      try {
        (void)decodeFields(bad);
        FAIL("no throw");
      } catch (const outpost::Error& e) {
        CHECK(e.code() == outpost::Errc::corrupt);
      }
    }
  }

  TEST_CASE("name order is checked in full: names alike in their first 8 bytes, prefixes, NULs") {
    using namespace std::string_literals;
    const auto field = [](const std::string& name) {
      return encodeFields({{name, true}}).substr(1); // without the count
    };
    // Each pair in name order: decodes in this order, refused swapped or repeated.
    const std::vector<std::pair<std::string, std::string>> ordered = {
        {"indicator_01", "indicator_02"}, // decided after 8 bytes
        {"abcdefgh", "abcdefghi"},        // a prefix, 8 bytes long
        {"abc", "abcd"},                  // a prefix, within 8 bytes
        {"ab", "ab\0"s},                  // a NUL after a prefix
        {"ab\0"s, "ab\x01"s},
        {"a\x7f", "a\x80"}, // bytes compare unsigned
        {"", "a"},
        {"zz", "zzzzzzzzzzzzzzzz"},
    };
    for (const auto& [first, second] : ordered) {
      CAPTURE(first);
      CAPTURE(second);
      CHECK(decodeFields("\x02" + field(first) + field(second)).size() == 2);
      for (const std::string& bad :
           {"\x02" + field(second) + field(first), "\x02" + field(first) + field(first),
            "\x02" + field(second) + field(second)}) {
        CHECK_THROWS_AS((void)decodeFields(bad), outpost::Error);
      }
    }
  }

  TEST_CASE("fields with numbered names round-trip, and an unknown number is corrupt") {
    const std::vector<std::string> known = {"", "alpha", "beta", "gamma"};
    outpost::sync::FieldNameCodec names;
    names.number = [&](std::string_view n) -> std::uint64_t {
      return static_cast<std::uint64_t>(std::find(known.begin(), known.end(), n) - known.begin());
    };
    names.name = [&](std::uint64_t k) -> const std::string* {
      return k > 0 && k < known.size() ? &known[k] : nullptr;
    };
    const FieldValues fields{{"alpha", std::string("x")}, {"gamma", std::int64_t{3}}};
    const std::string encoded = encodeFields(fields, names);
    CHECK(encoded.size() < encodeFields(fields).size());
    CHECK(encoded.find("alpha") == std::string::npos);
    CHECK(decodeFields(encoded, names) == fields);
    FieldReader reader(encoded, &names);
    std::string_view name;
    Value value;
    REQUIRE(reader.next(name, value));
    CHECK(name == "alpha");
    REQUIRE(reader.next(name, value));
    CHECK(name == "gamma");
    CHECK_FALSE(reader.next(name, value));
    // gamma (3) before alpha (1) in the stored order, and a number never given out
    std::string swapped = encoded;
    std::swap(swapped[1], swapped[5]); // the two names' numbers (around alpha's "x")
    for (const std::string& bad : {swapped, std::string("\x01\x09\x02")}) {
      try {
        (void)decodeFields(bad, names);
        FAIL("no throw");
      } catch (const outpost::Error& e) {
        CHECK(e.code() == outpost::Errc::corrupt);
      }
    }
    // The same with the names looked up in a table of known names and their keys.
    std::vector<outpost::sync::FieldNameCodec::Known> table(known.size());
    for (std::size_t k = 1; k < known.size(); ++k) {
      table[k] = {&known[k], outpost::sync::nameOrderKey(known[k])};
    }
    names.known = &table;
    names.name = [](std::uint64_t) -> const std::string* { return nullptr; };
    CHECK(decodeFields(encoded, names) == fields);
    CHECK_THROWS_AS((void)decodeFields(swapped, names), outpost::Error);
  }

  TEST_CASE("merge policies have stable names") {
    CHECK(mergePolicyName(MergePolicy::appendOnly) == "append-only");
    CHECK(parseMergePolicy("immutable-after-sign") == MergePolicy::immutableAfterSign);
    CHECK_FALSE(parseMergePolicy("newest").has_value());
  }
}
