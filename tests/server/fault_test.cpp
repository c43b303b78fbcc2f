// Faults around the server: the process killed (-9) in the middle of applying a
// large batch and restarted on the same data folder; SIGTERM while a batch is being
// applied; clients that misbehave after their session was admitted (oversize
// announcement, a message stalled half-way, a forged frame, undecodable content)
// while another device syncs.

#include "harness.hpp"
#include "process.hpp"

#include <outpost/protocol/framing.hpp>

#include <sys/stat.h>

using namespace outpost;
using namespace outpost::server;
using namespace outpost::server::testing;
using namespace outpost::protocol;

namespace {

std::size_t count(const PushAck& ack, ChangeOutcome outcome) {
  return static_cast<std::size_t>(std::count_if(
      ack.results.begin(), ack.results.end(), [&](const auto& r) { return r.outcome == outcome; }));
}

/// Enrolls `device` for `worker` with a server running as a child process.
void enrollWith(const DataFolder& data, std::uint16_t port, Device& device,
                const std::string& worker) {
  const auto code =
      data.store()->issueEnrollmentCode(worker, std::chrono::hours(1), protocol::Clock::now());
  const ServerKeys keys = ServerKeys::load(data.dir.path);
  device.enroll(formatEnrollmentPayload({"127.0.0.1", port, keys.staticKey.publicKey, code.code}));
}

/// A batch of `n` changes (ten fields of n/10 records), each value ~300 bytes: a
/// transaction that spills to the WAL long before it commits.
std::vector<Change> bigBatch(Device& device, std::size_t n) {
  std::vector<Change> out;
  out.reserve(n);
  Uuid record{};
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 10 == 0) {
      record = newId();
    }
    out.push_back(device.change(record, "field_" + std::to_string(i % 10),
                                std::string(300, static_cast<char>('a' + i % 26))));
  }
  return out;
}

/// The WAL file's size and modification time: changes once SQLite writes to it.
std::pair<std::int64_t, std::int64_t> walStamp(const fs::path& dataDir) {
  struct stat st {};
  if (::stat((dataDir / "server.db-wal").c_str(), &st) != 0) {
    return {0, 0};
  }
  return {st.st_size, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec};
}

/// Waits (at most 5 s) until the server writes to the WAL after `before`.
bool waitForWalWrite(const fs::path& dataDir, std::pair<std::int64_t, std::int64_t> before) {
  for (int i = 0; i < 50000; ++i) {
    if (walStamp(dataDir) != before) {
      return true;
    }
    std::this_thread::sleep_for(100us);
  }
  return false;
}

/// Waits (at most 5 s) until the WAL is larger than `before`: the server is writing a
/// batch (the truncation of an idle WAL, which also changes its stamp,
/// is not taken for that).
bool waitForWalGrowth(const fs::path& dataDir, std::pair<std::int64_t, std::int64_t> before) {
  for (int i = 0; i < 50000; ++i) {
    if (walStamp(dataDir).first > before.first) {
      return true;
    }
    std::this_thread::sleep_for(100us);
  }
  return false;
}

/// Hello, then one round trip: the server records the device's scope just after the
/// HelloReply, and that write must not be taken for the batch's.
void settledHello(Device& device) {
  (void)device.hello();
  (void)device.pull(0, 1);
}

void sendOnly(Device& device, const Message& message) {
  (void)runIn(device.io, [&]() -> asio::awaitable<bool> {
    co_await device.channel->sendMessage(message);
    co_return true;
  });
}

/// A session driven by hand over a blocking socket: the real handshake and Hello,
/// then whatever bytes a test wants to send.
struct RawSession {
  asio::io_context io;
  tcp::socket socket{io};
  noise::CipherState send;
  noise::CipherState receive;

  RawSession(Context& ctx, std::uint16_t port, const Device& enrolled) {
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    const auto preamble = preambleFor(Purpose::session);
    asio::write(socket, asio::buffer(preamble));
    noise::HandshakeConfig config;
    config.pattern = noise::patternIK();
    config.role = noise::Role::initiator;
    config.prologue = prologueFor(Purpose::session);
    config.localStatic = enrolled.key.clone();
    config.remoteStatic = enrolled.serverKey;
    noise::HandshakeState handshake(ctx, std::move(config));
    writeFrame(handshake.writeMessage({}));
    (void)handshake.readMessage(readFrame());
    auto ciphers = handshake.finish();
    send = std::move(ciphers.send);
    receive = std::move(ciphers.receive);
    sendMessage(Hello{kProtocolVersionMin,
                      kProtocolVersionMax,
                      enrolled.deviceId,
                      enrolled.workerId,
                      "test",
                      hlcNow(),
                      {}});
    REQUIRE(std::holds_alternative<HelloReply>(receiveMessage()));
  }

  void writeFrame(std::span<const std::uint8_t> body) {
    const std::array<std::uint8_t, 2> length = {static_cast<std::uint8_t>(body.size() >> 8),
                                                static_cast<std::uint8_t>(body.size() & 0xff)};
    asio::write(socket, asio::buffer(length));
    asio::write(socket, asio::buffer(body.data(), body.size()));
  }
  noise::Bytes readFrame() {
    std::array<std::uint8_t, 2> length{};
    asio::read(socket, asio::buffer(length));
    noise::Bytes body(static_cast<std::size_t>((length[0] << 8) | length[1]));
    asio::read(socket, asio::buffer(body));
    return body;
  }
  /// One transport frame carrying `plaintext`.
  void sendChunk(std::span<const std::uint8_t> plaintext) {
    writeFrame(send.encrypt({}, plaintext));
  }
  void sendMessage(const Message& message) {
    for (const auto& chunk : splitMessage(encode(message), kMaxApplicationMessage)) {
      sendChunk(chunk);
    }
  }
  Message receiveMessage() {
    MessageAssembler assembler(kMaxApplicationMessage);
    for (;;) {
      const noise::Bytes plain = receive.decrypt({}, readFrame());
      if (auto message = assembler.add(plain)) {
        return decode(*message);
      }
    }
  }
  /// True once the server has closed the connection (waits at most `limit`).
  bool closedByServer(std::chrono::milliseconds limit) {
    socket.non_blocking(true);
    const auto end = std::chrono::steady_clock::now() + limit;
    std::array<std::uint8_t, 4096> buf{};
    while (std::chrono::steady_clock::now() < end) {
      boost::system::error_code ec;
      (void)socket.read_some(asio::buffer(buf), ec);
      if (ec && ec != asio::error::would_block) {
        return true; // eof or reset
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

/// The first chunk of an application message announcing `total` bytes.
noise::Bytes firstChunk(std::uint32_t total, std::size_t bytes) {
  noise::Bytes chunk(bytes, 0x42);
  chunk[0] = static_cast<std::uint8_t>(total >> 24);
  chunk[1] = static_cast<std::uint8_t>(total >> 16);
  chunk[2] = static_cast<std::uint8_t>(total >> 8);
  chunk[3] = static_cast<std::uint8_t>(total);
  return chunk;
}

} // namespace

TEST_SUITE("server.fault") {
  TEST_CASE("kill -9 while a batch is applied: after restart it is all there or not at all, and "
            "pushing it again loses nothing") {
    Context ctx;
    DataFolder data(ctx);
    Device device(ctx);
    constexpr std::size_t kBatch = 10000;
    std::uint64_t expectedSeq = 0;
    int applied = 0;
    int lost = 0;
    // Kill points (ms after the server first writes the transaction's pages to the
    // WAL, i.e. mid-transaction): 0, 15, 60, 200; -1: right after the device finished
    // sending (before or as the server starts applying); -2: just after the commit,
    // before the device reads the acknowledgement.
    constexpr int kBeforeApplying = -1;
    constexpr int kAfterCommit = -2;
    for (const int killAfterMs : {0, 15, 60, 200, kBeforeApplying, kAfterCommit}) {
      CAPTURE(killAfterMs);
      std::vector<Change> batch;
      {
        ServerProcess server(data.dir.path);
        const std::uint16_t port = server.port();
        REQUIRE(port != 0);
        if (device.port == 0) {
          enrollWith(data, port, device, "worker-a");
        }
        device.port = port;
        settledHello(device);
        batch = bigBatch(device, kBatch);
        const auto before = walStamp(data.dir.path);
        sendOnly(device, PushBatch{newId(), batch});
        if (killAfterMs >= 0) {
          CHECK(waitForWalWrite(data.dir.path, before));
          std::this_thread::sleep_for(std::chrono::milliseconds(killAfterMs));
        } else if (killAfterMs == kAfterCommit) {
          auto reader = data.store();
          for (int i = 0; i < 10000 && reader->lastSequence() < expectedSeq + kBatch; ++i) {
            std::this_thread::sleep_for(1ms);
          }
        }
        server.killNow();
        device.channel.reset();
      }
      // On the same folder: the batch and its audit entry are both there, or neither.
      const std::uint64_t stored = data.store()->lastSequence() - expectedSeq;
      CHECK((stored == 0 || stored == kBatch));
      if (killAfterMs == kAfterCommit) {
        CHECK(stored == kBatch); // committed, then killed before the ack was read
      }
      (stored == 0 ? lost : applied) += 1;
      const AuditVerification audit = data.store()->verifyAudit();
      CHECK(audit.intact);
      CHECK(audit.changesChecked == static_cast<std::int64_t>(expectedSeq + stored));

      ServerProcess again(data.dir.path);
      device.port = again.port();
      REQUIRE(device.port != 0);
      (void)device.hello();
      const PushAck ack = device.push(batch);
      REQUIRE(ack.results.size() == kBatch);
      if (stored == kBatch) {
        CHECK(count(ack, ChangeOutcome::duplicate) == kBatch);
      } else {
        CHECK(count(ack, ChangeOutcome::applied) == kBatch);
      }
      expectedSeq += kBatch;
      CHECK(data.store()->lastSequence() == expectedSeq);
      device.channel.reset();
      CHECK(again.signalAndWait(SIGTERM) == 0);
    }
    MESSAGE("batches found applied after kill -9: " << applied << ", not applied: " << lost);
    const AuditVerification audit = data.store()->verifyAudit();
    CHECK(audit.intact);
    CHECK(audit.changesChecked == static_cast<std::int64_t>(expectedSeq));
  }

  TEST_CASE("SIGTERM while a batch is applied: it is committed and acknowledged, then the "
            "server exits 0") {
    Context ctx;
    DataFolder data(ctx);
    Device device(ctx);
    ServerProcess server(data.dir.path);
    const std::uint16_t port = server.port();
    REQUIRE(port != 0);
    enrollWith(data, port, device, "worker-a");
    settledHello(device);
    constexpr std::size_t kBatch = 10000;
    const PushBatch batch{newId(), bigBatch(device, kBatch)};
    const auto before = walStamp(data.dir.path);
    sendOnly(device, batch);
    REQUIRE(waitForWalGrowth(data.dir.path, before)); // the server is applying it
    kill(server.pid, SIGTERM);
    const Message reply = runIn(device.io, [&]() -> asio::awaitable<Message> {
      co_return co_await device.channel->receiveMessage();
    });
    REQUIRE(std::holds_alternative<PushAck>(reply));
    const PushAck& ack = std::get<PushAck>(reply);
    CHECK(ack.batchId == batch.batchId);
    CHECK(count(ack, ChangeOutcome::applied) == kBatch);
    CHECK(server.waitExit() == 0);
    CHECK(data.store()->lastSequence() == kBatch);
    CHECK(data.store()->verifyAudit().intact);
  }

  TEST_CASE("after admission: an oversize announcement, a message stalled half-way, a forged "
            "frame and undecodable content each end only their own session") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path, std::chrono::milliseconds(1500)); // 1 MiB messages
    Device honest(ctx);
    enrollAs(data, srv, honest, "worker-a");
    std::vector<std::unique_ptr<Device>> hostile;
    for (int i = 0; i < 4; ++i) {
      hostile.push_back(std::make_unique<Device>(ctx));
      enrollAs(data, srv, *hostile.back(), "worker-b");
    }
    RawSession oversize(ctx, srv.port(), *hostile[0]);
    RawSession stalled(ctx, srv.port(), *hostile[1]);
    RawSession forged(ctx, srv.port(), *hostile[2]);
    RawSession undecodable(ctx, srv.port(), *hostile[3]);
    const auto started = std::chrono::steady_clock::now();

    // 64 MiB announced (the limit is 1 MiB).
    oversize.sendChunk(firstChunk(64u << 20, 100));
    // 200 000 bytes announced, one full frame sent, then nothing.
    stalled.sendChunk(firstChunk(200000, kFramePlaintext));
    // Random bytes where an authenticated frame belongs.
    noise::Bytes junk(200);
    randombytes_buf(junk.data(), junk.size());
    forged.writeFrame(junk);
    // A well-framed message that is not a Cap'n Proto Envelope.
    noise::Bytes garbage(1000);
    randombytes_buf(garbage.data(), garbage.size());
    for (const auto& chunk : splitMessage(garbage, kMaxApplicationMessage)) {
      undecodable.sendChunk(chunk);
    }

    // Meanwhile an honest device keeps syncing, unhindered, and a colleague's device
    // pulls what it pushed (a device is not sent its own changes back).
    Device colleague(ctx);
    enrollAs(data, srv, colleague, "worker-a");
    (void)colleague.hello();
    (void)honest.hello();
    std::chrono::steady_clock::duration slowest{};
    std::uint64_t cursor = 0;
    for (int round = 0; round < 20; ++round) {
      const auto t0 = std::chrono::steady_clock::now();
      const PushAck ack = honest.push({honest.change(newId(), "x", std::int64_t{round})});
      const PullReply pulled = colleague.pull(cursor);
      slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
      CHECK(count(ack, ChangeOutcome::applied) == 1);
      CHECK(pulled.changes.size() == 1);
      cursor = pulled.nextCursor;
      std::this_thread::sleep_for(50ms);
    }
    CHECK(slowest < std::chrono::milliseconds(1000));

    CHECK(oversize.closedByServer(1s));
    CHECK(forged.closedByServer(1s));
    CHECK(undecodable.closedByServer(1s));
    CHECK(stalled.closedByServer(3s));
    // The stalled one was cut by the read timeout, not before.
    CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(1400));
    for (int i = 0; i < 200 && srv.server->metrics().errors.load() < 4; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    CHECK(srv.server->metrics().errors.load() == 4);
    CHECK(srv.server->metrics().batches.load() == 20);
  }
}

TEST_SUITE("server.fault") {
  TEST_CASE("a batch the server cannot apply fails alone, never the batches committed with it") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device poisoned(ctx);
    Device first(ctx);
    Device honest(ctx);
    enrollAs(data, srv, poisoned, "worker-a");
    enrollAs(data, srv, first, "worker-b");
    enrollAs(data, srv, honest, "worker-b");
    (void)poisoned.hello();
    (void)first.hello();
    (void)honest.hello();
    const Uuid record = newId();
    REQUIRE(count(poisoned.push({poisoned.change(record, "x", std::string("v"))}),
                  ChangeOutcome::applied) == 1);
    sql::Database db(SqliteServerStore::databasePath(data.dir.path).string(),
                     SQLITE_OPEN_READWRITE);
    // The stored merge state of that field is damaged: merging into it throws.
    db.exec("PRAGMA busy_timeout = 10000; UPDATE records SET state = x'ff'");

    // While this connection holds the write lock, the writer is stuck on `first`'s
    // batch and the next two queue up: they go into one group commit together.
    db.exec("BEGIN IMMEDIATE");
    const Message firstBatch = PushBatch{newId(), {first.change(newId(), "x", std::int64_t{0})}};
    auto firstReply = std::async(std::launch::async, [&] { return first.request(firstBatch); });
    std::this_thread::sleep_for(200ms);
    const Message bad = PushBatch{newId(), {poisoned.change(record, "x", std::string("w"))}};
    auto badReply = std::async(std::launch::async, [&] { return poisoned.request(bad); });
    std::vector<Change> good;
    for (int i = 0; i < 20; ++i) {
      good.push_back(honest.change(newId(), "x", std::int64_t{i}));
    }
    const Message goodBatch = PushBatch{newId(), good};
    auto goodReply = std::async(std::launch::async, [&] { return honest.request(goodBatch); });
    std::this_thread::sleep_for(300ms);
    db.exec("COMMIT");

    const Message firstAck = firstReply.get();
    const Message refused = badReply.get();
    const Message goodAck = goodReply.get();
    REQUIRE(std::holds_alternative<PushAck>(firstAck));
    REQUIRE(std::holds_alternative<ErrorReply>(refused));
    CHECK(std::get<ErrorReply>(refused).code == Errc::corrupt);
    REQUIRE(std::holds_alternative<PushAck>(goodAck));
    CHECK(count(std::get<PushAck>(goodAck), ChangeOutcome::applied) == 20);
    CHECK(data.store()->lastSequence() == 22);
    CHECK(data.store()->verifyAudit().intact);
  }
}
