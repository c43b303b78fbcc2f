#pragma once
// A real outpost-server in-process on 127.0.0.1 (ephemeral ports, temp data folder)
// and devices that talk to it over real TCP with the real protocol.

#include <outpost/context.hpp>
#include <outpost/error.hpp>
#include <outpost/protocol/session.hpp>
#include <outpost/server/keys.hpp>
#include <outpost/server/server.hpp>
#include <outpost/server/sqlite_store.hpp>
#include <outpost/sync/uuid.hpp>
#include <outpost/template.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <filesystem>
#include <future>
#include <thread>

namespace outpost::server::testing {

namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

/// A fresh folder under the system temp dir, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    std::array<unsigned char, 8> r{};
    randombytes_buf(r.data(), r.size());
    std::string name = "outpost-server-test-";
    for (unsigned char c : r) {
      name += "0123456789abcdef"[c >> 4];
      name += "0123456789abcdef"[c & 15];
    }
    path = fs::temp_directory_path() / name;
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

/// Runs the coroutine function `fn` to completion on `io` (at most 15 s) and
/// returns its value or rethrows its exception.
template <typename F>
auto runIn(asio::io_context& io, F fn) {
  using T = typename decltype(fn())::value_type;
  std::optional<T> value;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, std::move(fn), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) {
      value = std::move(v);
    }
    done = true;
  });
  io.restart();
  io.run_for(15s);
  REQUIRE(done);
  if (error) {
    std::rethrow_exception(error);
  }
  return std::move(*value);
}

inline Errc codeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::ok;
}

inline protocol::Uuid newId() { return sync::Uuid::random().bytes; }

/// The SDK's shipped template published as another version (and, optionally, with
/// another title): a valid document with a matching content hash.
inline std::string shippedTemplateAs(int version, const std::string& title = "") {
  auto doc = nlohmann::json::parse(model::cseScreeningV1Json());
  doc["version"] = version;
  if (!title.empty()) {
    doc["title"] = title;
  }
  doc.erase("content_hash");
  doc["content_hash"] = model::computeContentHash(doc.dump());
  return doc.dump();
}

inline std::uint64_t hlcNow(std::uint64_t logical = 0) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return (static_cast<std::uint64_t>(ms) << 16) | logical;
}

/// A data folder initialised as `outpostctl init` does, with teams north and south
/// and workers worker-a, worker-b (north) and worker-c (south).
struct DataFolder {
  Context& ctx;
  TempDir dir;
  explicit DataFolder(Context& c) : ctx(c) {
    const ServerKeys keys = ServerKeys::create(ctx, dir.path);
    SqliteServerStore store(ctx, dir.path, keys, true);
    store.addTeam("north");
    store.addTeam("south");
    store.addWorker("worker-a", {"north"});
    store.addWorker("worker-b", {"north"});
    store.addWorker("worker-c", {"south"});
  }
  /// An administrator's connection to the store (as outpostctl opens it).
  [[nodiscard]] std::unique_ptr<SqliteServerStore> store() const {
    return std::make_unique<SqliteServerStore>(ctx, dir.path, ServerKeys::load(dir.path));
  }
};

/// outpost-server running on its own threads.
struct RunningServer {
  std::unique_ptr<Server> server;
  std::future<void> done;

  RunningServer(Context& ctx, const fs::path& dir,
                std::chrono::milliseconds readTimeout = std::chrono::seconds(5)) {
    ServerOptions options;
    options.dataDir = dir;
    options.listen = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
    options.metrics = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
    options.threads = 2;
    options.limits.readTimeout = readTimeout;
    options.limits.writeTimeout = readTimeout;
    options.limits.maxMessage = 1u << 20;
    server = std::make_unique<Server>(ctx, options);
    done = std::async(std::launch::async, [s = server.get()] { s->run(); });
  }
  ~RunningServer() { stop(); }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  /// Graceful stop; true when run() returned within 10 s.
  bool stop() {
    if (!done.valid()) {
      return true;
    }
    server->stop();
    const bool finished = done.wait_for(10s) == std::future_status::ready;
    if (finished) {
      done.get();
    }
    return finished;
  }
  [[nodiscard]] std::uint16_t port() const { return server->port(); }
};

/// A device with its own key and event loop.
struct Device {
  Context& ctx;
  protocol::noise::KeyPair key = protocol::noise::KeyPair::generate(ctx);
  protocol::Uuid deviceId{};
  std::string workerId;
  protocol::noise::PublicKey serverKey{};
  std::uint16_t port = 0;
  asio::io_context io;
  std::optional<protocol::SecureChannel> channel;

  explicit Device(Context& c) : ctx(c) {}

  /// Enrolls with an `outpost-enroll:v1:...` payload.
  protocol::EnrollReply enroll(const std::string& payloadText) {
    const protocol::EnrollmentPayload payload = protocol::parseEnrollmentPayload(payloadText);
    serverKey = payload.serverKey;
    port = payload.port;
    auto reply = runIn(io, [&]() -> asio::awaitable<protocol::EnrollReply> {
      tcp::socket s(co_await asio::this_coro::executor);
      const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), payload.port);
      co_await s.async_connect(endpoint, asio::use_awaitable);
      co_return co_await protocol::enrollDevice(ctx, std::move(s), payload, key, "test");
    });
    deviceId = reply.deviceId;
    workerId = reply.workerId;
    return reply;
  }

  /// Connects a session channel and says Hello, naming `capabilities`.
  protocol::HelloReply hello(std::vector<std::string> capabilities = {}) {
    channel.reset();
    channel = runIn(io, [&]() -> asio::awaitable<std::optional<protocol::SecureChannel>> {
      tcp::socket s(co_await asio::this_coro::executor);
      const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
      co_await s.async_connect(endpoint, asio::use_awaitable);
      auto ch = co_await protocol::SecureChannel::connect(
          ctx, std::move(s), protocol::Purpose::session, key, serverKey);
      co_return std::optional<protocol::SecureChannel>(std::move(ch));
    });
    const protocol::Hello h{protocol::kProtocolVersionMin,
                            protocol::kProtocolVersionMax,
                            deviceId,
                            workerId,
                            "test",
                            hlcNow(),
                            std::move(capabilities)};
    return runIn(io, [&]() -> asio::awaitable<protocol::HelloReply> {
      co_return co_await protocol::openSession(*channel, h);
    });
  }

  /// One request, one reply.
  protocol::Message request(const protocol::Message& message) {
    return runIn(io, [&]() -> asio::awaitable<protocol::Message> {
      co_await channel->sendMessage(message);
      co_return co_await channel->receiveMessage();
    });
  }

  /// Sends without waiting for the reply, then cuts the connection.
  void sendAndCut(const protocol::Message& message) {
    (void)runIn(io, [&]() -> asio::awaitable<bool> {
      co_await channel->sendMessage(message);
      co_return true;
    });
    channel->close();
    channel.reset();
  }

  protocol::PushAck push(std::vector<protocol::Change> changes) {
    const protocol::Message batch = protocol::PushBatch{newId(), std::move(changes)};
    return protocol::expect<protocol::PushAck>(request(batch));
  }

  protocol::PullReply pull(std::uint64_t cursor, std::uint32_t limit = 1000) {
    const protocol::Message req = protocol::PullRequest{cursor, limit};
    return protocol::expect<protocol::PullReply>(request(req));
  }

  /// A change written on this device.
  protocol::Change change(const protocol::Uuid& record, const std::string& field,
                          protocol::Value value, std::uint64_t baseHlc = 0,
                          protocol::Uuid baseDevice = {}) {
    static std::uint64_t logical = 0;
    protocol::Change c;
    c.changeId = sync::Uuid{newId()};
    c.recordId = sync::Uuid{record};
    c.recordType = "assessment";
    c.field = field;
    c.value = std::move(value);
    c.hlc = sync::Hlc{hlcNow(++logical % 1000)};
    c.deviceId = sync::Uuid{deviceId};
    c.baseHlc = sync::Hlc{baseHlc};
    c.baseDeviceId = sync::Uuid{baseDevice};
    return c;
  }
};

/// Issues a code for `worker` as `outpostctl enroll` does and enrolls `device` with it.
inline void enrollAs(DataFolder& data, const RunningServer& srv, Device& device,
                     const std::string& worker) {
  auto store = data.store();
  const auto w = store->findWorker(worker);
  REQUIRE(w.has_value());
  const auto code = store->enrollmentRegistry().issueEnrollmentCode(
      worker, w->teams.front(), std::chrono::hours(1), protocol::Clock::now());
  const std::string payload = protocol::formatEnrollmentPayload(
      {"127.0.0.1", srv.port(), srv.server->publicKey(), code.code});
  device.enroll(payload);
}

} // namespace outpost::server::testing
