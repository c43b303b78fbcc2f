// Every message round-trips; malformed, oversize and malicious bytes are refused
// with Errc::protocol, never a crash.

#include "hex.hpp"

#include <outpost/error.hpp>
#include <outpost/protocol/messages.hpp>
#include <outpost/sync/change.hpp>

#include "evolved.capnp.h"
#include "outpost.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <capnp/serialize.h>
#include <doctest/doctest.h>
#include <kj/io.h>

#include <functional>
#include <limits>

using namespace outpost;
using namespace outpost::protocol;

namespace {

Errc codeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::ok;
}

Uuid uuidOf(std::uint8_t seed) {
  Uuid u{};
  for (std::size_t i = 0; i < u.size(); ++i) {
    u[i] = static_cast<std::uint8_t>(seed + i);
  }
  return u;
}

/// The same bytes as a change's id.
sync::Uuid idOf(std::uint8_t seed) { return sync::Uuid{uuidOf(seed)}; }

Change changeWith(Value v, std::uint8_t seed = 1) {
  return Change{idOf(seed),   idOf(static_cast<std::uint8_t>(seed + 20)),
                "assessment", "risk.level",
                std::move(v), sync::Hlc{(std::uint64_t{1700000000000} << 16) | 3},
                idOf(99),     sync::Hlc{std::uint64_t{1700000000000} << 16},
                {},           {}};
}

std::vector<Message> everyMessage() {
  std::vector<Change> changes;
  changes.push_back(changeWith(Null{}, 1));
  changes.push_back(changeWith(Tombstone{}, 2));
  changes.push_back(changeWith(true, 3));
  changes.push_back(changeWith(std::int64_t{-42}, 4));
  changes.push_back(changeWith(2.5, 5));
  changes.push_back(changeWith(std::string("Zürich ✓"), 6));
  changes.push_back(changeWith(Bytes{0, 1, 2, 255}, 7));
  changes.push_back(changeWith(std::vector<std::string>{"a", "", "c"}, 8));
  std::vector<Message> all;
  all.emplace_back(
      Hello{1, 3, uuidOf(1), "worker-7", "1.2.3", 12345, {"zstd", "audit"}, {"cse-screening@1"}});
  all.emplace_back(HelloReply{1,
                              777,
                              {Command{uuidOf(2), Wipe{}},
                               Command{uuidOf(3), PurgeRecords{{uuidOf(4), uuidOf(5)}}},
                               Command{uuidOf(6), TemplateUpdate{{R"({"id":"t1"})"}}}},
                              {"zstd", "derived-ids"},
                              {"north", "south"}});
  all.emplace_back(PushBatch{uuidOf(7), changes});
  all.emplace_back(PushAck{uuidOf(7),
                           {{uuidOf(1), ChangeOutcome::applied, Errc::ok},
                            {uuidOf(2), ChangeOutcome::duplicate, Errc::ok},
                            {uuidOf(3), ChangeOutcome::conflict, Errc::conflict},
                            {uuidOf(4), ChangeOutcome::rejected, Errc::out_of_scope}}});
  all.emplace_back(PullRequest{42, 500});
  all.emplace_back(PullReply{changes, 43, true});
  all.emplace_back(Command{uuidOf(8), PurgeRecords{{uuidOf(9)}}});
  all.emplace_back(ErrorReply{Errc::revoked, "device revoked"});
  all.emplace_back(EnrollRequest{"ABCD-EFGH-JKMN-PQRS", "1.2.3", 1, 1});
  all.emplace_back(EnrollReply{uuidOf(10), "worker-7", "team-north", 999});
  return all;
}

/// Packed bytes of an arbitrary Cap'n Proto message built by the test.
Bytes packed(capnp::MessageBuilder& builder) {
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, builder);
  auto a = out.getArray();
  return Bytes(a.begin(), a.end());
}

} // namespace

TEST_SUITE("protocol.messages") {
  TEST_CASE("every message type survives encode and decode unchanged") {
    const auto all = everyMessage();
    REQUIRE(all.size() == std::variant_size_v<Message>);
    for (const auto& m : all) {
      CAPTURE(messageName(m));
      const Bytes bytes = encode(m);
      CHECK(decode(bytes) == m);
    }
  }

  TEST_CASE("change lists grouped as record writes decode to the same message, and are smaller") {
    // Three writes: two fields of record A at one HLC, one field of A at a later HLC,
    // and a change of record B; the grouped layout must keep order and boundaries.
    std::vector<Change> changes;
    Change a1 = changeWith(std::string("medium"), 1);
    a1.changeId = {}; // a derived id left out
    Change a2 = a1;
    a2.field = "ind_01";
    a2.value = true;
    a2.baseHlc = sync::Hlc{std::uint64_t{1600000000000} << 16};
    a2.baseDeviceId = idOf(60);
    a2.resolves = {{sync::Hlc{std::uint64_t{1600000000001} << 16}, idOf(61)}};
    a2.changeId = idOf(70); // an id that is not derived stays on the wire
    Change a3 = a1;
    a3.hlc.value += 1;
    Change b1 = changeWith(std::int64_t{7}, 30);
    changes = {a1, a2, a3, b1};
    for (const Message& m :
         {Message{PushBatch{uuidOf(9), changes}}, Message{PullReply{changes, 77, false}}}) {
      CAPTURE(messageName(m));
      const Bytes grouped = encode(m, EncodeOptions{true});
      CHECK(decode(grouped) == m);
      CHECK(grouped.size() < encode(m).size());
    }
    const Message empty = PullReply{{}, 5, false};
    CHECK(decode(encode(empty, EncodeOptions{true})) == empty);
  }

  TEST_CASE("a compact PushAck decodes to the same results and is far smaller") {
    PushAck ack{uuidOf(9), std::vector<ChangeResult>(limits::kChanges)};
    CHECK(decode(encode(ack, EncodeOptions{.compactAcks = true})) == Message{ack});
    // Everything the compact layout cannot leave out comes back at its position.
    ack.results[0] = {{}, ChangeOutcome::duplicate, Errc::ok};
    ack.results[17] = {uuidOf(40), ChangeOutcome::applied, Errc::ok}; // an id that was sent
    ack.results[18] = {{}, ChangeOutcome::conflict, Errc::conflict};
    ack.results[limits::kChanges - 1] = {{}, ChangeOutcome::rejected, Errc::out_of_scope};
    const Bytes compact = encode(ack, EncodeOptions{.compactAcks = true});
    CHECK(decode(compact) == Message{ack});
    CHECK(compact.size() * 20 < encode(ack).size());
    const PushAck empty{uuidOf(3), {}};
    CHECK(decode(encode(empty, EncodeOptions{.compactAcks = true})) == Message{empty});
  }

  TEST_CASE("a malformed compact PushAck is refused") {
    const kj::byte id[16] = {};
    const auto build = [&](capnp::MallocMessageBuilder& b) {
      auto ack = b.initRoot<wire::Envelope>().initPushAck();
      ack.setBatchId(capnp::Data::Reader(id, 16));
      return ack;
    };
    const auto exception = [&](wire::ChangeResultAt::Builder x, std::uint32_t index) {
      x.setIndex(index);
      auto r = x.initResult();
      r.setChangeId(capnp::Data::Reader(id, 16));
      r.setOutcome(wire::ChangeOutcome::DUPLICATE);
    };
    {
      capnp::MallocMessageBuilder b; // results and a count
      auto ack = build(b);
      ack.setCount(2);
      ack.initResults(2);
      CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
    }
    {
      capnp::MallocMessageBuilder b; // exceptions without a count
      exception(build(b).initExceptions(1)[0], 0);
      CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
    }
    {
      capnp::MallocMessageBuilder b; // out of order
      auto ack = build(b);
      ack.setCount(5);
      auto xs = ack.initExceptions(2);
      exception(xs[0], 3);
      exception(xs[1], 3);
      CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
    }
    {
      capnp::MallocMessageBuilder b; // past the count
      auto ack = build(b);
      ack.setCount(5);
      exception(ack.initExceptions(1)[0], 5);
      CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
    }
    {
      capnp::MallocMessageBuilder b; // more results than a batch holds
      build(b).setCount(static_cast<std::uint32_t>(limits::kChanges + 1));
      CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
    }
    {
      capnp::MallocMessageBuilder b; // an exception with no result
      auto ack = build(b);
      ack.setCount(2);
      ack.initExceptions(1)[0].setIndex(1);
      CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
    }
    {
      capnp::MallocMessageBuilder b; // the control: a well-formed one decodes
      auto ack = build(b);
      ack.setCount(5);
      exception(ack.initExceptions(1)[0], 4);
      const auto m = std::get<PushAck>(decode(packed(b)));
      REQUIRE(m.results.size() == 5);
      CHECK(m.results[4].outcome == ChangeOutcome::duplicate);
      CHECK(m.results[3] == ChangeResult{});
    }
  }

  TEST_CASE("a message with both changes and writes, or a write without fields, is refused") {
    const kj::byte id[16] = {1};
    capnp::MallocMessageBuilder b;
    auto batch = b.initRoot<wire::Envelope>().initPushBatch();
    batch.setBatchId(capnp::Data::Reader(id, 16));
    auto c = batch.initChanges(1)[0];
    c.setChangeId(capnp::Data::Reader(id, 16));
    c.setRecordId(capnp::Data::Reader(id, 16));
    c.setDeviceId(capnp::Data::Reader(id, 16));
    c.setRecordType("t");
    c.setField("f");
    c.initValue().setNull();
    auto w = batch.initWrites(1)[0];
    w.setRecordId(capnp::Data::Reader(id, 16));
    w.setDeviceId(capnp::Data::Reader(id, 16));
    w.setRecordType("t");
    auto f = w.initFields(1)[0];
    f.setField("f");
    f.initValue().setNull();
    CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);

    capnp::MallocMessageBuilder b2;
    auto reply = b2.initRoot<wire::Envelope>().initPullReply();
    auto w2 = reply.initWrites(1)[0];
    w2.setRecordId(capnp::Data::Reader(id, 16));
    w2.setDeviceId(capnp::Data::Reader(id, 16));
    w2.setRecordType("t");
    CHECK(codeOf([&] { (void)decode(packed(b2)); }) == Errc::protocol);
  }

  TEST_CASE("too many field writes across record writes are refused before they are read") {
    capnp::MallocMessageBuilder b;
    auto reply = b.initRoot<wire::Envelope>().initPullReply();
    auto writes = reply.initWrites(2);
    writes[0].initFields(static_cast<unsigned>(limits::kChanges / 2 + 1));
    writes[1].initFields(static_cast<unsigned>(limits::kChanges / 2 + 1));
    CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
  }

  TEST_CASE("a record deletion (a tombstone on sync_core's record field) crosses the wire") {
    Change del = changeWith(Tombstone{}, 7);
    del.field = std::string(sync::kRecordField);
    const Message m = PushBatch{uuidOf(3), {del}};
    CHECK(decode(encode(m)) == m);
  }

  TEST_CASE("encoding refuses what a peer would refuse") {
    Hello h{1, 1, uuidOf(1), "", "1.0", 0, {}};
    CHECK(codeOf([&] { (void)encode(h); }) == Errc::invalid_argument); // empty worker id
    CHECK(codeOf([&] { (void)encode(PullRequest{0, 0}); }) == Errc::invalid_argument);
    CHECK(codeOf([&] { (void)encode(ErrorReply{Errc::ok, "x"}); }) == Errc::invalid_argument);
    CHECK(codeOf([&] {
            (void)encode(PushAck{uuidOf(1), {{uuidOf(2), ChangeOutcome::rejected, Errc::ok}}});
          }) == Errc::invalid_argument);
    CHECK(codeOf([&] {
            (void)encode(PushBatch{uuidOf(1), {changeWith(std::string("\xC0\xAF"))}});
          }) == Errc::invalid_argument); // overlong UTF-8
  }

  TEST_CASE("text is checked as UTF-8 at every position of a long ASCII run") {
    // ASCII is checked eight bytes at a time: a bad or a good multi-byte sequence
    // must be found wherever it falls against those eight-byte steps.
    const auto accepted = [](const std::string& text) {
      return codeOf([&] { (void)encode(PushBatch{uuidOf(1), {changeWith(text)}}); }) == Errc::ok;
    };
    const std::string ascii(40, 'a');
    for (std::size_t at = 0; at <= ascii.size(); ++at) {
      CAPTURE(at);
      const auto with = [&](std::string_view inserted) {
        return ascii.substr(0, at) + std::string(inserted) + ascii.substr(at);
      };
      CHECK(accepted(with("\xC3\xA9")));           // é
      CHECK(accepted(with("\xF0\x9F\x98\x80")));   // an emoji, four bytes
      CHECK_FALSE(accepted(with("\xC0\xAF")));     // overlong
      CHECK_FALSE(accepted(with("\xED\xA0\x80"))); // a surrogate
      CHECK_FALSE(accepted(with("\x80")));         // a lone continuation byte
      CHECK_FALSE(accepted(with("\xE2\x82")));     // cut short
    }
  }

  TEST_CASE("empty, truncated, trailing and random bytes are protocol errors") {
    const Bytes good = encode(everyMessage()[2]);
    CHECK(codeOf([&] { (void)decode({}); }) == Errc::protocol);
    for (std::size_t cut = 1; cut < good.size(); cut += 7) {
      CAPTURE(cut);
      CHECK(codeOf([&] { (void)decode(std::span(good).first(cut)); }) == Errc::protocol);
    }
    Bytes trailing = good;
    trailing.push_back(0);
    CHECK(codeOf([&] { (void)decode(trailing); }) == Errc::protocol);
    std::uint32_t x = 12345;
    for (int round = 0; round < 2000; ++round) {
      Bytes junk(static_cast<std::size_t>(round % 97 + 1));
      for (auto& b : junk) {
        x = x * 1103515245 + 12345;
        b = static_cast<std::uint8_t>(x >> 16);
      }
      const Errc code = codeOf([&] { (void)decode(junk); });
      CHECK((code == Errc::protocol || code == Errc::ok));
    }
  }

  TEST_CASE("a segment table that declares gigabytes is refused without allocating them") {
    // Unpacked framing: 1 segment of 0x10000000 words; packed: tag 0xff + 8 literal
    // bytes, then the (missing) body.
    const Bytes bomb = {0xff, 0, 0, 0, 0, 0, 0, 0, 0x10, 0};
    CHECK(codeOf([&] { (void)decode(bomb); }) == Errc::protocol);
    // A run of zero words (tag 0x00, count 255) repeated: small input, big expansion.
    Bytes zeros = {0x10, 0x01, 0x00, 0x00, 0xff, 0x7f, 0x00, 0x00, 0x00};
    for (int i = 0; i < 20000; ++i) {
      zeros.push_back(0x00);
      zeros.push_back(0xff);
    }
    CHECK(codeOf([&] { (void)decode(zeros); }) == Errc::protocol);
  }

  TEST_CASE("more than 16 MiB is refused before parsing") {
    const Bytes huge(limits::kMessageBytes + 1, 0);
    CHECK(codeOf([&] { (void)decode(huge); }) == Errc::protocol);
  }

  TEST_CASE("a message that packs small but unpacks over 16 MiB is not sent") {
    PushBatch batch{uuidOf(1), {}};
    for (int i = 0; i < 5; ++i) {
      batch.changes.push_back(
          changeWith(Bytes(limits::kValueBytes, 0), static_cast<std::uint8_t>(i)));
    }
    CHECK(codeOf([&] { (void)encode(batch); }) == Errc::invalid_argument);
    batch.changes.resize(3);
    const Bytes packed12MiB = encode(batch); // 12 MiB of zeros packs to little
    CHECK(packed12MiB.size() < 1u << 20);
    CHECK(decode(packed12MiB) == Message(batch));
  }

  TEST_CASE("a UUID of the wrong size is refused") {
    capnp::MallocMessageBuilder b;
    auto hello = b.initRoot<wire::Envelope>().initHello();
    hello.setMinVersion(1);
    hello.setMaxVersion(1);
    const kj::byte shortId[15] = {};
    hello.setDeviceId(capnp::Data::Reader(shortId, 15));
    hello.setWorkerId("w");
    CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
  }

  TEST_CASE("an unknown change outcome and an invalid pull limit are refused") {
    capnp::MallocMessageBuilder b;
    auto ack = b.initRoot<wire::Envelope>().initPushAck();
    const kj::byte id[16] = {};
    ack.setBatchId(capnp::Data::Reader(id, 16));
    auto r = ack.initResults(1)[0];
    r.setChangeId(capnp::Data::Reader(id, 16));
    r.setOutcome(static_cast<wire::ChangeOutcome>(7));
    CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);

    capnp::MallocMessageBuilder b2;
    auto pull = b2.initRoot<wire::Envelope>().initPullRequest();
    pull.setLimit(limits::kPullLimit + 1);
    CHECK(codeOf([&] { (void)decode(packed(b2)); }) == Errc::protocol);
  }

  TEST_CASE("too many changes in a batch are refused") {
    capnp::MallocMessageBuilder b;
    auto batch = b.initRoot<wire::Envelope>().initPushBatch();
    const kj::byte id[16] = {};
    batch.setBatchId(capnp::Data::Reader(id, 16));
    batch.initChanges(static_cast<unsigned>(limits::kChanges + 1));
    CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
  }

  TEST_CASE("fields from a newer peer are ignored, an unknown message type is refused") {
    capnp::MallocMessageBuilder b;
    auto hello = b.initRoot<evolved::Envelope>().initHello();
    hello.setMinVersion(1);
    hello.setMaxVersion(2);
    const kj::byte id[16] = {1};
    hello.setDeviceId(capnp::Data::Reader(id, 16));
    hello.setWorkerId("w");
    hello.setExtra("something new");
    const Message m = decode(packed(b));
    REQUIRE(std::holds_alternative<Hello>(m));
    CHECK(std::get<Hello>(m).maxVersion == 2);

    capnp::MallocMessageBuilder b2;
    b2.initRoot<evolved::Envelope>().setFuture("from the future");
    CHECK(codeOf([&] { (void)decode(packed(b2)); }) == Errc::protocol);
  }

  TEST_CASE("a change's base device and resolved versions survive the wire") {
    Change c = changeWith(std::string("resolved"), 3);
    c.baseDeviceId = idOf(50);
    c.resolves = {{sync::Hlc{std::uint64_t{1700000000001} << 16}, idOf(51)},
                  {sync::Hlc{(std::uint64_t{1700000000002} << 16) | 7}, idOf(52)}};
    const Message batch = PushBatch{uuidOf(9), {c, changeWith(Null{}, 4)}};
    CHECK(decode(encode(batch)) == batch);
    const Message reply = PullReply{{c}, 42, true};
    CHECK(decode(encode(reply)) == reply);
  }

  TEST_CASE("a change from a peer that predates baseDeviceId and resolves reads them as empty") {
    capnp::MallocMessageBuilder b;
    auto batch = b.initRoot<wire::Envelope>().initPushBatch();
    const kj::byte id[16] = {1};
    batch.setBatchId(capnp::Data::Reader(id, 16));
    auto ch = batch.initChanges(1)[0];
    ch.setChangeId(capnp::Data::Reader(id, 16));
    ch.setRecordId(capnp::Data::Reader(id, 16));
    ch.setRecordType("assessment");
    ch.setField("risk.level");
    ch.initValue().setInt64(3);
    ch.setHlc(5);
    ch.setDeviceId(capnp::Data::Reader(id, 16));
    ch.setBaseHlc(0);
    const Message m = decode(packed(b));
    REQUIRE(std::holds_alternative<PushBatch>(m));
    const Change& got = std::get<PushBatch>(m).changes.at(0);
    CHECK(got.baseDeviceId.isNil());
    CHECK(got.resolves.empty());
  }

  TEST_CASE("a malformed base device or resolves list is refused") {
    auto start = [](capnp::MallocMessageBuilder& b) {
      auto batch = b.initRoot<wire::Envelope>().initPushBatch();
      const kj::byte id[16] = {1};
      batch.setBatchId(capnp::Data::Reader(id, 16));
      auto ch = batch.initChanges(1)[0];
      ch.setChangeId(capnp::Data::Reader(id, 16));
      ch.setRecordId(capnp::Data::Reader(id, 16));
      ch.setRecordType("assessment");
      ch.setField("risk.level");
      ch.initValue().setInt64(3);
      ch.setDeviceId(capnp::Data::Reader(id, 16));
      return ch;
    };
    const kj::byte shortId[15] = {};
    SUBCASE("a base device id of the wrong size") {
      capnp::MallocMessageBuilder b;
      start(b).setBaseDeviceId(capnp::Data::Reader(shortId, 15));
      CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
    }
    SUBCASE("a resolved version with a device id of the wrong size") {
      capnp::MallocMessageBuilder b;
      start(b).initResolves(1)[0].setDeviceId(capnp::Data::Reader(shortId, 15));
      CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
    }
    SUBCASE("more resolved versions than the limit") {
      capnp::MallocMessageBuilder b;
      start(b).initResolves(static_cast<unsigned>(limits::kResolves + 1));
      CHECK(codeOf([&] { (void)decode(packed(b)); }) == Errc::protocol);
    }
    SUBCASE("encode refuses more resolved versions than the limit") {
      Change c = changeWith(Null{}, 1);
      c.resolves.resize(limits::kResolves + 1);
      CHECK(codeOf([&] { (void)encode(PushBatch{uuidOf(1), {c}}); }) == Errc::invalid_argument);
    }
  }

  TEST_CASE("a large honest batch fits within the traversal limit") {
    PushBatch batch{uuidOf(1), {}};
    for (int i = 0; i < 1000; ++i) {
      batch.changes.push_back(changeWith(std::string(1000, 'x'), static_cast<std::uint8_t>(i)));
    }
    CHECK(decode(encode(batch)) == Message(batch));
  }

  TEST_CASE("versions negotiate to the highest common one or fail with version_mismatch") {
    CHECK(negotiateVersion(1, 5) == kProtocolVersionMax);
    CHECK_FALSE(negotiateVersion(kProtocolVersionMax + 1, kProtocolVersionMax + 3).has_value());
    try {
      (void)requireVersion(kProtocolVersionMax + 1, kProtocolVersionMax + 3);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::version_mismatch);
      CHECK(e.message().find("update") != std::string::npos);
    }
  }

  TEST_CASE("an Error message becomes the peer's error code on this side") {
    CHECK(codeOf([&] {
            (void)expect<HelloReply>(ErrorReply{Errc::revoked, "no"});
          }) == Errc::revoked);
    CHECK(codeOf([&] { (void)expect<HelloReply>(PullRequest{}); }) == Errc::protocol);
  }
}
