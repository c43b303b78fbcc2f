// Server commands carried out by the sync client, against a scripted server built
// from the protocol's own server functions: it enrolls the device, then answers
// the session's Hello with the commands under test.

#include "../vault/vault_fixture.hpp"

#include <outpost/asio.hpp>
#include <outpost/device_identity.hpp>
#include <outpost/platform/clock.hpp>
#include <outpost/protocol/session.hpp>
#include <outpost/records.hpp>
#include <outpost/sync_client.hpp>
#include <outpost/template.hpp>

#include <doctest/doctest.h>

#include <thread>

using namespace outpost;
using namespace outpost::test;
using namespace outpost::protocol;
using namespace std::chrono_literals;

namespace {

/// Enrolls one device, then serves one session: Hello -> HelloReply carrying
/// `commands`, then answers pull requests with nothing.
struct ScriptedServer {
  Context ctx;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  sql::Database db{":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE};
  DeviceRegistry devices{db};
  EnrollmentRegistry codes{ctx, db, SecretBytes::copyOf(std::vector<std::uint8_t>(32, 9)), devices};
  noise::KeyPair serverKey = noise::KeyPair::generate(ctx);
  std::vector<Command> commands;
  std::thread thread;

  void start() {
    asio::co_spawn(
        io,
        [this]() -> asio::awaitable<void> {
          {
            auto socket = co_await acceptor.async_accept(asio::use_awaitable);
            SecureChannel ch = co_await SecureChannel::accept(ctx, std::move(socket), serverKey);
            (void)co_await serveEnrollment(ch, codes, 1, Clock::now());
          }
          auto socket = co_await acceptor.async_accept(asio::use_awaitable);
          SecureChannel ch = co_await SecureChannel::accept(ctx, std::move(socket), serverKey);
          const AdmittedSession session = co_await admitSession(ch, devices);
          const Message reply = HelloReply{session.version, 1, commands};
          co_await ch.sendMessage(reply);
          try {
            for (;;) {
              const Message request = co_await ch.receiveMessage();
              const Message answer =
                  std::holds_alternative<PullRequest>(request)
                      ? Message{PullReply{{}, std::get<PullRequest>(request).cursor, false}}
                      : Message{ErrorReply{Errc::protocol, "unexpected"}};
              co_await ch.sendMessage(answer);
            }
          } catch (const std::exception&) {
            // the device closed the session
          }
        },
        asio::detached);
    thread = std::thread([this] { io.run_for(20s); });
  }
  ~ScriptedServer() {
    io.stop();
    if (thread.joinable()) {
      thread.join();
    }
  }
  std::string payload() {
    const auto code = codes.issueEnrollmentCode("worker-a", "team-a", 10min, Clock::now());
    return formatEnrollmentPayload(
        {"127.0.0.1", acceptor.local_endpoint().port(), serverKey.publicKey, code.code});
  }
};

/// An enrolled device with a record store and a sync client, against `server`
/// (started here).
struct Device {
  VaultFixture f;
  platform::SystemClock clock;
  std::unique_ptr<Vault> vault;
  std::unique_ptr<model::RecordStore> store;
  std::unique_ptr<SyncClient> client;

  explicit Device(ScriptedServer& server) {
    const std::string payload = server.payload();
    server.start();
    vault = f.create();
    (void)enrollDevice(f.context, *vault, payload, "test");
    store = std::make_unique<model::RecordStore>(f.context, *vault, clock,
                                                 model::RecordStoreOptions{"worker-a"});
    SyncOptions o;
    o.timeout = 5s;
    client = std::make_unique<SyncClient>(f.context, *vault, *store, clock, o);
  }
};

} // namespace

TEST_SUITE("sync.commands") {
  TEST_CASE("templates the server sends are checked and kept in the vault, one that does not "
            "load is skipped") {
    ScriptedServer server;
    server.commands.push_back(
        {sync::Uuid::random().bytes,
         TemplateUpdate{{std::string(model::cseScreeningV1Json()), "{\"not\":\"a template\"}"}}});
    Device d(server);
    CHECK(installedTemplates(*d.vault).empty());
    const SyncReport r = d.client->sync();
    CHECK(r.templatesInstalled == 1);
    const auto kept = installedTemplates(*d.vault);
    REQUIRE(kept.size() == 1);
    CHECK(model::loadTemplate(kept[0]).id() == "cse-screening");
  }

  TEST_CASE("a wipe command destroys the vault") {
    ScriptedServer server;
    server.commands.push_back({sync::Uuid::random().bytes, Wipe{}});
    Device d(server);
    try {
      (void)d.client->sync();
      FAIL("a wiped device synced");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::revoked);
    }
    CHECK(d.client->status().wiped);
    CHECK_FALSE(Vault::exists(d.f.dir));
  }
}
