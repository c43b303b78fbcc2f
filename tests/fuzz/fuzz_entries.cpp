#include "fuzz_entries.hpp"

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/protocol/channel.hpp>
#include <outpost/protocol/framing.hpp>
#include <outpost/protocol/messages.hpp>
#include <outpost/protocol/noise.hpp>

#include <cstdio>
#include <cstdlib>
#include <span>

namespace outpost::protocol::fuzz {

namespace {

using noise::Bytes;
using noise::KeyPair;

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what);
  std::abort();
}

/// Only protocol errors may escape untrusted input.
template <typename F>
void expectOnlyProtocolErrors(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    if (e.code() != Errc::protocol) {
      std::fprintf(stderr, "unexpected code %d: %s\n", static_cast<int>(e.code()), e.what());
      finding("an error other than Errc::protocol escaped");
    }
  }
}

const Context& context() {
  static const Context ctx; // a harness may keep process state; the library does not
  return ctx;
}

KeyPair fixedKey(std::uint8_t seed) {
  return KeyPair::fromSecret(std::vector<std::uint8_t>(noise::kKeySize, seed));
}

noise::HandshakeConfig config(Purpose purpose, noise::Role role) {
  noise::HandshakeConfig c;
  c.pattern = purpose == Purpose::session ? noise::patternIK() : noise::patternXK();
  c.role = role;
  c.prologue = prologueFor(purpose);
  if (role == noise::Role::initiator) {
    c.localStatic = fixedKey(1);
    c.remoteStatic = fixedKey(2).publicKey;
  } else {
    c.localStatic = fixedKey(2);
  }
  return c;
}

noise::HandshakeState state(Purpose purpose, noise::Role role) {
  noise::HandshakeState hs(context(), config(purpose, role));
  hs.injectEphemeralForTestsOnly(fixedKey(role == noise::Role::initiator ? 3 : 4));
  return hs;
}

constexpr std::size_t kFuzzMaxMessage = 1u << 20; // keep a run's memory small

} // namespace

void frames(const std::uint8_t* data, std::size_t size) {
  (void)context();
  if (size == 0) {
    return;
  }
  const std::uint8_t mode = data[0] % 4;
  std::span<const std::uint8_t> in(data + 1, size - 1);
  if (mode == 3) {
    // Splitting then reassembling any message gives it back.
    if (in.empty() || in.size() > kFuzzMaxMessage) {
      return;
    }
    MessageAssembler a(kFuzzMaxMessage);
    std::optional<Bytes> out;
    for (const auto& f : splitMessage(in, kFuzzMaxMessage)) {
      if (out) {
        finding("a message completed before its last frame");
      }
      out = a.add(f);
    }
    if (!out || !std::equal(out->begin(), out->end(), in.begin(), in.end())) {
      finding("split + reassemble changed a message");
    }
    return;
  }
  if (mode == 2) {
    expectOnlyProtocolErrors([&] {
      try {
        (void)parsePreamble(in.first(std::min(in.size(), kPreambleSize)));
      } catch (const Error& e) {
        if (e.code() != Errc::version_mismatch) {
          throw;
        }
      }
    });
    return;
  }
  // The stream as frames: [u16 length][bytes]..., decrypted (mode 1) or taken as
  // plaintext (mode 0, to reach the reassembler past the AEAD).
  noise::CipherState cipher(std::vector<std::uint8_t>(noise::kKeySize, 7));
  MessageAssembler assembler(kFuzzMaxMessage);
  expectOnlyProtocolErrors([&] {
    while (in.size() >= 2) {
      const std::size_t len = static_cast<std::size_t>(in[0]) << 8 | in[1];
      in = in.subspan(2);
      if (len == 0 || len > in.size()) {
        return;
      }
      const auto frame = in.first(len);
      in = in.subspan(len);
      const Bytes plain = mode == 1 ? cipher.decrypt({}, frame) : Bytes(frame.begin(), frame.end());
      if (auto message = assembler.add(plain)) {
        (void)decode(*message);
      }
    }
  });
}

void handshake(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return;
  }
  const std::uint8_t mode = data[0] % 4;
  const std::span<const std::uint8_t> msg(data + 1, size - 1);
  expectOnlyProtocolErrors([&] {
    switch (mode) {
    case 0: { // IK responder reads message 1
      auto r = state(Purpose::session, noise::Role::responder);
      (void)r.readMessage(msg);
      (void)r.writeMessage({});
      break;
    }
    case 1: { // XK responder reads message 1
      auto r = state(Purpose::enrollment, noise::Role::responder);
      (void)r.readMessage(msg);
      (void)r.writeMessage({});
      break;
    }
    case 2: { // IK initiator reads message 2
      auto i = state(Purpose::session, noise::Role::initiator);
      (void)i.writeMessage({});
      (void)i.readMessage(msg);
      auto t = i.finish();
      (void)t;
      break;
    }
    default: { // XK responder reads message 3 after a genuine first exchange
      auto i = state(Purpose::enrollment, noise::Role::initiator);
      auto r = state(Purpose::enrollment, noise::Role::responder);
      (void)r.readMessage(i.writeMessage({}));
      (void)i.readMessage(r.writeMessage({}));
      (void)r.readMessage(msg);
      break;
    }
    }
  });
}

void messages(const std::uint8_t* data, std::size_t size) {
  std::optional<Message> m;
  expectOnlyProtocolErrors([&] { m = decode(std::span(data, size)); });
  if (!m) {
    return;
  }
  // Whatever decodes must re-encode, and decoding is then stable.
  try {
    const Bytes once = encode(*m);
    const Bytes twice = encode(decode(once));
    if (once != twice) {
      finding("encode(decode(x)) is not stable");
    }
    // The record-writes layout carries exactly the same message.
    if (decode(encode(*m, EncodeOptions{true})) != *m) {
      finding("a message does not survive the record-writes layout");
    }
    // So does the compact acknowledgement layout.
    if (decode(encode(*m, EncodeOptions{.compactAcks = true})) != *m) {
      finding("a message does not survive the compact-acks layout");
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    finding("a decoded message could not be re-encoded");
  }
}

std::vector<std::pair<std::string, std::vector<std::uint8_t>>> seeds(const std::string& target) {
  (void)context();
  std::vector<std::pair<std::string, Bytes>> out;
  if (target == "messages" || target == "frames") {
    Uuid id{};
    id[0] = 1;
    const sync::Uuid sid{id};
    const Change c{sid,          sid, "assessment", "risk", std::string("high"),
                   sync::Hlc{1}, sid, sync::Hlc{0}, {},     {}};
    const std::vector<Message> all = {
        Hello{1, 1, id, "worker", "1.0", 7, {"cap"}},
        HelloReply{1, 8, {Command{id, Wipe{}}}},
        PushBatch{id,
                  {c, Change{sid,
                             sid,
                             "r",
                             "f",
                             std::vector<std::string>{"a"},
                             sync::Hlc{2},
                             sid,
                             sync::Hlc{1},
                             {},
                             {}}}},
        PushAck{id, {{id, ChangeOutcome::rejected, Errc::out_of_scope}}},
        PullRequest{1, 10},
        PullReply{{c}, 2, true},
        Command{id, PurgeRecords{{id}}},
        ErrorReply{Errc::revoked, "revoked"},
        EnrollRequest{"ABCD-EFGH-JKMN-PQRS", "1.0", 1, 1},
        EnrollReply{id, "w", "t", 9}};
    for (const auto& m : all) {
      const Bytes encoded = encode(m);
      if (target == "messages") {
        out.emplace_back(std::string(messageName(m)), encoded);
        if (std::holds_alternative<PushBatch>(m) || std::holds_alternative<PullReply>(m)) {
          out.emplace_back(std::string(messageName(m)) + "-writes", encode(m, EncodeOptions{true}));
        }
        if (std::holds_alternative<PushAck>(m)) {
          PushAck compact = std::get<PushAck>(m);
          compact.results.insert(compact.results.begin(), 3, ChangeResult{});
          out.emplace_back("pushAck-compact", encode(compact, EncodeOptions{.compactAcks = true}));
        }
      } else {
        // mode 0: plaintext frames of the message stream
        Bytes stream = {0};
        for (const auto& f : splitMessage(encoded, kFuzzMaxMessage)) {
          stream.push_back(static_cast<std::uint8_t>(f.size() >> 8));
          stream.push_back(static_cast<std::uint8_t>(f.size() & 0xff));
          stream.insert(stream.end(), f.begin(), f.end());
        }
        out.emplace_back("plain-" + std::string(messageName(m)), stream);
        // mode 1: the same, encrypted with the harness key
        noise::CipherState cipher(std::vector<std::uint8_t>(noise::kKeySize, 7));
        Bytes enc = {1};
        for (const auto& f : splitMessage(encoded, kFuzzMaxMessage)) {
          const Bytes ct = cipher.encrypt({}, f);
          enc.push_back(static_cast<std::uint8_t>(ct.size() >> 8));
          enc.push_back(static_cast<std::uint8_t>(ct.size() & 0xff));
          enc.insert(enc.end(), ct.begin(), ct.end());
        }
        out.emplace_back("sealed-" + std::string(messageName(m)), enc);
      }
    }
    if (target == "frames") {
      Bytes pre = {2};
      const auto p = preambleFor(Purpose::session);
      pre.insert(pre.end(), p.begin(), p.end());
      out.emplace_back("preamble", pre);
      out.emplace_back("split", Bytes{3, 'h', 'e', 'l', 'l', 'o'});
    }
  } else if (target == "handshake") {
    auto i = state(Purpose::session, noise::Role::initiator);
    auto r = state(Purpose::session, noise::Role::responder);
    Bytes m1 = i.writeMessage({});
    (void)r.readMessage(m1);
    Bytes m2 = r.writeMessage({});
    Bytes s0 = {0};
    s0.insert(s0.end(), m1.begin(), m1.end());
    out.emplace_back("ik-m1", s0);
    Bytes s2 = {2};
    s2.insert(s2.end(), m2.begin(), m2.end());
    out.emplace_back("ik-m2", s2);
    auto xi = state(Purpose::enrollment, noise::Role::initiator);
    auto xr = state(Purpose::enrollment, noise::Role::responder);
    Bytes x1 = xi.writeMessage({});
    (void)xr.readMessage(x1);
    (void)xi.readMessage(xr.writeMessage({}));
    Bytes x3 = xi.writeMessage({});
    Bytes s1 = {1};
    s1.insert(s1.end(), x1.begin(), x1.end());
    out.emplace_back("xk-m1", s1);
    Bytes s3 = {3};
    s3.insert(s3.end(), x3.begin(), x3.end());
    out.emplace_back("xk-m3", s3);
  }
  return out;
}

} // namespace outpost::protocol::fuzz
