// End to end over loopback TCP: a device enrolls with a code, then opens sessions;
// the server refuses devices that are not enrolled or revoked, and a device that
// holds the wrong server key fails closed.

#include "loopback.hpp"

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/protocol/session.hpp>

#include <doctest/doctest.h>

using namespace outpost;
using namespace outpost::protocol;
using namespace outpost::protocol::testing;
using namespace std::chrono_literals;
using noise::KeyPair;

namespace {

/// The server's side of the world, with a real acceptor on 127.0.0.1.
struct World {
  Context ctx;
  asio::io_context io;
  tcp::acceptor acceptor{io, localhost()};
  sql::Database db{":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE};
  DeviceRegistry devices{db};
  EnrollmentRegistry codes{ctx, db, SecretBytes::copyOf(std::vector<std::uint8_t>(32, 1)), devices};
  KeyPair serverKey = KeyPair::generate(ctx);
  KeyPair deviceKey = KeyPair::generate(ctx);
  std::optional<std::exception_ptr> serverDone;
  std::optional<std::exception_ptr> deviceDone;

  std::uint16_t port() const { return acceptor.local_endpoint().port(); }

  EnrollmentPayload payloadFor(const std::string& code) const {
    return {"127.0.0.1", port(), serverKey.publicKey, code};
  }

  /// Serves one connection of either purpose; returns what happened.
  asio::awaitable<void> serveOne(std::optional<DeviceRecord>& enrolled,
                                 std::optional<AdmittedSession>& admitted) {
    tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
    SecureChannel ch = co_await SecureChannel::accept(ctx, std::move(s), serverKey);
    if (ch.purpose() == Purpose::enrollment) {
      enrolled = co_await serveEnrollment(ch, codes, 4242, Clock::now());
      co_return;
    }
    AdmittedSession session = co_await admitSession(ch, devices);
    admitted = session;
    const Message reply = HelloReply{session.version, 4343, {Command{Uuid{9}, Wipe{}}}};
    co_await ch.sendMessage(reply);
  }

  asio::awaitable<EnrollReply> enroll(const EnrollmentPayload& payload) {
    tcp::socket s = co_await connectTo(payload.port);
    co_return co_await enrollDevice(ctx, std::move(s), payload, deviceKey, "1.0.0");
  }

  asio::awaitable<HelloReply> hello(const Uuid& deviceId, std::uint16_t min = kProtocolVersionMin,
                                    std::uint16_t max = kProtocolVersionMax) {
    tcp::socket s = co_await connectTo(port());
    SecureChannel ch = co_await SecureChannel::connect(ctx, std::move(s), Purpose::session,
                                                       deviceKey, serverKey.publicKey);
    Hello h{min, max, deviceId, "worker-7", "1.0.0", 1, {}};
    co_return co_await openSession(ch, h);
  }

  void run() {
    io.restart();
    serverDone.reset();
    deviceDone.reset();
    io.run_for(10s);
    REQUIRE(serverDone.has_value());
    REQUIRE(deviceDone.has_value());
  }
};

} // namespace

TEST_SUITE("protocol.session") {
  TEST_CASE("a device enrolls with a code and then opens a session with its key") {
    World w;
    const IssuedCode code = w.codes.issueEnrollmentCode("worker-7", "team-north", 1h, Clock::now());
    std::optional<DeviceRecord> enrolled;
    std::optional<AdmittedSession> admitted;
    std::optional<EnrollReply> reply;
    auto server = [&]() -> asio::awaitable<void> { co_await w.serveOne(enrolled, admitted); };
    auto device = [&]() -> asio::awaitable<void> {
      reply = co_await w.enroll(w.payloadFor(code.code));
    };
    spawn(w.io, server, w.serverDone);
    spawn(w.io, device, w.deviceDone);
    w.run();
    CHECK(codeOf(*w.serverDone) == Errc::ok);
    CHECK(codeOf(*w.deviceDone) == Errc::ok);
    REQUIRE(enrolled.has_value());
    REQUIRE(reply.has_value());
    CHECK(enrolled->publicKey == w.deviceKey.publicKey);
    CHECK(reply->deviceId == enrolled->deviceId);
    CHECK(reply->workerId == "worker-7");
    CHECK(reply->teamId == "team-north");
    CHECK(reply->serverHlc == 4242);

    std::optional<HelloReply> hello;
    auto device2 = [&]() -> asio::awaitable<void> { hello = co_await w.hello(reply->deviceId); };
    spawn(w.io, server, w.serverDone);
    spawn(w.io, device2, w.deviceDone);
    w.run();
    CHECK(codeOf(*w.serverDone) == Errc::ok);
    CHECK(codeOf(*w.deviceDone) == Errc::ok);
    REQUIRE(admitted.has_value());
    CHECK(admitted->device.deviceId == reply->deviceId);
    CHECK(admitted->hello.workerId == "worker-7");
    REQUIRE(hello.has_value());
    CHECK(hello->serverHlc == 4343);
    CHECK(hello->pendingCommands.size() == 1);
  }

  TEST_CASE("a wrong or reused enrollment code is refused with auth_failed") {
    World w;
    const IssuedCode code = w.codes.issueEnrollmentCode("w", "t", 1h, Clock::now());
    std::string wrong = code.code;
    wrong.back() = wrong.back() == 'Z' ? 'Y' : 'Z';
    std::optional<DeviceRecord> enrolled;
    std::optional<AdmittedSession> admitted;
    auto server = [&]() -> asio::awaitable<void> { co_await w.serveOne(enrolled, admitted); };
    auto device = [&]() -> asio::awaitable<void> { (void)co_await w.enroll(w.payloadFor(wrong)); };
    spawn(w.io, server, w.serverDone);
    spawn(w.io, device, w.deviceDone);
    w.run();
    CHECK(codeOf(*w.serverDone) == Errc::ok); // an expected refusal, not a server error
    CHECK(codeOf(*w.deviceDone) == Errc::auth_failed);
    CHECK_FALSE(enrolled.has_value());
    CHECK_FALSE(w.devices.findByKey(w.deviceKey.publicKey).has_value());
  }

  TEST_CASE("a device that is not enrolled is refused at hello with auth_failed") {
    World w;
    std::optional<DeviceRecord> enrolled;
    std::optional<AdmittedSession> admitted;
    auto server = [&]() -> asio::awaitable<void> { co_await w.serveOne(enrolled, admitted); };
    auto device = [&]() -> asio::awaitable<void> { (void)co_await w.hello(Uuid{1}); };
    spawn(w.io, server, w.serverDone);
    spawn(w.io, device, w.deviceDone);
    w.run();
    CHECK(codeOf(*w.serverDone) == Errc::auth_failed);
    CHECK(codeOf(*w.deviceDone) == Errc::auth_failed);
    CHECK_FALSE(admitted.has_value());
  }

  TEST_CASE("a revoked device is refused with revoked") {
    World w;
    const DeviceRecord d{Uuid{7}, w.deviceKey.publicKey, "w", "t", false};
    w.devices.add(d, Clock::now());
    REQUIRE(w.devices.revoke(d.deviceId));
    std::optional<DeviceRecord> enrolled;
    std::optional<AdmittedSession> admitted;
    auto server = [&]() -> asio::awaitable<void> { co_await w.serveOne(enrolled, admitted); };
    auto device = [&]() -> asio::awaitable<void> { (void)co_await w.hello(d.deviceId); };
    spawn(w.io, server, w.serverDone);
    spawn(w.io, device, w.deviceDone);
    w.run();
    CHECK(codeOf(*w.serverDone) == Errc::revoked);
    CHECK(codeOf(*w.deviceDone) == Errc::revoked);
  }

  TEST_CASE("a hello naming another device than the key's is refused") {
    World w;
    w.devices.add({Uuid{7}, w.deviceKey.publicKey, "w", "t", false}, Clock::now());
    std::optional<DeviceRecord> enrolled;
    std::optional<AdmittedSession> admitted;
    auto server = [&]() -> asio::awaitable<void> { co_await w.serveOne(enrolled, admitted); };
    auto device = [&]() -> asio::awaitable<void> { (void)co_await w.hello(Uuid{8}); };
    spawn(w.io, server, w.serverDone);
    spawn(w.io, device, w.deviceDone);
    w.run();
    CHECK(codeOf(*w.deviceDone) == Errc::auth_failed);
  }

  TEST_CASE("protocol versions that do not overlap are refused with version_mismatch") {
    World w;
    w.devices.add({Uuid{7}, w.deviceKey.publicKey, "w", "t", false}, Clock::now());
    std::optional<DeviceRecord> enrolled;
    std::optional<AdmittedSession> admitted;
    auto server = [&]() -> asio::awaitable<void> { co_await w.serveOne(enrolled, admitted); };
    auto device = [&]() -> asio::awaitable<void> {
      (void)co_await w.hello(Uuid{7}, kProtocolVersionMax + 1, kProtocolVersionMax + 5);
    };
    spawn(w.io, server, w.serverDone);
    spawn(w.io, device, w.deviceDone);
    w.run();
    CHECK(codeOf(*w.serverDone) == Errc::version_mismatch);
    CHECK(codeOf(*w.deviceDone) == Errc::version_mismatch);
  }

  TEST_CASE("an enrollment payload with the wrong server key fails closed") {
    World w;
    const IssuedCode code = w.codes.issueEnrollmentCode("w", "t", 1h, Clock::now());
    EnrollmentPayload payload = w.payloadFor(code.code);
    payload.serverKey = KeyPair::generate(w.ctx).publicKey; // e.g. a tampered QR code
    std::optional<DeviceRecord> enrolled;
    std::optional<AdmittedSession> admitted;
    auto server = [&]() -> asio::awaitable<void> { co_await w.serveOne(enrolled, admitted); };
    auto device = [&]() -> asio::awaitable<void> { (void)co_await w.enroll(payload); };
    spawn(w.io, server, w.serverDone);
    spawn(w.io, device, w.deviceDone);
    w.run();
    CHECK(codeOf(*w.serverDone) == Errc::auth_failed);
    const Errc device_ = codeOf(*w.deviceDone);
    CHECK((device_ == Errc::network || device_ == Errc::auth_failed));
    CHECK_FALSE(enrolled.has_value());
    // The code was never presented, so it still works with the right key.
    CHECK(w.codes.redeem(code.code, w.deviceKey.publicKey, Clock::now()).outcome ==
          RedeemOutcome::enrolled);
  }
}
