// Enrollment payloads, one-time codes and the device registry.

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/protocol/enrollment.hpp>

#include <doctest/doctest.h>

#include <functional>

using namespace outpost;
using namespace outpost::protocol;
using namespace std::chrono_literals;

namespace {

Errc codeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::ok;
}

struct Server {
  Context ctx;
  sql::Database db{":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE};
  DeviceRegistry devices{db};
  EnrollmentRegistry codes{ctx, db, SecretBytes::copyOf(std::vector<std::uint8_t>(32, 0x5a)),
                           devices};
  Clock::time_point now = Clock::time_point{} + std::chrono::hours(24 * 365 * 50);
  noise::KeyPair deviceKey = noise::KeyPair::generate(ctx);
};

/// The code with one secret character changed (still valid base-32).
std::string wrongSecret(std::string code) {
  code.back() = code.back() == 'Z' ? 'Y' : 'Z';
  return code;
}

} // namespace

TEST_SUITE("protocol.enrollment") {
  TEST_CASE("a payload formats and parses back, IPv6 hosts included") {
    const Context ctx;
    const auto key = noise::KeyPair::generate(ctx);
    for (std::string host : {"sync.example.org", "10.0.0.7", "[2001:db8::1]"}) {
      CAPTURE(host);
      const EnrollmentPayload p{host, 7443, key.publicKey, "ABCD-EFGH-JKMN-PQRS"};
      const std::string text = formatEnrollmentPayload(p);
      CHECK(text.rfind("outpost-enroll:v1:", 0) == 0);
      CHECK(parseEnrollmentPayload(text) == p);
      CHECK(parseEnrollmentPayload(text + "\n") == p); // pasted with a newline
    }
  }

  TEST_CASE("malformed payloads are refused with invalid_argument") {
    const Context ctx;
    const auto key = noise::KeyPair::generate(ctx);
    const std::string k = toBase64Url(key.publicKey);
    for (const std::string& bad :
         {std::string("outpost-enroll:v2:h:1:") + k + ":ABCD-EFGH-JKMN-PQRS",
          std::string("outpost-enroll:v1:h:0:") + k + ":ABCD-EFGH-JKMN-PQRS",
          std::string("outpost-enroll:v1:h:65536:") + k + ":ABCD-EFGH-JKMN-PQRS",
          std::string("outpost-enroll:v1:h:+80:") + k + ":ABCD-EFGH-JKMN-PQRS",
          std::string("outpost-enroll:v1:h:80:") + k.substr(1) + ":ABCD-EFGH-JKMN-PQRS",
          std::string("outpost-enroll:v1:h:80:") + k + ":ABCD-EFGH-JKMN-PQR",
          std::string("outpost-enroll:v1:h:80:") + k + ":ABCD-EFGH-JKMN-PQRU",
          std::string("outpost-enroll:v1:h/x:80:") + k + ":ABCD-EFGH-JKMN-PQRS",
          std::string("outpost-enroll:v1::80:") + k + ":ABCD-EFGH-JKMN-PQRS",
          std::string("outpost-enroll:v1:") + k, std::string("")}) {
      CAPTURE(bad);
      CHECK(codeOf([&] { (void)parseEnrollmentPayload(bad); }) == Errc::invalid_argument);
    }
  }

  TEST_CASE("typed codes are forgiving about case, dashes and look-alike letters") {
    CHECK(canonicalEnrollmentCode("abcd efgh jkmn pqrs") == "ABCD-EFGH-JKMN-PQRS");
    CHECK(canonicalEnrollmentCode("O0IL-1111-0000-2222") == "0011-1111-0000-2222");
    CHECK(codeOf([] { (void)canonicalEnrollmentCode("ABCD-EFGH-JKMN-PQRSX"); }) ==
          Errc::invalid_argument);
    CHECK(codeOf([] { (void)canonicalEnrollmentCode("ABCD-EFGH-JKMN-PQRU"); }) ==
          Errc::invalid_argument); // U is not Crockford
  }

  TEST_CASE("an issued code enrolls a device exactly once") {
    Server s;
    const IssuedCode issued = s.codes.issueEnrollmentCode("worker-7", "team-north", 1h, s.now);
    CHECK(issued.code.size() == 19);
    CHECK(issued.expiresAt == s.now + 1h);
    const RedeemResult first = s.codes.redeem(issued.code, s.deviceKey.publicKey, s.now + 10min);
    REQUIRE(first.outcome == RedeemOutcome::enrolled);
    REQUIRE(first.device.has_value());
    CHECK(first.device->workerId == "worker-7");
    CHECK(first.device->teamId == "team-north");
    CHECK(s.devices.findByKey(s.deviceKey.publicKey) == first.device);
    CHECK(s.devices.findById(first.device->deviceId) == first.device);

    const auto other = noise::KeyPair::generate(s.ctx);
    CHECK(s.codes.redeem(issued.code, other.publicKey, s.now + 11min).outcome ==
          RedeemOutcome::alreadyUsed);
    CHECK_FALSE(s.devices.findByKey(other.publicKey).has_value());
  }

  TEST_CASE("codes are stored hashed, never in clear") {
    Server s;
    const IssuedCode issued = s.codes.issueEnrollmentCode("w", "t", 1h, s.now);
    const std::string secretPart = issued.code.substr(5);
    sql::Statement st(s.db, "SELECT handle, hex(code_hash) FROM protocol_enrollment_codes");
    REQUIRE(st.step());
    CHECK(st.columnText(0) == issued.code.substr(0, 4));
    CHECK(std::string(st.columnText(1)).size() == 64); // 32-byte keyed BLAKE2b
    CHECK(s.db.queryInt("SELECT count(*) FROM protocol_enrollment_codes WHERE "
                        "instr(CAST(code_hash AS TEXT), '" +
                        secretPart.substr(0, 4) + "') > 0 OR instr(worker_id || team_id, '" +
                        secretPart.substr(0, 4) + "') > 0") == 0);
  }

  TEST_CASE("an expired code is refused") {
    Server s;
    const IssuedCode issued = s.codes.issueEnrollmentCode("w", "t", 15min, s.now);
    CHECK(s.codes.redeem(issued.code, s.deviceKey.publicKey, s.now + 15min).outcome ==
          RedeemOutcome::expired);
    CHECK_FALSE(s.devices.findByKey(s.deviceKey.publicKey).has_value());
  }

  TEST_CASE("guessing locks the code after five wrong attempts, even for the right code") {
    Server s;
    const IssuedCode issued = s.codes.issueEnrollmentCode("w", "t", 1h, s.now);
    for (int i = 1; i < EnrollmentRegistry::kMaxAttempts; ++i) {
      CHECK(s.codes.redeem(wrongSecret(issued.code), s.deviceKey.publicKey, s.now).outcome ==
            RedeemOutcome::wrongCode);
    }
    CHECK(s.codes.redeem(wrongSecret(issued.code), s.deviceKey.publicKey, s.now).outcome ==
          RedeemOutcome::locked);
    CHECK(s.codes.redeem(issued.code, s.deviceKey.publicKey, s.now).outcome ==
          RedeemOutcome::locked);
    CHECK_FALSE(s.devices.findByKey(s.deviceKey.publicKey).has_value());
  }

  TEST_CASE("unknown and unparsable codes are wrong codes") {
    Server s;
    CHECK(s.codes.redeem("ZZZZ-ZZZZ-ZZZZ-ZZZZ", s.deviceKey.publicKey, s.now).outcome ==
          RedeemOutcome::wrongCode);
    CHECK(s.codes.redeem("not a code", s.deviceKey.publicKey, s.now).outcome ==
          RedeemOutcome::wrongCode);
  }

  TEST_CASE("a device key that is already enrolled cannot enroll again") {
    Server s;
    const IssuedCode a = s.codes.issueEnrollmentCode("w", "t", 1h, s.now);
    const IssuedCode b = s.codes.issueEnrollmentCode("w", "t", 1h, s.now);
    CHECK(a.code != b.code);
    REQUIRE(s.codes.redeem(a.code, s.deviceKey.publicKey, s.now).outcome ==
            RedeemOutcome::enrolled);
    CHECK(s.codes.redeem(b.code, s.deviceKey.publicKey, s.now).outcome == RedeemOutcome::keyInUse);
  }

  TEST_CASE("revoking marks the device and unknown devices report false") {
    Server s;
    const IssuedCode a = s.codes.issueEnrollmentCode("w", "t", 1h, s.now);
    const auto r = s.codes.redeem(a.code, s.deviceKey.publicKey, s.now);
    REQUIRE(r.device.has_value());
    CHECK(s.devices.revoke(r.device->deviceId));
    CHECK(s.devices.findByKey(s.deviceKey.publicKey)->revoked);
    CHECK_FALSE(s.devices.revoke(Uuid{}));
  }

  TEST_CASE("issuing validates its inputs") {
    Server s;
    CHECK(codeOf([&] { (void)s.codes.issueEnrollmentCode("", "t", 1h, s.now); }) ==
          Errc::invalid_argument);
    CHECK(codeOf([&] { (void)s.codes.issueEnrollmentCode("w", "t", 0s, s.now); }) ==
          Errc::invalid_argument);
    CHECK(codeOf([&] {
            EnrollmentRegistry bad(s.ctx, s.db, SecretBytes::copyOf(std::vector<std::uint8_t>(31)),
                                   s.devices);
          }) == Errc::invalid_argument);
  }

  TEST_CASE("base64url round-trips and refuses non-canonical text") {
    const std::vector<std::uint8_t> bytes = {0xfb, 0xff, 0x00, 0x10};
    CHECK(toBase64Url(bytes) == "-_8AEA");
    CHECK(fromBase64Url("-_8AEA") == bytes);
    CHECK(codeOf([] { (void)fromBase64Url("-_8AEB"); }) == Errc::invalid_argument);
    CHECK(codeOf([] { (void)fromBase64Url("+/8AEA"); }) == Errc::invalid_argument);
  }
}
