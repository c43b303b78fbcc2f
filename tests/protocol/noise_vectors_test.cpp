// Conformance: the cacophony vectors (public domain), all 177 of the file: every
// pattern the engine is given here, for BLAKE2b, SHA512 and SHA256, with and without PSKs, checked
// byte for byte: handshake messages, handshake hash and transport messages.

#include "hex.hpp"

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/protocol/noise.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>

using namespace outpost;
using namespace outpost::protocol;
using namespace outpost::protocol::noise;
using testing::fromHex;

namespace {

using T = Token;

// The one-way, fundamental and deferred patterns of Noise rev 34 §7.4-7.6, as data
// for the same engine. IK and XK are the product's; the others test the engine.
const std::map<std::string, HandshakePattern>& basePatterns() {
  static const std::map<std::string, HandshakePattern> patterns = [] {
    std::map<std::string, HandshakePattern> m;
    auto add = [&](std::string name, std::vector<T> ipre, std::vector<T> rpre,
                   std::vector<std::vector<T>> msgs) {
      m.emplace(name, HandshakePattern{name, std::move(ipre), std::move(rpre), std::move(msgs)});
    };
    add("N", {}, {T::s}, {{T::e, T::es}});
    add("K", {T::s}, {T::s}, {{T::e, T::es, T::ss}});
    add("X", {}, {T::s}, {{T::e, T::es, T::s, T::ss}});
    add("NN", {}, {}, {{T::e}, {T::e, T::ee}});
    add("NK", {}, {T::s}, {{T::e, T::es}, {T::e, T::ee}});
    add("NX", {}, {}, {{T::e}, {T::e, T::ee, T::s, T::es}});
    add("KN", {T::s}, {}, {{T::e}, {T::e, T::ee, T::se}});
    add("KK", {T::s}, {T::s}, {{T::e, T::es, T::ss}, {T::e, T::ee, T::se}});
    add("KX", {T::s}, {}, {{T::e}, {T::e, T::ee, T::se, T::s, T::es}});
    add("XN", {}, {}, {{T::e}, {T::e, T::ee}, {T::s, T::se}});
    add("XK", {}, {T::s}, {{T::e, T::es}, {T::e, T::ee}, {T::s, T::se}});
    add("XX", {}, {}, {{T::e}, {T::e, T::ee, T::s, T::es}, {T::s, T::se}});
    add("IN", {}, {}, {{T::e, T::s}, {T::e, T::ee, T::se}});
    add("IK", {}, {T::s}, {{T::e, T::es, T::s, T::ss}, {T::e, T::ee, T::se}});
    add("IX", {}, {}, {{T::e, T::s}, {T::e, T::ee, T::se, T::s, T::es}});
    // Deferred patterns (§7.6).
    add("NK1", {}, {T::s}, {{T::e}, {T::e, T::ee, T::es}});
    add("NX1", {}, {}, {{T::e}, {T::e, T::ee, T::s}, {T::es}});
    add("X1N", {}, {}, {{T::e}, {T::e, T::ee}, {T::s}, {T::se}});
    add("X1K", {}, {T::s}, {{T::e, T::es}, {T::e, T::ee}, {T::s}, {T::se}});
    add("XK1", {}, {T::s}, {{T::e}, {T::e, T::ee, T::es}, {T::s, T::se}});
    add("X1K1", {}, {T::s}, {{T::e}, {T::e, T::ee, T::es}, {T::s}, {T::se}});
    add("X1X", {}, {}, {{T::e}, {T::e, T::ee, T::s, T::es}, {T::s}, {T::se}});
    add("XX1", {}, {}, {{T::e}, {T::e, T::ee, T::s}, {T::es, T::s, T::se}});
    add("X1X1", {}, {}, {{T::e}, {T::e, T::ee, T::s}, {T::es, T::s}, {T::se}});
    add("K1N", {T::s}, {}, {{T::e}, {T::e, T::ee}, {T::se}});
    add("K1K", {T::s}, {T::s}, {{T::e, T::es}, {T::e, T::ee}, {T::se}});
    add("KK1", {T::s}, {T::s}, {{T::e}, {T::e, T::ee, T::se, T::es}});
    add("K1K1", {T::s}, {T::s}, {{T::e}, {T::e, T::ee, T::es}, {T::se}});
    add("K1X", {T::s}, {}, {{T::e}, {T::e, T::ee, T::s, T::es}, {T::se}});
    add("KX1", {T::s}, {}, {{T::e}, {T::e, T::ee, T::se, T::s}, {T::es}});
    add("K1X1", {T::s}, {}, {{T::e}, {T::e, T::ee, T::s}, {T::se, T::es}});
    add("I1N", {}, {}, {{T::e, T::s}, {T::e, T::ee}, {T::se}});
    add("I1K", {}, {T::s}, {{T::e, T::es, T::s}, {T::e, T::ee}, {T::se}});
    add("IK1", {}, {T::s}, {{T::e, T::s}, {T::e, T::ee, T::se, T::es}});
    add("I1K1", {}, {T::s}, {{T::e, T::s}, {T::e, T::ee, T::es}, {T::se}});
    add("I1X", {}, {}, {{T::e, T::s}, {T::e, T::ee, T::s, T::es}, {T::se}});
    add("IX1", {}, {}, {{T::e, T::s}, {T::e, T::ee, T::se, T::s}, {T::es}});
    add("I1X1", {}, {}, {{T::e, T::s}, {T::e, T::ee, T::s}, {T::se, T::es}});
    return m;
  }();
  return patterns;
}

std::optional<HandshakePattern> patternFor(const std::string& name) {
  // "XKpsk3", "NNpsk0+psk2"
  const auto pskAt = name.find("psk");
  const std::string base = name.substr(0, pskAt);
  const auto it = basePatterns().find(base);
  if (it == basePatterns().end()) {
    return std::nullopt;
  }
  HandshakePattern p = it->second;
  std::string rest = pskAt == std::string::npos ? "" : name.substr(pskAt);
  while (!rest.empty()) {
    // "pskN" optionally followed by "+pskM"
    const auto plus = rest.find('+');
    const std::string mod = rest.substr(0, plus);
    p = p.withPsk(std::stoi(mod.substr(3)));
    rest = plus == std::string::npos ? "" : rest.substr(plus + 1);
  }
  p.name = name;
  return p;
}

std::optional<Hash> hashFor(const std::string& name) {
  if (name == "BLAKE2b") {
    return Hash::blake2b;
  }
  if (name == "SHA512") {
    return Hash::sha512;
  }
  if (name == "SHA256") {
    return Hash::sha256;
  }
  return std::nullopt;
}

PublicKey key(const std::string& hex) {
  const auto b = fromHex(hex);
  REQUIRE(b.size() == kKeySize);
  PublicKey k{};
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

HandshakeConfig configFor(const nlohmann::json& v, const HandshakePattern& pattern, Hash hash,
                          Role role) {
  const std::string side = role == Role::initiator ? "init_" : "resp_";
  HandshakeConfig c;
  c.pattern = pattern;
  c.hash = hash;
  c.role = role;
  c.prologue = fromHex(v.at(side + "prologue").get<std::string>());
  if (v.contains(side + "static")) {
    c.localStatic = KeyPair::fromSecret(fromHex(v.at(side + "static").get<std::string>()));
  }
  if (v.contains(side + "remote_static")) {
    c.remoteStatic = key(v.at(side + "remote_static").get<std::string>());
  }
  if (v.contains(side + "psks")) {
    for (const auto& psk : v.at(side + "psks")) {
      c.psks.push_back(SecretBytes::copyOf(fromHex(psk.get<std::string>())));
    }
  }
  return c;
}

/// Runs one vector; returns false when its pattern is not one the engine is given.
bool runVector(const Context& ctx, const nlohmann::json& v) {
  const std::string protocol = v.at("protocol_name").get<std::string>();
  // Noise_<pattern>_25519_ChaChaPoly_<hash>
  const auto p1 = protocol.find('_');
  const auto p2 = protocol.find('_', p1 + 1);
  const auto p5 = protocol.rfind('_');
  const auto pattern = patternFor(protocol.substr(p1 + 1, p2 - p1 - 1));
  const auto hash = hashFor(protocol.substr(p5 + 1));
  if (!pattern || !hash) {
    return false;
  }
  CAPTURE(protocol);
  HandshakeState init(ctx, configFor(v, *pattern, *hash, Role::initiator));
  HandshakeState resp(ctx, configFor(v, *pattern, *hash, Role::responder));
  REQUIRE(init.protocolName() == protocol);
  init.injectEphemeralForTestsOnly(
      KeyPair::fromSecret(fromHex(v.at("init_ephemeral").get<std::string>())));
  if (v.contains("resp_ephemeral")) {
    resp.injectEphemeralForTestsOnly(
        KeyPair::fromSecret(fromHex(v.at("resp_ephemeral").get<std::string>())));
  }
  std::optional<TransportCiphers> ti;
  std::optional<TransportCiphers> tr;
  const bool oneWay = pattern->messages.size() == 1;
  std::size_t i = 0;
  for (const auto& m : v.at("messages")) {
    CAPTURE(i);
    const auto payload = fromHex(m.at("payload").get<std::string>());
    const auto expected = fromHex(m.at("ciphertext").get<std::string>());
    const bool fromInitiator = oneWay || i % 2 == 0;
    if (!init.isComplete()) {
      HandshakeState& sender = fromInitiator ? init : resp;
      HandshakeState& receiver = fromInitiator ? resp : init;
      const Bytes ct = sender.writeMessage(payload);
      CHECK(ct == expected);
      CHECK(receiver.readMessage(ct) == payload);
      if (init.isComplete()) {
        REQUIRE(resp.isComplete());
        CHECK(init.handshakeHash() == fromHex(v.at("handshake_hash").get<std::string>()));
        CHECK(resp.handshakeHash() == init.handshakeHash());
        ti = init.finish();
        tr = resp.finish();
      }
    } else {
      TransportCiphers& sender = fromInitiator ? *ti : *tr;
      TransportCiphers& receiver = fromInitiator ? *tr : *ti;
      const Bytes ct = sender.send.encrypt({}, payload);
      CHECK(ct == expected);
      CHECK(receiver.receive.decrypt({}, ct) == payload);
    }
    ++i;
  }
  return true;
}

} // namespace

TEST_SUITE("protocol.noise") {
  TEST_CASE("every cacophony vector for the implemented patterns passes byte for byte") {
    const Context ctx;
    std::ifstream in(OUTPOST_NOISE_VECTORS);
    REQUIRE(in.good());
    const auto doc = nlohmann::json::parse(in);
    std::size_t ran = 0;
    std::size_t skipped = 0;
    std::set<std::string> names;
    for (const auto& v : doc.at("vectors")) {
      if (runVector(ctx, v)) {
        ++ran;
        names.insert(v.at("protocol_name").get<std::string>());
      } else {
        ++skipped;
      }
    }
    MESSAGE("cacophony vectors run: " << ran << ", skipped: " << skipped);
    // The product's suites must be among them, and nothing may silently vanish.
    CHECK(names.count("Noise_IK_25519_ChaChaPoly_BLAKE2b") == 1);
    CHECK(names.count("Noise_XK_25519_ChaChaPoly_BLAKE2b") == 1);
    CHECK(names.count("Noise_IK_25519_ChaChaPoly_SHA512") == 1);
    CHECK(names.count("Noise_XK_25519_ChaChaPoly_SHA512") == 1);
    CHECK(skipped == 0);
    CHECK(ran == 177);
  }
}
