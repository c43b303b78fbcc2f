// SecureChannel over real loopback TCP: both handshakes, multi-frame messages,
// and a man in the middle that replays, reorders, flips or truncates frames.

#include "loopback.hpp"

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/protocol/channel.hpp>
#include <outpost/protocol/convert.hpp>
#include <outpost/protocol/messages.hpp>
#include <outpost/sync/uuid.hpp>

#include <doctest/doctest.h>

using namespace outpost;
using namespace outpost::protocol;
using namespace outpost::protocol::testing;
using noise::Bytes;
using noise::KeyPair;

namespace {

Bytes patterned(std::size_t n, std::uint8_t seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) {
    b[i] = static_cast<std::uint8_t>(i * 31 + seed);
  }
  return b;
}

struct Fixture {
  Context ctx;
  asio::io_context io;
  tcp::acceptor acceptor{io, localhost()};
  KeyPair server = KeyPair::generate(ctx);
  KeyPair device = KeyPair::generate(ctx);
  std::optional<std::exception_ptr> serverDone;
  std::optional<std::exception_ptr> deviceDone;

  std::uint16_t port() const { return acceptor.local_endpoint().port(); }

  asio::awaitable<SecureChannel> acceptOne(ChannelLimits limits = {}) {
    tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
    co_return co_await SecureChannel::accept(ctx, std::move(s), server, limits);
  }

  asio::awaitable<SecureChannel> connect(Purpose purpose, std::uint16_t to,
                                         const noise::PublicKey& pinned) {
    co_return co_await SecureChannel::connect(ctx, co_await connectTo(to), purpose, device, pinned);
  }

  void run() {
    io.run_for(std::chrono::seconds(20));
    REQUIRE(serverDone.has_value());
    REQUIRE(deviceDone.has_value());
  }
};

} // namespace

TEST_SUITE("protocol.channel") {
  TEST_CASE("with compression on, messages cross compressed, a compressed message that does "
            "not decompress within the limit ends the session") {
    Fixture f;
    PushBatch big;
    big.batchId = sync::Uuid::random().bytes;
    for (int i = 0; i < 2000; ++i) {
      Change c;
      c.changeId = sync::Uuid::random();
      c.recordId = sync::Uuid{big.batchId};
      c.recordType = "assessment";
      c.field = "note";
      c.value = std::string(200, 'a');
      c.hlc = sync::Hlc{1};
      c.deviceId = sync::Uuid{big.batchId};
      big.changes.push_back(std::move(c));
    }
    const Message sent = big;
    const std::size_t plainSize = encode(sent).size();
    std::uint64_t wireBytes = 0;
    spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          SecureChannel ch = co_await f.acceptOne();
          ch.compressMessages();
          const Message got = co_await ch.receiveMessage();
          CHECK(got == sent);
          wireBytes = ch.bytesReceived();
          // A zstd frame header that claims more than the 16 MiB limit (a raw
          // send bypasses the encoder).
          Bytes bomb = {1, 0x28, 0xb5, 0x2f, 0xfd, 0x64, 0x00, 0x00, 0x00, 0x40, 0x00};
          co_await ch.send(bomb);
        },
        f.serverDone);
    spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          SecureChannel ch = co_await f.connect(Purpose::session, f.port(), f.server.publicKey);
          ch.compressMessages();
          co_await ch.sendMessage(sent);
          (void)co_await ch.receiveMessage();
        },
        f.deviceDone);
    f.run();
    CHECK(codeOf(*f.serverDone) == Errc::ok);
    CHECK(codeOf(*f.deviceDone) == Errc::protocol);
    CHECK(wireBytes < plainSize / 4);
  }

  TEST_CASE("messages of any size cross a loopback connection in both directions") {
    Fixture f;
    const std::vector<std::size_t> sizes = {1,
                                            100,
                                            kFramePlaintext - kMessageHeader,
                                            kFramePlaintext - kMessageHeader + 1,
                                            300000,
                                            kMaxApplicationMessage};
    spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          SecureChannel ch = co_await f.acceptOne();
          CHECK(ch.purpose() == Purpose::session);
          CHECK(ch.remoteStatic() == f.device.publicKey);
          for (std::size_t i = 0; i < sizes.size(); ++i) {
            Bytes m = co_await ch.receive();
            co_await ch.send(m); // echo
          }
        },
        f.serverDone);
    spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          SecureChannel ch = co_await f.connect(Purpose::session, f.port(), f.server.publicKey);
          for (std::size_t n : sizes) {
            const Bytes m = patterned(n, static_cast<std::uint8_t>(n));
            co_await ch.send(m);
            const Bytes echoed = co_await ch.receive();
            CHECK(echoed == m);
          }
          CHECK(codeOf([&] {
                  try {
                    (void)splitMessage(Bytes(kMaxApplicationMessage + 1), kMaxApplicationMessage);
                  } catch (...) {
                    return std::current_exception();
                  }
                  return std::exception_ptr{};
                }()) == Errc::invalid_argument);
        },
        f.deviceDone);
    f.run();
    CHECK(codeOf(*f.serverDone) == Errc::ok);
    CHECK(codeOf(*f.deviceDone) == Errc::ok);
  }

  TEST_CASE("the enrollment handshake transmits the device's fresh static key") {
    Fixture f;
    spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          SecureChannel ch = co_await f.acceptOne();
          CHECK(ch.purpose() == Purpose::enrollment);
          CHECK(ch.remoteStatic() == f.device.publicKey);
          // gcc 12 mis-destroys temporaries inside co_await expressions: name them.
          const Message refusal = ErrorReply{Errc::auth_failed, "no code"};
          co_await ch.sendMessage(refusal);
        },
        f.serverDone);
    spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          SecureChannel ch = co_await f.connect(Purpose::enrollment, f.port(), f.server.publicKey);
          Message reply = co_await ch.receiveMessage();
          (void)expect<EnrollReply>(std::move(reply));
        },
        f.deviceDone);
    f.run();
    CHECK(codeOf(*f.serverDone) == Errc::ok);
    CHECK(codeOf(*f.deviceDone) == Errc::auth_failed); // the server's Error, as an exception
  }

  TEST_CASE("a device that pinned another server key is refused and fails closed") {
    for (Purpose purpose : {Purpose::session, Purpose::enrollment}) {
      CAPTURE(static_cast<int>(purpose));
      Fixture f;
      const KeyPair impostor = KeyPair::generate(f.ctx);
      spawn(
          f.io, [&]() -> asio::awaitable<void> { (void)co_await f.acceptOne(); }, f.serverDone);
      spawn(
          f.io,
          [&]() -> asio::awaitable<void> {
            SecureChannel ch = co_await f.connect(purpose, f.port(), impostor.publicKey);
            co_await ch.send(patterned(10, 1)); // must never get here
          },
          f.deviceDone);
      // The acceptor coroutine's result is a channel; run until both ended.
      f.io.run_for(std::chrono::seconds(10));
      REQUIRE(f.serverDone.has_value());
      REQUIRE(f.deviceDone.has_value());
      CHECK(codeOf(*f.serverDone) == Errc::auth_failed);
      const Errc device = codeOf(*f.deviceDone);
      CHECK((device == Errc::network || device == Errc::auth_failed));
    }
  }

  TEST_CASE("tampered frames end the session with a protocol error") {
    // Frame 0 is the IK handshake; frames 1 and 2 carry two one-frame messages.
    struct Attack {
      const char* name;
      FrameHook hook;
    };
    std::optional<Frame> held;
    const std::vector<Attack> attacks = {
        {"replayed",
         [](std::size_t i, Frame fr) -> std::vector<Frame> {
           if (i == 1) {
             return {fr, fr};
           }
           return {fr};
         }},
        {"reordered",
         [&held](std::size_t i, Frame fr) -> std::vector<Frame> {
           if (i == 1) {
             held = fr;
             return {};
           }
           if (i == 2) {
             return {fr, *held};
           }
           return {fr};
         }},
        {"bit-flipped",
         [](std::size_t i, Frame fr) -> std::vector<Frame> {
           if (i == 1) {
             fr[fr.size() / 2] ^= 0x04;
           }
           return {fr};
         }},
        {"truncated",
         [](std::size_t i, Frame fr) -> std::vector<Frame> {
           if (i == 1) {
             fr.pop_back();
           }
           return {fr};
         }},
        {"dropped",
         [](std::size_t i, Frame fr) -> std::vector<Frame> {
           if (i == 1) {
             return {};
           }
           return {fr};
         }},
    };
    for (const auto& attack : attacks) {
      CAPTURE(attack.name);
      Fixture f;
      tcp::acceptor front(f.io, localhost());
      const std::uint16_t frontPort = front.local_endpoint().port();
      std::optional<std::exception_ptr> proxyDone;
      spawn(
          f.io, [&, hook = attack.hook] { return proxy(front, f.port(), hook); }, proxyDone);
      std::vector<Bytes> got;
      std::optional<Errc> afterwards;
      std::exception_ptr failure;
      spawn(
          f.io,
          [&]() -> asio::awaitable<void> {
            SecureChannel ch = co_await f.acceptOne();
            try {
              for (int i = 0; i < 2; ++i) {
                got.push_back(co_await ch.receive());
              }
            } catch (...) {
              failure = std::current_exception();
            }
            CHECK_FALSE(ch.isOpen());
            try {
              (void)co_await ch.receive();
              afterwards = Errc::ok;
            } catch (const Error& e) {
              afterwards = e.code(); // the session stays ended
            }
            std::rethrow_exception(failure);
          },
          f.serverDone);
      spawn(
          f.io,
          [&]() -> asio::awaitable<void> {
            SecureChannel ch = co_await f.connect(Purpose::session, frontPort, f.server.publicKey);
            co_await ch.send(patterned(50, 1));
            co_await ch.send(patterned(60, 2));
            asio::steady_timer t(co_await asio::this_coro::executor,
                                 std::chrono::milliseconds(200));
            co_await t.async_wait(asio::use_awaitable);
          },
          f.deviceDone);
      f.io.run_for(std::chrono::seconds(10));
      REQUIRE(f.serverDone.has_value());
      CHECK(codeOf(*f.serverDone) == Errc::protocol);
      CHECK(afterwards == Errc::protocol);
      // Nothing forged or out of order was delivered.
      CHECK(got.size() <= 1);
      if (!got.empty()) {
        CHECK(got[0] == patterned(50, 1));
      }
    }
  }

  TEST_CASE("a message over the receiver's limit ends the session before it is buffered") {
    Fixture f;
    ChannelLimits small;
    small.maxMessage = 1000;
    auto server = [&]() -> asio::awaitable<void> {
      SecureChannel ch = co_await f.acceptOne(small);
      (void)co_await ch.receive();
    };
    auto device = [&]() -> asio::awaitable<void> {
      SecureChannel ch = co_await f.connect(Purpose::session, f.port(), f.server.publicKey);
      const Bytes big = patterned(2000, 3);
      co_await ch.send(big);
    };
    spawn(f.io, server, f.serverDone);
    spawn(f.io, device, f.deviceDone);
    f.run();
    CHECK(codeOf(*f.serverDone) == Errc::protocol);
  }

  TEST_CASE("an enrollment channel accepts only small messages from the unknown device") {
    Fixture f;
    auto server = [&]() -> asio::awaitable<void> {
      SecureChannel ch = co_await f.acceptOne(); // default limits: 16 MiB
      const Bytes small = co_await ch.receive();
      CHECK(small.size() == kMaxEnrollmentMessage);
      (void)co_await ch.receive();
    };
    auto device = [&]() -> asio::awaitable<void> {
      SecureChannel ch = co_await f.connect(Purpose::enrollment, f.port(), f.server.publicKey);
      const Bytes fits = patterned(kMaxEnrollmentMessage, 1);
      const Bytes big = patterned(kMaxEnrollmentMessage + 1, 2);
      co_await ch.send(fits);
      co_await ch.send(big);
    };
    spawn(f.io, server, f.serverDone);
    spawn(f.io, device, f.deviceDone);
    f.run();
    CHECK(codeOf(*f.serverDone) == Errc::protocol);
  }

  TEST_CASE("a silent peer makes receive time out") {
    Fixture f;
    ChannelLimits limits;
    limits.readTimeout = std::chrono::milliseconds(150);
    spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          SecureChannel ch = co_await f.acceptOne(limits);
          (void)co_await ch.receive();
        },
        f.serverDone);
    spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          SecureChannel ch = co_await f.connect(Purpose::session, f.port(), f.server.publicKey);
          asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(600));
          co_await t.async_wait(asio::use_awaitable);
        },
        f.deviceDone);
    f.run();
    CHECK(codeOf(*f.serverDone) == Errc::timeout);
  }

  TEST_CASE("a preamble of another wire version is refused as a version mismatch") {
    Fixture f;
    spawn(
        f.io, [&]() -> asio::awaitable<void> { (void)co_await f.acceptOne(); }, f.serverDone);
    spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          tcp::socket s = co_await connectTo(f.port());
          auto pre = preambleFor(Purpose::session);
          pre[4] = kWireVersion + 1;
          co_await asio::async_write(s, asio::buffer(pre), asio::use_awaitable);
          std::array<std::uint8_t, 1> b{};
          boost::system::error_code ec;
          co_await s.async_read_some(asio::buffer(b),
                                     asio::redirect_error(asio::use_awaitable, ec));
          CHECK(ec == asio::error::eof); // closed without an answer
        },
        f.deviceDone);
    f.run();
    CHECK(codeOf(*f.serverDone) == Errc::version_mismatch);
    CHECK(codeOf(*f.deviceDone) == Errc::ok);
  }

  TEST_CASE("preambles parse strictly") {
    CHECK(parsePreamble(preambleFor(Purpose::enrollment)) == Purpose::enrollment);
    auto bad = preambleFor(Purpose::session);
    bad[7] = 1;
    CHECK_THROWS_AS((void)parsePreamble(bad), Error);
    bad = preambleFor(Purpose::session);
    bad[5] = 9;
    CHECK_THROWS_AS((void)parsePreamble(bad), Error);
    bad = preambleFor(Purpose::session);
    bad[0] = 'X';
    CHECK_THROWS_AS((void)parsePreamble(bad), Error);
  }
}

namespace {

/// The change with an all-zero id when its id is the derived one, as a peer that
/// named "derived-ids" sends it.
Change withElidedId(Change change) {
  if (change.changeId ==
      sync::derivedChangeId(change.deviceId, change.recordId, change.field, change.hlc)) {
    change.changeId = {};
  }
  return change;
}

/// The change with its id derived when the wire left it out.
Change withEffectiveId(Change change) {
  change.changeId = effectiveChangeId(change);
  return change;
}

} // namespace

TEST_SUITE("protocol.convert") {
  TEST_CASE("a derivable change id is left out on request and derived again on arrival") {
    sync::Change c;
    c.recordId = sync::Uuid::random();
    c.deviceId = sync::Uuid::random();
    c.field = "school";
    c.recordType = "child";
    c.hlc = sync::Hlc{123456789};
    c.value = std::string("Hillside");
    c.changeId = sync::derivedChangeId(c.deviceId, c.recordId, c.field, c.hlc);
    const Change lean = withElidedId(c);
    CHECK(isElidedId(lean.changeId));
    CHECK(effectiveChangeId(lean) == c.changeId);
    CHECK(withEffectiveId(lean) == c);
    // An id that is not the derived one is always sent, and kept on arrival.
    c.changeId = sync::Uuid::random();
    CHECK(withElidedId(c) == c);
    CHECK(effectiveChangeId(c) == c.changeId);
    CHECK(withEffectiveId(c) == c);
  }

  TEST_CASE("a change with its id left out crosses the wire and is derived again, for every "
            "kind of value and in both list layouts") {
    std::vector<sync::Value> values = {sync::Null{},
                                       sync::Tombstone{},
                                       true,
                                       std::int64_t{-7},
                                       2.5,
                                       std::string(400, 'n'),
                                       sync::Bytes{1, 2, 3},
                                       sync::StringList{"a", std::string(40, 'b')}};
    for (const sync::Value& v : values) {
      sync::Change c;
      c.recordId = sync::Uuid::random();
      c.deviceId = sync::Uuid::random();
      c.field = "a field name longer than the short-string buffer";
      c.recordType = "safeguarding.assessment";
      c.hlc = sync::Hlc{987654321};
      c.baseHlc = sync::Hlc{987654000};
      c.baseDeviceId = sync::Uuid::random();
      c.resolves = {{sync::Hlc{5}, sync::Uuid::random()}};
      c.value = v;
      c.changeId = sync::derivedChangeId(c.deviceId, c.recordId, c.field, c.hlc);
      for (const bool writes : {false, true}) {
        const Message reply = PullReply{{withElidedId(c)}, 9, false};
        const Message got = decode(encode(reply, EncodeOptions{writes, false}));
        REQUIRE(std::holds_alternative<PullReply>(got));
        const auto& changes = std::get<PullReply>(got).changes;
        REQUIRE(changes.size() == 1);
        CHECK(changes[0].changeId.isNil());
        CHECK(withEffectiveId(changes[0]) == c);
      }
    }
  }
}
