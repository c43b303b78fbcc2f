// Enrollment from the device's side, end to end: a real enrollment server on
// 127.0.0.1 (the protocol's server functions), a real vault in a temp folder.

#include "../vault/vault_fixture.hpp"

#include <outpost/asio.hpp>
#include <outpost/device_identity.hpp>
#include <outpost/protocol/session.hpp>

#include <doctest/doctest.h>

#include <thread>

using namespace outpost;
using namespace outpost::test;
using namespace outpost::protocol;
using namespace std::chrono_literals;

namespace {

/// An enrollment server that serves `connections` connections on its own thread.
struct EnrollmentServer {
  Context ctx;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  sql::Database db{":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE};
  DeviceRegistry devices{db};
  EnrollmentRegistry codes{ctx, db, SecretBytes::copyOf(std::vector<std::uint8_t>(32, 7)), devices};
  noise::KeyPair serverKey = noise::KeyPair::generate(ctx);
  std::optional<DeviceRecord> enrolled;
  std::thread thread;

  void start(int connections) {
    asio::co_spawn(
        io,
        [this, connections]() -> asio::awaitable<void> {
          for (int i = 0; i < connections; ++i) {
            auto socket = co_await acceptor.async_accept(asio::use_awaitable);
            try {
              SecureChannel ch = co_await SecureChannel::accept(ctx, std::move(socket), serverKey);
              auto device = co_await serveEnrollment(ch, codes, 77, Clock::now());
              if (device) {
                enrolled = device;
              }
            } catch (const std::exception&) {
              // a refused device: the next connection is served
            }
          }
        },
        asio::detached);
    thread = std::thread([this] { io.run_for(20s); });
  }
  ~EnrollmentServer() {
    if (thread.joinable()) {
      thread.join();
    }
  }
  std::string payload(const std::string& code) const {
    return formatEnrollmentPayload(
        {"127.0.0.1", acceptor.local_endpoint().port(), serverKey.publicKey, code});
  }
};

} // namespace

TEST_SUITE("sync.enrollment") {
  TEST_CASE("a device enrolls with a payload and keeps its identity, private key included, "
            "encrypted in the vault") {
    EnrollmentServer server;
    const auto code =
        server.codes.issueEnrollmentCode("worker-a", "team-north", 10min, Clock::now());
    server.start(1);
    VaultFixture f;
    auto vault = f.create();
    const DeviceIdentity id = enrollDevice(f.context, *vault, server.payload(code.code), "1.0.0");
    server.thread.join();
    REQUIRE(server.enrolled.has_value());
    CHECK(id.deviceId == server.enrolled->deviceId);
    CHECK(id.deviceKey.publicKey == server.enrolled->publicKey);
    CHECK(id.workerId == "worker-a");
    CHECK(id.teamId == "team-north");
    CHECK(id.serverKey == server.serverKey.publicKey);

    // It survives lock and reopen, and the private key is not in any file.
    const std::vector<std::uint8_t> secret(id.deviceKey.secretKey.span().begin(),
                                           id.deviceKey.secretKey.span().end());
    vault.reset();
    auto again = f.openUnlocked();
    const auto loaded = loadDeviceIdentity(*again);
    REQUIRE(loaded.has_value());
    CHECK(loaded->deviceId == id.deviceId);
    CHECK(loaded->deviceKey.secretKey.equals(secret));
    for (const auto& e : std::filesystem::recursive_directory_iterator(f.tmp.path())) {
      if (e.is_regular_file()) {
        const auto bytes = readFile(e.path());
        const std::string needle(secret.begin(), secret.end());
        CHECK_FALSE(contains(bytes, needle));
      }
    }
    // Enrolling twice is refused and changes nothing.
    try {
      (void)enrollDevice(f.context, *again, server.payload(code.code), "1.0.0");
      FAIL("enrolled twice");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::already_exists);
    }
    CHECK(loadDeviceIdentity(*again)->deviceId == id.deviceId);
  }

  TEST_CASE("a refused code leaves the device not enrolled and the retry reuses its key") {
    EnrollmentServer server;
    const auto good =
        server.codes.issueEnrollmentCode("worker-b", "team-south", 10min, Clock::now());
    server.start(2);
    VaultFixture f;
    auto vault = f.create();
    std::string wrong = good.code;
    wrong[5] = wrong[5] == 'A' ? 'B' : 'A';
    try {
      (void)enrollDevice(f.context, *vault, server.payload(wrong), "1.0.0");
      FAIL("a wrong code enrolled");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::auth_failed);
    }
    CHECK_FALSE(loadDeviceIdentity(*vault).has_value());
    const auto id = enrollDevice(f.context, *vault, server.payload(good.code), "1.0.0");
    server.thread.join();
    CHECK(id.workerId == "worker-b");
  }

  TEST_CASE("a bad payload is refused before anything is stored or sent") {
    VaultFixture f;
    auto vault = f.create();
    const auto commits = vault->commitCount();
    for (const char* bad : {"", "outpost-enroll:v1:",
                            "outpost-enroll:v2:h:1:AAAA:ABCD-EFGH-JKMN-PQRS", "hello world"}) {
      CAPTURE(bad);
      try {
        (void)enrollDevice(f.context, *vault, bad, "1.0.0");
        FAIL("accepted a bad payload");
      } catch (const Error& e) {
        CHECK(e.code() == Errc::invalid_argument);
      }
    }
    CHECK(vault->commitCount() == commits);
    CHECK_FALSE(loadDeviceIdentity(*vault).has_value());
  }

  TEST_CASE("an unreachable server is a network error and the pending key is kept") {
    VaultFixture f;
    auto vault = f.create();
    asio::io_context io;
    asio::ip::tcp::acceptor probe{io, {asio::ip::make_address("127.0.0.1"), 0}};
    const auto port = probe.local_endpoint().port();
    probe.close(); // nothing listens there now
    const Context ctx;
    const auto key = noise::KeyPair::generate(ctx);
    const auto payload =
        formatEnrollmentPayload({"127.0.0.1", port, key.publicKey, "ABCD-EFGH-JKMN-PQRS"});
    try {
      (void)enrollDevice(f.context, *vault, payload, "1.0.0", 5s);
      FAIL("enrolled with no server");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::network);
    }
    CHECK_FALSE(loadDeviceIdentity(*vault).has_value());
  }
}
