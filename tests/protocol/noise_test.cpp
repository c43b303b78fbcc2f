// Noise engine behaviour beyond the vectors: failure modes, limits, rekey.

#include "hex.hpp"

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/protocol/noise.hpp>

#include <doctest/doctest.h>

#include <functional>
#include <limits>

using namespace outpost;
using namespace outpost::protocol;
using namespace outpost::protocol::noise;
using testing::bytesOf;

namespace {

Errc codeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::ok;
}

struct Pair {
  HandshakeState init;
  HandshakeState resp;
};

Pair ikPair(const Context& ctx, const KeyPair& client, const KeyPair& server,
            const PublicKey& serverAsKnown) {
  HandshakeConfig ic;
  ic.pattern = patternIK();
  ic.role = Role::initiator;
  ic.prologue = bytesOf("test");
  ic.localStatic = client.clone();
  ic.remoteStatic = serverAsKnown;
  HandshakeConfig rc;
  rc.pattern = patternIK();
  rc.role = Role::responder;
  rc.prologue = bytesOf("test");
  rc.localStatic = server.clone();
  return {HandshakeState(ctx, std::move(ic)), HandshakeState(ctx, std::move(rc))};
}

} // namespace

TEST_SUITE("protocol.noise") {
  TEST_CASE("HKDF into buffers equals HKDF, even writing over its own chaining key, and "
            "re-keying a cipher resets its nonce") {
    Context ctx;
    for (const Hash hash : {Hash::sha256, Hash::blake2b}) {
      CAPTURE(static_cast<int>(hash));
      const std::size_t n = hash == Hash::sha256 ? 32 : 64;
      Bytes ck(n);
      for (std::size_t i = 0; i < n; ++i) {
        ck[i] = static_cast<std::uint8_t>(3 * i + 1);
      }
      const Bytes ikm = bytesOf("input key material");
      for (const int count : {2, 3}) {
        const auto expected = hkdf(hash, ck, ikm, count);
        Bytes inPlace = ck; // output 1 goes over the chaining key it is derived from
        Bytes second(n);
        Bytes third(n);
        std::vector<std::span<std::uint8_t>> outputs = {inPlace, second};
        if (count == 3) {
          outputs.emplace_back(third);
        }
        hkdfInto(hash, inPlace, ikm, outputs);
        CHECK(std::equal(inPlace.begin(), inPlace.end(), expected[0].span().begin()));
        CHECK(std::equal(second.begin(), second.end(), expected[1].span().begin()));
        if (count == 3) {
          CHECK(std::equal(third.begin(), third.end(), expected[2].span().begin()));
        }
      }
      Bytes wrongSize(n + 1);
      const std::array<std::span<std::uint8_t>, 2> bad = {std::span<std::uint8_t>(wrongSize),
                                                          std::span<std::uint8_t>(wrongSize)};
      CHECK_THROWS_AS(hkdfInto(hash, ck, ikm, bad), Error);
    }
    const Bytes key(kKeySize, 7);
    CipherState a(key);
    (void)a.encrypt({}, bytesOf("one"));
    CHECK(a.nonce() == 1);
    a.initializeKey(key);
    CHECK(a.nonce() == 0);
    CipherState b(key);
    CHECK(a.encrypt({}, bytesOf("two")) == b.encrypt({}, bytesOf("two")));
  }

  TEST_CASE("an IK handshake with fresh keys completes and both sides agree") {
    const Context ctx;
    const auto client = KeyPair::generate(ctx);
    const auto server = KeyPair::generate(ctx);
    auto [init, resp] = ikPair(ctx, client, server, server.publicKey);
    CHECK(resp.readMessage(init.writeMessage(bytesOf("hi"))) == bytesOf("hi"));
    REQUIRE(resp.remoteStatic().has_value());
    CHECK(*resp.remoteStatic() == client.publicKey);
    CHECK(init.readMessage(resp.writeMessage({})).empty());
    REQUIRE(init.isComplete());
    CHECK(init.handshakeHash() == resp.handshakeHash());
    auto ti = init.finish();
    auto tr = resp.finish();
    CHECK(tr.receive.decrypt({}, ti.send.encrypt({}, bytesOf("a"))) == bytesOf("a"));
    CHECK(ti.receive.decrypt({}, tr.send.encrypt({}, bytesOf("b"))) == bytesOf("b"));
  }

  TEST_CASE("a wrong server key makes the server refuse the first message") {
    const Context ctx;
    const auto client = KeyPair::generate(ctx);
    const auto server = KeyPair::generate(ctx);
    const auto impostor = KeyPair::generate(ctx);
    auto [init, resp] = ikPair(ctx, client, server, impostor.publicKey);
    const Bytes m1 = init.writeMessage({});
    CHECK(codeOf([&] { (void)resp.readMessage(m1); }) == Errc::protocol);
  }

  TEST_CASE("a different prologue makes the handshake fail") {
    const Context ctx;
    const auto client = KeyPair::generate(ctx);
    const auto server = KeyPair::generate(ctx);
    HandshakeConfig ic;
    ic.pattern = patternXK();
    ic.prologue = bytesOf("outpost v1");
    ic.localStatic = client.clone();
    ic.remoteStatic = server.publicKey;
    HandshakeConfig rc;
    rc.pattern = patternXK();
    rc.role = Role::responder;
    rc.prologue = bytesOf("outpost v2");
    rc.localStatic = server.clone();
    HandshakeState init(ctx, std::move(ic));
    HandshakeState resp(ctx, std::move(rc));
    CHECK(codeOf([&] { (void)resp.readMessage(init.writeMessage({})); }) == Errc::protocol);
  }

  TEST_CASE("a flipped bit in any handshake byte is refused") {
    const Context ctx;
    const auto client = KeyPair::generate(ctx);
    const auto server = KeyPair::generate(ctx);
    auto [init, resp] = ikPair(ctx, client, server, server.publicKey);
    const Bytes m1 = init.writeMessage(bytesOf("payload"));
    for (std::size_t i = 0; i < m1.size(); ++i) {
      auto [i2, r2] = ikPair(ctx, client, server, server.publicKey);
      (void)i2;
      Bytes bad = m1;
      bad[i] ^= 0x01;
      CAPTURE(i);
      CHECK(codeOf([&] { (void)r2.readMessage(bad); }) == Errc::protocol);
    }
    CHECK(codeOf([&] { (void)resp.readMessage(std::span(m1).first(m1.size() - 1)); }) ==
          Errc::protocol);
  }

  TEST_CASE("transport messages are refused when replayed, reordered or tampered") {
    const Context ctx;
    CipherState tx(std::vector<std::uint8_t>(32, 7));
    CipherState rx(std::vector<std::uint8_t>(32, 7));
    const Bytes a = tx.encrypt({}, bytesOf("first"));
    const Bytes b = tx.encrypt({}, bytesOf("second"));
    SUBCASE("reordered") {
      CHECK(codeOf([&] { (void)rx.decrypt({}, b); }) == Errc::protocol);
    }
    SUBCASE("replayed") {
      CHECK(rx.decrypt({}, a) == bytesOf("first"));
      CHECK(codeOf([&] { (void)rx.decrypt({}, a); }) == Errc::protocol);
      CHECK(rx.decrypt({}, b) == bytesOf("second"));
    }
    SUBCASE("tampered") {
      Bytes bad = a;
      bad.back() ^= 0x80;
      CHECK(codeOf([&] { (void)rx.decrypt({}, bad); }) == Errc::protocol);
      CHECK(rx.nonce() == 0); // a failed decryption does not advance the nonce
    }
  }

  TEST_CASE("the last nonce is reserved and never used") {
    const Context ctx;
    CipherState tx(std::vector<std::uint8_t>(32, 1));
    tx.setNonce(std::numeric_limits<std::uint64_t>::max() - 1);
    CHECK(tx.encrypt({}, bytesOf("x")).size() == 1 + kTagSize);
    CHECK(codeOf([&] { (void)tx.encrypt({}, bytesOf("x")); }) == Errc::protocol);
  }

  TEST_CASE("messages over 65535 bytes are refused") {
    const Context ctx;
    CipherState tx(std::vector<std::uint8_t>(32, 1));
    CHECK(tx.encrypt({}, Bytes(kMaxMessage - kTagSize)).size() == kMaxMessage);
    CHECK(codeOf([&] { (void)tx.encrypt({}, Bytes(kMaxMessage - kTagSize + 1)); }) ==
          Errc::invalid_argument);
    CipherState rx(std::vector<std::uint8_t>(32, 1));
    CHECK(codeOf([&] { (void)rx.decrypt({}, Bytes(kMaxMessage + 1)); }) == Errc::protocol);
  }

  TEST_CASE("rekey changes the key in step on both sides") {
    const Context ctx;
    CipherState tx(std::vector<std::uint8_t>(32, 9));
    CipherState rx(std::vector<std::uint8_t>(32, 9));
    CipherState stale(std::vector<std::uint8_t>(32, 9));
    tx.rekey();
    rx.rekey();
    const Bytes c = tx.encrypt({}, bytesOf("after rekey"));
    CHECK(rx.decrypt({}, c) == bytesOf("after rekey"));
    CHECK(codeOf([&] { (void)stale.decrypt({}, c); }) == Errc::protocol);
  }

  TEST_CASE("HMAC-BLAKE2b and HMAC-SHA512 match RFC-style constructions") {
    // RFC 4231 test case 2 for HMAC-SHA512 ("Jefe").
    const Bytes mac = hmac(Hash::sha512, bytesOf("Jefe"), bytesOf("what do ya want for nothing?"));
    CHECK(mac ==
          testing::fromHex("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
                           "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"));
  }

  TEST_CASE("secrets compare in constant time and clone by value") {
    const Context ctx;
    SecretBytes a = SecretBytes::copyOf(bytesOf("secret"));
    SecretBytes b = a.clone();
    CHECK(b.equals(bytesOf("secret")));
    CHECK_FALSE(b.equals(bytesOf("secreT")));
    CHECK_FALSE(b.equals(bytesOf("secre")));
  }
}
