// outpost-server end to end, in-process on 127.0.0.1: enrollment, push/pull, scope,
// conflicts, revocation, hostile clients, interrupted pushes, restart, stop.

#include "harness.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <set>

using namespace outpost;
using namespace outpost::server;
using namespace outpost::server::testing;
using namespace outpost::protocol;

namespace {

std::size_t count(const PushAck& ack, ChangeOutcome outcome) {
  return static_cast<std::size_t>(std::count_if(
      ack.results.begin(), ack.results.end(), [&](const auto& r) { return r.outcome == outcome; }));
}

/// GET `target` on the metrics port; returns {status, body}.
std::pair<int, std::string> httpGet(std::uint16_t port, const std::string& target) {
  namespace http = boost::beast::http;
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(socket, req);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  boost::system::error_code ec;
  http::read(socket, buffer, res, ec);
  return {static_cast<int>(res.result_int()), res.body()};
}

} // namespace

TEST_SUITE("server.sync") {
  TEST_CASE("a device enrolls with an issued code, says hello and gets the server's time") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device device(ctx);
    enrollAs(data, srv, device, "worker-a");
    CHECK(device.workerId == "worker-a");
    const HelloReply hello = device.hello();
    CHECK(hello.version == kProtocolVersionMax);
    const std::uint64_t serverMs = hello.serverHlc >> 16;
    CHECK(serverMs + 60000 >= (hlcNow() >> 16));
    const auto devices = data.store()->devices();
    REQUIRE(devices.size() == 1);
    CHECK(devices[0].record.teamId == "north");
  }

  TEST_CASE("a pushed batch is acknowledged after commit and another device of the team pulls it") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    Device b(ctx);
    enrollAs(data, srv, a, "worker-a");
    enrollAs(data, srv, b, "worker-b");
    (void)a.hello();
    (void)b.hello();
    const Uuid record = newId();
    std::vector<Change> changes = {a.change(record, "child.name", std::string("Sam")),
                                   a.change(record, "risk.level", std::int64_t{3})};
    changes[1].resolves = {{hlcNow(), a.deviceId}};
    const PushAck ack = a.push(changes);
    REQUIRE(ack.results.size() == 2);
    CHECK(count(ack, ChangeOutcome::applied) == 2);
    // The ack came after the commit: another connection sees it at once.
    CHECK(data.store()->lastSequence() == 2);

    const PullReply pulled = b.pull(0);
    REQUIRE(pulled.changes.size() == 2);
    CHECK(pulled.changes[0] == changes[0]);
    CHECK(pulled.changes[1] == changes[1]); // baseDeviceId and resolves survive the trip
    CHECK(pulled.nextCursor == 2);
    CHECK_FALSE(pulled.more);
    CHECK(b.pull(pulled.nextCursor).changes.empty());

    SUBCASE("pulls are bounded by the limit and resume at the cursor") {
      const PullReply first = b.pull(0, 1);
      CHECK(first.changes.size() == 1);
      CHECK(first.more);
      const PullReply second = b.pull(first.nextCursor, 1);
      CHECK(second.changes.size() == 1);
      CHECK(second.changes[0] == changes[1]);
      CHECK_FALSE(second.more);
    }
  }

  TEST_CASE("devices pushing at the same time all commit, each change once, in one order") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    constexpr int kDevices = 4;
    constexpr int kBatches = 8;
    constexpr int kChanges = 25;
    std::vector<std::unique_ptr<Device>> devices;
    for (int i = 0; i < kDevices; ++i) {
      devices.push_back(std::make_unique<Device>(ctx));
      enrollAs(data, srv, *devices.back(), i % 2 == 0 ? "worker-a" : "worker-b");
      (void)devices.back()->hello();
    }
    std::vector<std::size_t> applied(kDevices, 0);
    std::vector<std::thread> threads;
    for (int i = 0; i < kDevices; ++i) {
      threads.emplace_back([&, i] {
        Device& d = *devices[static_cast<std::size_t>(i)];
        for (int b = 0; b < kBatches; ++b) {
          std::vector<Change> batch;
          for (int c = 0; c < kChanges; ++c) {
            batch.push_back(d.change(newId(), "x", std::int64_t{c}));
          }
          const PushAck ack = d.push(batch);
          applied[static_cast<std::size_t>(i)] += count(ack, ChangeOutcome::applied);
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    for (const std::size_t n : applied) {
      CHECK(n == kBatches * kChanges);
    }
    std::set<sync::Uuid> seen;
    std::uint64_t cursor = 0;
    for (int i = 0; i < 10; ++i) {
      const PullReply page = devices[0]->pull(cursor, 300);
      for (const auto& ch : page.changes) {
        seen.insert(ch.changeId);
      }
      cursor = page.nextCursor;
      if (!page.more) {
        break;
      }
    }
    // Everyone else's changes, once each (a device is not sent its own back).
    CHECK(seen.size() == (kDevices - 1) * kBatches * kChanges);
    CHECK(cursor == kDevices * kBatches * kChanges);
  }

  TEST_CASE("a batch pushed twice is reported as duplicates and applied once") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    (void)a.hello();
    const Uuid record = newId();
    const std::vector<Change> changes = {a.change(record, "x", std::string("1")),
                                         a.change(record, "y", std::string("2"))};
    CHECK(count(a.push(changes), ChangeOutcome::applied) == 2);
    const PushAck again = a.push(changes);
    CHECK(count(again, ChangeOutcome::duplicate) == 2);
    CHECK(data.store()->lastSequence() == 2);
    CHECK(srv.server->metrics().changesDuplicate.load() == 2);
  }

  TEST_CASE("a write repeated within one batch, for a record new to the server, is applied once") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    (void)a.hello();
    const Uuid record = newId();
    const Change x = a.change(record, "x", std::string("1"));
    Change y = a.change(record, "y", std::string("2"));
    y.hlc = x.hlc; // one write: x and y
    const Uuid other = newId();
    const Change z = a.change(other, "z", std::string("3"));
    // The write is looked up only once its record exists: here, after its first copy.
    const PushAck ack = a.push({x, y, z, x, y});
    REQUIRE(ack.results.size() == 5);
    CHECK(ack.results[0].outcome == ChangeOutcome::applied);
    CHECK(ack.results[1].outcome == ChangeOutcome::applied);
    CHECK(ack.results[2].outcome == ChangeOutcome::applied);
    CHECK(ack.results[3].outcome == ChangeOutcome::duplicate);
    CHECK(ack.results[4].outcome == ChangeOutcome::duplicate);
    CHECK(data.store()->lastSequence() == 2); // one stored write per record
  }

  TEST_CASE("concurrent edits from two devices are a conflict that keeps both values") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    Device b(ctx);
    enrollAs(data, srv, a, "worker-a");
    enrollAs(data, srv, b, "worker-b");
    (void)a.hello();
    (void)b.hello();
    const Uuid record = newId();
    const Change first = a.change(record, "risk.level", std::string("low"));
    CHECK(count(a.push({first}), ChangeOutcome::applied) == 1);
    // Both edit on top of `first`, offline.
    const Change fromA =
        a.change(record, "risk.level", std::string("medium"), first.hlc.value, a.deviceId);
    const Change fromB =
        b.change(record, "risk.level", std::string("high"), first.hlc.value, a.deviceId);
    CHECK(count(a.push({fromA}), ChangeOutcome::applied) == 1);
    const PushAck ack = b.push({fromB});
    REQUIRE(ack.results.size() == 1);
    CHECK(ack.results[0].outcome == ChangeOutcome::conflict);
    CHECK(ack.results[0].reason == Errc::conflict);

    auto store = data.store();
    const auto conflicts = store->conflicts();
    REQUIRE(conflicts.size() == 1);
    CHECK(conflicts[0].recordId.bytes == record);
    CHECK(conflicts[0].fields == std::vector<std::string>{"risk.level"});
    const auto view = store->record(conflicts[0].recordId);
    REQUIRE(view.has_value());
    const auto& field = view->state.fields.at("risk.level");
    REQUIRE(field.current.has_value());
    REQUIRE(field.conflicts.size() == 1);
    std::set<std::string> values = {std::get<std::string>(field.current->value),
                                    std::get<std::string>(field.conflicts[0].value)};
    CHECK(values == std::set<std::string>{"medium", "high"});
    CHECK(srv.server->metrics().changesConflict.load() == 1);
  }

  TEST_CASE("a push outside the worker's scope is rejected per change and nothing is applied") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    Device c(ctx);
    enrollAs(data, srv, a, "worker-a");
    enrollAs(data, srv, c, "worker-c");
    (void)a.hello();
    (void)c.hello();
    const Uuid northRecord = newId();
    CHECK(count(a.push({a.change(northRecord, "x", std::string("north"))}),
                ChangeOutcome::applied) == 1);
    const std::uint64_t before = data.store()->lastSequence();
    const Uuid southRecord = newId();
    const PushAck ack = c.push({c.change(northRecord, "x", std::string("intruder")),
                                c.change(southRecord, "x", std::string("fine"))});
    REQUIRE(ack.results.size() == 2);
    CHECK(ack.results[0].outcome == ChangeOutcome::rejected);
    CHECK(ack.results[0].reason == Errc::out_of_scope);
    CHECK(ack.results[1].outcome == ChangeOutcome::applied);
    CHECK(data.store()->lastSequence() == before + 1);
    const auto view = data.store()->record(sync::Uuid{northRecord});
    REQUIRE(view.has_value());
    CHECK(std::get<std::string>(view->state.fields.at("x").current->value) == "north");
  }

  TEST_CASE("a device that names compact-acks gets the same results in a fraction of the bytes") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    Device c(ctx);
    enrollAs(data, srv, a, "worker-a");
    enrollAs(data, srv, c, "worker-c");
    (void)a.hello();
    const Uuid northRecord = newId();
    REQUIRE(count(a.push({a.change(northRecord, "x", std::string("north"))}),
                  ChangeOutcome::applied) == 1);
    // The same kind of batch, ids left out (derived), one change out of scope: once
    // with the full layout and once compact.
    const auto batch = [&](const Uuid& record) {
      std::vector<protocol::Change> changes;
      changes.push_back(c.change(northRecord, "x", std::string("intruder")));
      for (int i = 0; i < 400; ++i) {
        changes.push_back(c.change(record, "f" + std::to_string(i), std::int64_t{i}));
        changes.back().hlc = changes[1].hlc; // one write
      }
      for (auto& change : changes) {
        change.changeId = {};
      }
      return changes;
    };
    std::vector<PushAck> acks;
    std::vector<std::uint64_t> ackBytes;
    for (const bool compact : {false, true}) {
      CAPTURE(compact);
      std::vector<std::string> caps = {std::string(protocol::kCapabilityDerivedIds)};
      if (compact) {
        caps.emplace_back(protocol::kCapabilityCompactAcks);
      }
      const protocol::HelloReply reply = c.hello(caps);
      CHECK((std::find(reply.capabilities.begin(), reply.capabilities.end(),
                       protocol::kCapabilityCompactAcks) != reply.capabilities.end()) == compact);
      CHECK(reply.capabilities.size() == caps.size());
      const std::uint64_t before = c.channel->bytesReceived();
      acks.push_back(c.push(batch(newId())));
      ackBytes.push_back(c.channel->bytesReceived() - before);
    }
    for (const PushAck& ack : acks) {
      REQUIRE(ack.results.size() == 401);
      CHECK(ack.results[0] ==
            protocol::ChangeResult{{}, ChangeOutcome::rejected, Errc::out_of_scope});
      CHECK(count(ack, ChangeOutcome::applied) == 400);
      CHECK(ack.results[400] == protocol::ChangeResult{});
    }
    CHECK(ackBytes[1] * 10 < ackBytes[0]);
  }

  TEST_CASE("a pull reply never ends inside one write") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    Device b(ctx);
    enrollAs(data, srv, a, "worker-a");
    enrollAs(data, srv, b, "worker-b");
    (void)a.hello();
    (void)b.hello();
    const Uuid record = newId();
    std::vector<Change> write;
    for (const char* field : {"x", "y", "z"}) {
      write.push_back(a.change(record, field, std::string(field)));
      write.back().hlc = write.front().hlc; // one write: one time for all its fields
    }
    write.push_back(a.change(newId(), "x", std::string("another record")));
    (void)a.push(write);
    const PullReply first = b.pull(0, 1);
    CHECK(first.changes.size() == 3); // the whole write, past the limit of 1
    CHECK(first.more);
    const PullReply second = b.pull(first.nextCursor, 1);
    CHECK(second.changes.size() == 1);
    CHECK_FALSE(second.more);
  }

  TEST_CASE("a worker never pulls another team's records") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    Device b(ctx);
    Device c(ctx);
    enrollAs(data, srv, a, "worker-a");
    enrollAs(data, srv, b, "worker-b");
    enrollAs(data, srv, c, "worker-c");
    (void)a.hello();
    (void)b.hello();
    (void)c.hello();
    const Uuid north = newId();
    const Uuid south = newId();
    (void)a.push(
        {a.change(north, "x", std::string("n1")), a.change(north, "y", std::string("n2"))});
    (void)c.push({c.change(south, "x", std::string("s1"))});
    const PullReply forCarol = c.pull(0);
    CHECK(forCarol.changes.empty()); // north's are not hers; her own she has
    CHECK(forCarol.nextCursor == 3); // past the changes she may not see
    const PullReply forBob = b.pull(0);
    REQUIRE(forBob.changes.size() == 2);
    CHECK(forBob.changes[0].recordId == north);
    CHECK(forBob.nextCursor == 3);
    const PullReply forAlice = a.pull(0);
    CHECK(forAlice.changes.empty()); // her own changes are not sent back
    CHECK(forAlice.nextCursor == 3);
    for (const auto& ch : forAlice.changes) {
      CHECK(ch.recordId == north);
    }
  }

  TEST_CASE("records of a team the worker left are purged from the device at the next hello") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    CHECK(a.hello().pendingCommands.empty());
    const Uuid record = newId();
    (void)a.push({a.change(record, "x", std::string("north only"))});
    CHECK(a.hello().pendingCommands.empty()); // nothing left the scope

    data.store()->setWorkerTeams("worker-a", {"south"});
    const HelloReply reply = a.hello();
    REQUIRE(reply.pendingCommands.size() == 1);
    const auto* purge = std::get_if<PurgeRecords>(&reply.pendingCommands[0].action);
    REQUIRE(purge != nullptr);
    CHECK(purge->recordIds == std::vector<Uuid>{record});
    CHECK(a.pull(0).changes.empty());
    CHECK(a.hello().pendingCommands.empty()); // sent once
    CHECK(codeOf([&] { data.store()->setWorkerTeams("worker-a", {"nowhere"}); }) ==
          Errc::not_found);
    CHECK(data.store()->findWorker("worker-a")->teams == std::vector<std::string>{"south"});
  }

  TEST_CASE("changes stamped more than two minutes ahead are rejected with clock_skew") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    (void)a.hello();
    Change ahead = a.change(newId(), "x", std::string("later"));
    ahead.hlc = sync::Hlc{hlcNow() + (std::uint64_t{10 * 60 * 1000} << 16)};
    const PushAck ack = a.push({ahead});
    REQUIRE(ack.results.size() == 1);
    CHECK(ack.results[0].outcome == ChangeOutcome::rejected);
    CHECK(ack.results[0].reason == Errc::clock_skew);
    CHECK(data.store()->lastSequence() == 0);
  }

  TEST_CASE("a device cannot push changes in another device's name") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    (void)a.hello();
    Change forged = a.change(newId(), "x", std::string("forged"));
    forged.deviceId = newId();
    const PushAck ack = a.push({forged});
    CHECK(ack.results.at(0).outcome == ChangeOutcome::rejected);
    CHECK(ack.results.at(0).reason == Errc::auth_failed);
  }

  TEST_CASE("a revoked device is refused with revoked") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    (void)a.hello();
    CHECK(data.store()->deviceRegistry().revoke(a.deviceId));
    CHECK(codeOf([&] { (void)a.hello(); }) == Errc::revoked);
  }

  TEST_CASE("a message that is neither push nor pull gets an error and the session ends") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    (void)a.hello();
    const Message stray = Hello{1, 1, a.deviceId, "worker-a", "test", hlcNow(), {}};
    const Message reply = a.request(stray);
    REQUIRE(std::holds_alternative<ErrorReply>(reply));
    CHECK(std::get<ErrorReply>(reply).code == Errc::protocol);
  }

  TEST_CASE("garbage, oversize messages and a stalling client do not hurt another client") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path, std::chrono::milliseconds(1500));
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");

    asio::io_context raw;
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), srv.port());
    tcp::socket garbage(raw);
    garbage.connect(endpoint);
    std::vector<std::uint8_t> junk(4096);
    randombytes_buf(junk.data(), junk.size());
    asio::write(garbage, asio::buffer(junk));

    tcp::socket oversize(raw);
    oversize.connect(endpoint);
    const auto preamble = preambleFor(Purpose::session);
    asio::write(oversize, asio::buffer(preamble));
    const std::array<std::uint8_t, 2> hugeFrame = {0xff, 0xff};
    asio::write(oversize, asio::buffer(hugeFrame)); // announces 64 KiB, sends nothing more

    tcp::socket stalling(raw);
    stalling.connect(endpoint); // says nothing at all

    // Meanwhile an honest device syncs as usual.
    (void)a.hello();
    const Uuid record = newId();
    CHECK(count(a.push({a.change(record, "x", std::string("ok"))}), ChangeOutcome::applied) == 1);
    CHECK(a.pull(0).nextCursor == 1);

    // The hostile connections are closed by the server (timeouts and protocol errors).
    auto closedByServer = [](tcp::socket& s) {
      s.non_blocking(false);
      std::array<std::uint8_t, 256> buf{};
      boost::system::error_code ec;
      for (int i = 0; i < 100; ++i) {
        (void)s.read_some(asio::buffer(buf), ec);
        if (ec) {
          return true;
        }
      }
      return false;
    };
    CHECK(closedByServer(garbage));
    CHECK(closedByServer(oversize));
    CHECK(closedByServer(stalling));
    // Counted just after the server closed them.
    for (int i = 0; i < 200 && srv.server->metrics().errors.load() < 3; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    CHECK(srv.server->metrics().errors.load() >= 3);
  }

  TEST_CASE("requests sent before the previous reply are answered in order, and bytes that "
            "do not decode end the session only after the replies before them") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    (void)a.hello();
    const protocol::Uuid record = newId();
    const protocol::Message first =
        protocol::PushBatch{newId(), {a.change(record, "x", std::string("1"))}};
    const protocol::Message second =
        protocol::PushBatch{newId(), {a.change(record, "y", std::string("2"))}};
    const protocol::Message pull = protocol::PullRequest{0, 100};
    const std::vector<std::uint8_t> garbage(64, 0xAB);
    std::vector<protocol::Message> replies;
    bool ended = false;
    (void)runIn(a.io, [&]() -> asio::awaitable<bool> {
      // All four go before any reply is read.
      co_await a.channel->sendMessage(first);
      co_await a.channel->sendMessage(second);
      co_await a.channel->sendMessage(pull);
      co_await a.channel->send(garbage);
      for (int i = 0; i < 4; ++i) {
        try {
          replies.push_back(co_await a.channel->receiveMessage());
        } catch (const Error&) {
          ended = true;
          break;
        }
      }
      co_return true;
    });
    REQUIRE(replies.size() >= 3);
    CHECK(std::get<protocol::PushAck>(replies[0]).batchId ==
          std::get<protocol::PushBatch>(first).batchId);
    CHECK(std::get<protocol::PushAck>(replies[1]).batchId ==
          std::get<protocol::PushBatch>(second).batchId);
    // Its own changes are not sent back to a device: the pull sees both batches' seqs.
    CHECK(std::get<protocol::PullReply>(replies[2]).nextCursor == 2);
    // The garbage gets an error reply or the connection closed, nothing else.
    CHECK((ended || std::holds_alternative<protocol::ErrorReply>(replies.back())));
    CHECK(data.store()->record(sync::Uuid{record}).has_value());
  }

  TEST_CASE("batches sent back to back go to the writer before the previous ones are "
            "acknowledged, share commits, and are acknowledged in order") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    (void)a.hello();
    constexpr int kBatches = 24;
    std::vector<protocol::Message> batches;
    for (int i = 0; i < kBatches; ++i) {
      std::vector<protocol::Change> changes;
      const protocol::Uuid record = newId();
      for (int f = 0; f < 50; ++f) {
        changes.push_back(a.change(record, "f" + std::to_string(f), std::int64_t{f}));
        changes.back().hlc = changes.front().hlc; // one write
      }
      batches.emplace_back(protocol::PushBatch{newId(), std::move(changes)});
    }
    const protocol::Message pull = protocol::PullRequest{0, 100};
    std::vector<protocol::Message> replies;
    (void)runIn(a.io, [&]() -> asio::awaitable<bool> {
      for (const auto& b : batches) {
        co_await a.channel->sendMessage(b);
      }
      co_await a.channel->sendMessage(pull);
      for (int i = 0; i <= kBatches; ++i) {
        replies.push_back(co_await a.channel->receiveMessage());
      }
      co_return true;
    });
    REQUIRE(replies.size() == kBatches + 1);
    for (int i = 0; i < kBatches; ++i) {
      CAPTURE(i);
      const auto& ack = std::get<protocol::PushAck>(replies[static_cast<std::size_t>(i)]);
      CHECK(ack.batchId ==
            std::get<protocol::PushBatch>(batches[static_cast<std::size_t>(i)]).batchId);
      CHECK(count(ack, ChangeOutcome::applied) == 50);
    }
    // The pull came after every batch: it sees all of them (the device's own
    // writes are not sent back, so only the cursor moves).
    CHECK(std::get<protocol::PullReply>(replies.back()).nextCursor == kBatches);
    // One session's batches shared transactions: a batch waiting behind another in
    // the writer joins the next group. Answered one at a time, each batch would be
    // its own commit.
    CHECK(srv.server->metrics().batches.load() == kBatches);
    CHECK(srv.server->metrics().pushCommits.load() < kBatches);
  }

  TEST_CASE("a push cut off before its ack is applied once when pushed again") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    (void)a.hello();
    const Uuid record = newId();
    const std::vector<Change> changes = {a.change(record, "x", std::string("1")),
                                         a.change(record, "y", std::string("2")),
                                         a.change(record, "z", std::string("3"))};
    const Message batch = PushBatch{newId(), changes};
    a.sendAndCut(batch);
    // The server had the whole batch: it commits even though the ack cannot be sent.
    for (int i = 0; i < 200 && data.store()->lastSequence() < 3; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    (void)a.hello();
    const PushAck ack = a.push(changes);
    CHECK(count(ack, ChangeOutcome::duplicate) + count(ack, ChangeOutcome::applied) == 3);
    CHECK(data.store()->lastSequence() == 3);
    CHECK(a.pull(0).nextCursor == 3);
  }

  TEST_CASE("a restarted server keeps devices, records and the change log") {
    Context ctx;
    DataFolder data(ctx);
    Device a(ctx);
    const Uuid record = newId();
    {
      RunningServer srv(ctx, data.dir.path);
      enrollAs(data, srv, a, "worker-a");
      (void)a.hello();
      (void)a.push({a.change(record, "x", std::string("kept"))});
      a.channel.reset();
      CHECK(srv.stop());
    }
    RunningServer again(ctx, data.dir.path);
    a.port = again.port();
    (void)a.hello();
    CHECK(a.pull(0).nextCursor == 1);
    sync::Uuid id;
    id.bytes = record;
    CHECK(data.store()->record(id).has_value());
  }

  TEST_CASE("pushed pages reach the database file while the server runs: its own thread "
            "checkpoints the WAL, not the push, and truncates it once idle") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    (void)a.hello();
    const auto file = server::SqliteServerStore::databasePath(data.dir.path);
    const auto before = std::filesystem::file_size(file);
    std::vector<protocol::Change> changes;
    for (int i = 0; i < 200; ++i) {
      changes.push_back(
          a.change(newId(), "note", std::string(2000, static_cast<char>('a' + i % 26))));
    }
    (void)a.push(changes);
    const auto metricsPort = srv.server->metricsPort();
    REQUIRE(metricsPort.has_value());
    // 200 values of 2000 bytes: at least 400 KB more in the file itself, not only in
    // the WAL. (A checkpoint counted before the push's pages were copied, e.g. of the
    // enrollment, does not end the wait.)
    bool checkpointed = false;
    bool grown = false;
    for (int i = 0; i < 300 && !(checkpointed && grown); ++i) {
      const std::string body = httpGet(*metricsPort, "/metrics").second;
      checkpointed = body.find("outpost_wal_checkpoints_total 0") == std::string::npos &&
                     body.find("outpost_wal_checkpoints_total") != std::string::npos;
      grown = std::filesystem::file_size(file) >= before + 400'000;
      if (!(checkpointed && grown)) {
        std::this_thread::sleep_for(10ms);
      }
    }
    CHECK(checkpointed);
    CHECK(grown);
    // Idle now: the WAL's disk space is given back.
    const std::filesystem::path wal = file.string() + "-wal";
    bool truncated = false;
    for (int i = 0; i < 300 && !truncated; ++i) {
      truncated = std::filesystem::exists(wal) && std::filesystem::file_size(wal) == 0;
      if (!truncated) {
        std::this_thread::sleep_for(10ms);
      }
    }
    CHECK(truncated);
  }

  TEST_CASE("metrics and health answer over HTTP, and stop() returns with an idle session open") {
    Context ctx;
    DataFolder data(ctx);
    RunningServer srv(ctx, data.dir.path);
    Device a(ctx);
    enrollAs(data, srv, a, "worker-a");
    (void)a.hello();
    (void)a.push({a.change(newId(), "x", std::string("v"))});
    const auto metricsPort = srv.server->metricsPort();
    REQUIRE(metricsPort.has_value());
    const auto [healthStatus, healthBody] = httpGet(*metricsPort, "/health");
    CHECK(healthStatus == 200);
    CHECK(healthBody == "ok");
    // The latency is observed once the ack is written, just after the device has it.
    // The enrollment connection is counted out as its coroutine ends.
    for (int i = 0; i < 200 && (srv.server->metrics().latencyCount.load() < 1 ||
                                srv.server->metrics().connectionsCurrent.load() != 1);
         ++i) {
      std::this_thread::sleep_for(10ms);
    }
    const auto [status, body] = httpGet(*metricsPort, "/metrics");
    CHECK(status == 200);
    CHECK(body.find("outpost_push_batches_total 1") != std::string::npos);
    CHECK(body.find("outpost_changes_total{outcome=\"applied\"} 1") != std::string::npos);
    CHECK(body.find("outpost_request_seconds_count 1") != std::string::npos);
    CHECK(body.find("outpost_connections_current 1") != std::string::npos);
    CHECK(httpGet(*metricsPort, "/nope").first == 404);
    // `a` stays connected and idle: stop must not wait for it.
    CHECK(srv.stop());
  }
}
