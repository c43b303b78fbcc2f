#pragma once
// Field devices (a real vault, record store and sync client each) against a real
// outpost-server on 127.0.0.1, optionally through a proxy that cuts the
// connection after a given number of server frames.

#include "../server/harness.hpp"
#include "../vault/vault_fixture.hpp"

#include <outpost/audit.hpp>
#include <outpost/device_identity.hpp>
#include <outpost/journal.hpp>
#include <outpost/platform/clock.hpp>
#include <outpost/records.hpp>
#include <outpost/safeguarding.hpp>
#include <outpost/sync_client.hpp>

#include <atomic>

namespace outpost::synctest {

using namespace std::chrono_literals;
using server::testing::DataFolder;
using server::testing::RunningServer;
using tcp = asio::ip::tcp;

/// A TCP proxy on its own thread. With `cutAfter` >= 0, each connection is cut
/// once that many frames have gone from the server to the device (so every
/// message boundary of a sync can be tried); -1 forwards everything.
class CuttingProxy {
public:
  explicit CuttingProxy(std::uint16_t target) : target_(target) {
    thread_ = std::thread([this] {
      asio::co_spawn(io_, acceptLoop(), asio::detached);
      io_.run();
    });
  }
  ~CuttingProxy() {
    io_.stop();
    thread_.join();
  }
  CuttingProxy(const CuttingProxy&) = delete;
  CuttingProxy& operator=(const CuttingProxy&) = delete;

  [[nodiscard]] std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void cutAfter(int frames) { cutAfter_ = frames; }
  [[nodiscard]] int connectionsCut() const { return cuts_; }

private:
  asio::awaitable<void> acceptLoop() {
    for (;;) {
      auto device =
          std::make_shared<tcp::socket>(co_await acceptor_.async_accept(asio::use_awaitable));
      auto upstream = std::make_shared<tcp::socket>(io_);
      co_await upstream->async_connect({asio::ip::make_address("127.0.0.1"), target_},
                                       asio::use_awaitable);
      asio::co_spawn(io_, forwardRaw(device, upstream), asio::detached);
      asio::co_spawn(io_, forwardFrames(upstream, device, cutAfter_.load()), asio::detached);
    }
  }
  static void closeBoth(tcp::socket& a, tcp::socket& b) {
    boost::system::error_code ignored;
    a.close(ignored);
    b.close(ignored);
  }
  asio::awaitable<void> forwardRaw(std::shared_ptr<tcp::socket> from,
                                   std::shared_ptr<tcp::socket> to) {
    std::array<std::uint8_t, 16384> buf{};
    try {
      for (;;) {
        const std::size_t n =
            co_await from->async_read_some(asio::buffer(buf), asio::use_awaitable);
        co_await asio::async_write(*to, asio::buffer(buf.data(), n), asio::use_awaitable);
      }
    } catch (const std::exception&) {
      closeBoth(*from, *to);
    }
  }
  /// Server -> device, frame by frame (2-byte length, then the frame).
  asio::awaitable<void> forwardFrames(std::shared_ptr<tcp::socket> from,
                                      std::shared_ptr<tcp::socket> to, int cutAfter) {
    std::vector<std::uint8_t> frame(65537);
    int frames = 0;
    try {
      for (;;) {
        if (cutAfter >= 0 && frames >= cutAfter) {
          ++cuts_;
          closeBoth(*from, *to);
          co_return;
        }
        co_await asio::async_read(*from, asio::buffer(frame.data(), 2), asio::use_awaitable);
        const std::size_t len = (std::size_t{frame[0]} << 8) | frame[1];
        co_await asio::async_read(*from, asio::buffer(frame.data() + 2, len), asio::use_awaitable);
        co_await asio::async_write(*to, asio::buffer(frame.data(), len + 2), asio::use_awaitable);
        ++frames;
      }
    } catch (const std::exception&) {
      closeBoth(*from, *to);
    }
  }

  std::uint16_t target_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_, {asio::ip::make_address("127.0.0.1"), 0}};
  std::atomic<int> cutAfter_{-1};
  std::atomic<int> cuts_{0};
  std::thread thread_;
};

/// An enrollment payload for `worker` (as `outpostctl enroll` makes one).
inline std::string enrollmentPayload(const DataFolder& data, const std::string& worker,
                                     std::uint16_t port, const std::string& host = "127.0.0.1") {
  auto s = data.store();
  const auto w = s->findWorker(worker);
  REQUIRE(w.has_value());
  const auto code = s->enrollmentRegistry().issueEnrollmentCode(
      worker, w->teams.front(), std::chrono::minutes(10), protocol::Clock::now());
  return protocol::formatEnrollmentPayload(
      {host, port, server::ServerKeys::load(data.dir.path).staticKey.publicKey, code.code});
}

/// A field device: vault, record store and sync client, enrolled as `worker`.
struct FieldDevice {
  test::VaultFixture vf;
  platform::SystemClock clock;
  std::unique_ptr<Vault> vault;
  std::unique_ptr<model::RecordStore> store;
  std::unique_ptr<SyncClient> client;
  std::string worker;

  FieldDevice(const DataFolder& data, const std::string& workerId, std::uint16_t port,
              SyncOptions options = {}, const std::string& host = "127.0.0.1")
      : worker(workerId) {
    vault = vf.create();
    const std::string payload = enrollmentPayload(data, worker, port, host);
    (void)enrollDevice(vf.context, *vault, payload, "test");
    store = std::make_unique<model::RecordStore>(vf.context, *vault, clock,
                                                 model::RecordStoreOptions{worker});
    options.timeout = std::chrono::seconds(5);
    client = std::make_unique<SyncClient>(vf.context, *vault, *store, clock, std::move(options));
  }

  SyncReport sync() { return client->sync(); }

  /// Closes everything (as an app that exits), then opens it again.
  void close() {
    client.reset();
    store.reset();
    vault.reset();
  }
  void reopen(SyncOptions options = {}) {
    vault = vf.openUnlocked();
    store = std::make_unique<model::RecordStore>(vf.context, *vault, clock,
                                                 model::RecordStoreOptions{worker});
    options.timeout = std::chrono::seconds(5);
    client = std::make_unique<SyncClient>(vf.context, *vault, *store, clock, std::move(options));
  }

  /// A child record owned by `team`.
  sync::Uuid addChild(const std::string& team, const std::string& name) {
    return store->create("child", {{"owner_team", team},
                                   {"name", name},
                                   {"local_authority", std::string("Northshire")},
                                   {"police_force_area", std::string("Northshire Police")},
                                   {"date_of_birth", std::string("2010-04-01")}});
  }
  /// `count` children of the north team, "Child 0", "Child 1", ...
  std::vector<sync::Uuid> addChildren(int count) {
    std::vector<sync::Uuid> ids;
    for (int i = 0; i < count; ++i) {
      ids.push_back(addChild("north", "Child " + std::to_string(i)));
    }
    return ids;
  }
};

inline Errc codeOf(const std::function<void()>& f) { return server::testing::codeOf(f); }

} // namespace outpost::synctest
