// One device connection, as a protocol script: handshake; then either enrollment,
// or Hello -> HelloReply followed by a loop of request -> reply
// (PushBatch -> PushAck, PullRequest -> PullReply, anything else -> Error + close).
//
// Callers name values before co_await: gcc 12 mis-destroys temporaries that live
// across one.

#include "server_impl.hpp"

#include <outpost/error.hpp>
#include <outpost/protocol/convert.hpp>
#include <outpost/protocol/session.hpp>
#include <outpost/sync/uuid.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <memory>

namespace outpost::server {

namespace {

using namespace protocol;

bool hasCapability(const Hello& hello, std::string_view capability) {
  return std::find(hello.capabilities.begin(), hello.capabilities.end(), capability) !=
         hello.capabilities.end();
}

std::string idText(const Uuid& id) {
  sync::Uuid u;
  u.bytes = id;
  return u.toString();
}

/// Keeps the connection count and the stop registry right however the session ends.
struct ConnectionScope {
  Server::Impl& server;
  std::uint64_t id;
  std::shared_ptr<SessionControl> control;
  ~ConnectionScope() {
    control->channel = nullptr;
    server.metrics.connectionsCurrent.fetch_sub(1);
    const std::lock_guard lock(server.controlsMutex);
    server.controls.erase(id);
  }
};

/// Counts a committed batch and builds its acknowledgement.
Message acknowledge(Server::Impl& server, const AdmittedSession& session, const PushBatch& batch,
                    const PushResult& result) {
  server.metrics.batches.fetch_add(1);
  server.metrics.pushCommits.store(server.writer.commits());
  server.metrics.changesApplied.fetch_add(result.applied);
  server.metrics.changesDuplicate.fetch_add(result.duplicates);
  server.metrics.changesConflict.fetch_add(result.conflicts);
  server.metrics.changesRejected.fetch_add(result.rejected);
  sync::Hlc newest{};
  for (std::size_t i = 0; i < batch.changes.size(); ++i) {
    if (result.results[i].outcome != ChangeOutcome::rejected) {
      newest = std::max(newest, batch.changes[i].hlc);
    }
  }
  server.observe(newest);
  server.context.log().debug("push: device {} batch {}: {} applied, {} duplicate, {} conflict, "
                             "{} rejected",
                             idText(session.device.deviceId), idText(batch.batchId), result.applied,
                             result.duplicates, result.conflicts, result.rejected);
  return PushAck{batch.batchId, result.results};
}

Message pull(Server::Impl& server, ServerStore& store, const AdmittedSession& session,
             const PullRequest& request) {
  const auto worker = store.findWorker(session.device.workerId);
  if (!worker) {
    return ErrorReply{Errc::out_of_scope, "this device's worker is no longer known to the server"};
  }
  server.metrics.pulls.fetch_add(1);
  return store.pull(*worker, session.device.deviceId, request.cursor, request.limit,
                    hasCapability(session.hello, kCapabilityDerivedIds));
}

/// A store failure while answering: logged, and told to the device as an Error reply
/// (the session then ends; the device retries, and nothing of a failed batch was
/// applied).
ErrorReply failed(Server::Impl& server, const AdmittedSession& session, const Error& e) {
  server.context.log().error("request from device {} failed: {}", idText(session.device.deviceId),
                             errcName(e.code()));
  return ErrorReply{e.code(), "the server could not complete the request; retry later"};
}

/// The reply to a request other than a push, when its turn comes. Store failures
/// become an Error reply (the session then ends).
asio::awaitable<Message> answer(Server::Impl& server, const AdmittedSession& session,
                                const Message& request) {
  try {
    const auto lease = server.stores.take();
    if (const auto* p = std::get_if<PullRequest>(&request)) {
      co_return pull(server, *lease, session, *p);
    }
    co_return ErrorReply{Errc::protocol, "expected pushBatch or pullRequest, got '" +
                                             std::string(messageName(request)) + "'"};
  } catch (const Error& e) {
    co_return failed(server, session, e);
  }
}

/// A request taken off the channel; replies go in the order requests came. A push
/// goes to the group commit (batch_writer.hpp) as soon as it is taken, so the writer
/// merges it while the batches before it are committed and acknowledged; it is
/// acknowledged once committed. Anything else is answered when its turn comes, after
/// every push before it committed.
struct Taken {
  Message request;
  std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now();
  std::optional<PushContext> context;          ///< a push handed to the writer
  std::shared_ptr<BatchWriter::Ticket> ticket; ///< its result, once committed
  std::optional<Message> reply;                ///< a push refused before the writer
};

/// Hands a taken push to the writer; `wake` is cancelled (on the session's
/// executor) when it is done.
void startPush(Server::Impl& server, const AdmittedSession& session, Taken& taken,
               const asio::any_io_executor& executor, asio::steady_timer& wake) {
  const auto& batch = std::get<PushBatch>(taken.request);
  std::optional<Worker> worker;
  try {
    const auto lease = server.stores.take();
    worker = lease->findWorker(session.device.workerId);
  } catch (const Error& e) {
    taken.reply = failed(server, session, e);
    return;
  }
  if (!worker) {
    taken.reply =
        ErrorReply{Errc::out_of_scope, "this device's worker is no longer known to the server"};
    return;
  }
  taken.context.emplace(PushContext{session.device, *worker, server.clock.unixMillis(),
                                    server.options.maxSkew, batch.batchId});
  taken.ticket =
      server.writer.start(*taken.context, batch.changes, executor, [&wake] { wake.cancel(); });
}

/// The reply to a push whose batch the writer is done with.
Message pushReply(Server::Impl& server, const AdmittedSession& session, Taken& taken) {
  if (taken.reply) {
    return *taken.reply;
  }
  try {
    if (taken.ticket->error) {
      std::rethrow_exception(taken.ticket->error);
    }
  } catch (const Error& e) {
    return failed(server, session, e);
  }
  // The results carry each change id as the device sent it.
  return acknowledge(server, session, std::get<PushBatch>(taken.request), taken.ticket->result);
}

/// Waits until `wake` is cancelled (a read ended or a batch is done). Everything that
/// cancels it runs on the session's executor, as does the caller, which checks what it
/// waits for just before: no wake-up is lost.
asio::awaitable<void> nextEvent(asio::steady_timer& wake) {
  boost::system::error_code ignored;
  co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

asio::awaitable<void> enroll(Server::Impl& server, SecureChannel& channel) {
  const Hlc serverTime = server.now().value;
  const auto lease = server.stores.take();
  const auto device =
      co_await serveEnrollment(channel, lease->enrollmentRegistry(), serverTime, Clock::now());
  if (device) {
    server.metrics.enrollments.fetch_add(1);
    try {
      const std::lock_guard lock(server.writeMutex);
      lease->recordAudit(AuditKind::deviceEnroll, device->workerId, device->deviceId,
                         nlohmann::json{{"device", idText(device->deviceId)},
                                        {"worker", device->workerId},
                                        {"team", device->teamId}}
                             .dump());
    } catch (const Error& e) {
      // The device is enrolled (the registry committed it); say loudly that its
      // audit entry is missing rather than fail an enrollment that took place.
      server.context.log().error("device {} enrolled but its audit entry failed: {}",
                                 idText(device->deviceId), errcName(e.code()));
    }
    server.context.log().info("enrolled device {} for worker {}", idText(device->deviceId),
                              device->workerId);
  } else {
    server.context.log().info("an enrollment attempt was refused");
  }
  channel.close();
}

/// The next request, read while the current one is answered: a device that sends
/// its next batch before the acknowledgement of the previous one (pipelining, see
/// docs/protocol.md) has it received, decrypted and decoded while the previous one
/// is merged. One read at a time, so a session holds at most two requests. Lives on
/// the session's strand, as does everything that touches it.
struct ReadAhead {
  explicit ReadAhead(const asio::any_io_executor& executor) : wake(executor) {
    wake.expires_at(asio::steady_timer::time_point::max());
  }
  asio::steady_timer wake;                   ///< cancelled when the read ends
  asio::steady_timer* sessionWake = nullptr; ///< cancelled too (it outlives the read)
  bool done = false;
  std::optional<Message> message;
  std::exception_ptr error;
};

/// Starts reading the next request into a new ReadAhead.
std::shared_ptr<ReadAhead> readAhead(SecureChannel& channel, const asio::any_io_executor& executor,
                                     asio::steady_timer& sessionWake) {
  auto ahead = std::make_shared<ReadAhead>(executor);
  ahead->sessionWake = &sessionWake;
  asio::co_spawn(
      executor,
      [&channel, ahead]() -> asio::awaitable<void> {
        try {
          Message m = co_await channel.receiveMessage();
          ahead->message = std::move(m);
        } catch (...) {
          ahead->error = std::current_exception();
        }
        ahead->done = true;
        ahead->wake.cancel();
        ahead->sessionWake->cancel();
      },
      asio::detached);
  return ahead;
}

/// Waits until the read has ended (the channel must outlive the read).
asio::awaitable<void> settle(ReadAhead& ahead) {
  while (!ahead.done) {
    boost::system::error_code ignored;
    co_await ahead.wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

/// Hello -> admitted, with a store connection borrowed only for the look-up.
asio::awaitable<AdmittedSession> admit(Server::Impl& server, SecureChannel& channel) {
  const auto lease = server.stores.take();
  co_return co_await admitSession(channel, lease->deviceRegistry());
}

} // namespace

asio::awaitable<void> runSession(Server::Impl& server, tcp::socket socket,
                                 std::shared_ptr<SessionControl> control) {
  std::uint64_t id = 0;
  {
    const std::lock_guard lock(server.controlsMutex);
    id = server.nextControl++;
    server.controls.emplace(id, control);
  }
  ConnectionScope scope{server, id, control};
  try {
    SecureChannel channel = co_await SecureChannel::accept(
        server.context, std::move(socket), server.keys.staticKey, server.options.limits);
    control->channel = &channel;
    if (control->stopRequested) {
      channel.close();
      co_return;
    }
    if (channel.purpose() == Purpose::enrollment) {
      co_await enroll(server, channel);
      co_return;
    }

    const AdmittedSession session = co_await admit(server, channel);
    server.metrics.sessions.fetch_add(1);
    DeviceScope deviceScope =
        server.stores.take()->pendingCommands(session.device, session.hello.templates);
    const std::size_t purges = deviceScope.commands.size();
    HelloReply helloReply{session.version, server.now().value, std::move(deviceScope.commands)};
    helloReply.teams = deviceScope.teams;
    const bool zstd = hasCapability(session.hello, kCapabilityZstd);
    const bool recordWrites = hasCapability(session.hello, kCapabilityRecordWrites);
    const bool compactAcks = hasCapability(session.hello, kCapabilityCompactAcks);
    for (const std::string_view both : {kCapabilityZstd, kCapabilityDerivedIds,
                                        kCapabilityRecordWrites, kCapabilityCompactAcks}) {
      if (hasCapability(session.hello, both)) {
        helloReply.capabilities.emplace_back(both);
      }
    }
    const Message hello = std::move(helloReply);
    co_await channel.sendMessage(hello);
    if (zstd) {
      channel.compressMessages();
    }
    if (recordWrites) {
      channel.groupWrites();
    }
    if (compactAcks) {
      channel.compactAcks();
    }
    if (!deviceScope.recorded) {
      const auto lease = server.stores.take();
      const std::lock_guard lock(server.writeMutex);
      lease->acknowledgeScope(session.device, deviceScope.teams);
    }
    if (purges > 0) {
      server.context.log().info("sent {} command(s) to device {}", purges,
                                idText(session.device.deviceId));
    }

    // Request -> reply, in order; the next request is read while one is answered,
    // and pushes are handed to the writer as they come (up to kPushesAhead, while
    // only pushes are ahead of them). Whatever ends the loop, the read in progress
    // ends (the channel closed) and the writer is done with every batch handed to it
    // before the channel and the batches go.
    // As many as a device sends before their acknowledgements (SyncClient's
    // kPushesInFlight). Per connection that holds at most this many decoded batches
    // (each at most one 16 MiB message) and the one being read.
    constexpr std::size_t kPushesAhead = 8;
    const auto executor = co_await asio::this_coro::executor;
    asio::steady_timer wake(executor, asio::steady_timer::time_point::max());
    std::shared_ptr<ReadAhead> ahead = readAhead(channel, executor, wake);
    std::deque<std::unique_ptr<Taken>> taken; // in order; stable addresses for the writer
    const auto onlyPushes = [&taken] {
      return std::all_of(taken.begin(), taken.end(), [](const auto& t) {
        return std::holds_alternative<PushBatch>(t->request);
      });
    };
    std::exception_ptr failure;
    try {
      for (;;) {
        control->busy = !taken.empty();
        if (control->stopRequested && taken.empty()) {
          break;
        }
        if (ahead->done && !ahead->error && !control->stopRequested) {
          const bool push = std::holds_alternative<PushBatch>(*ahead->message);
          if (taken.empty() || (push && taken.size() < kPushesAhead && onlyPushes())) {
            control->busy = true;
            // Queued before the writer sees it: the batch lives as long as the session
            // waits for its ticket, whatever ends the loop.
            taken.push_back(std::make_unique<Taken>());
            taken.back()->request = std::move(*ahead->message);
            ahead = readAhead(channel, executor, wake);
            if (push) {
              startPush(server, session, *taken.back(), executor, wake);
            }
            continue;
          }
        }
        if (taken.empty()) {
          if (ahead->done && ahead->error) {
            std::rethrow_exception(ahead->error);
          }
          co_await nextEvent(wake);
          continue;
        }
        Taken& front = *taken.front();
        if (front.ticket && !front.ticket->done) {
          co_await nextEvent(wake);
          continue;
        }
        Message reply;
        if (std::holds_alternative<PushBatch>(front.request)) {
          reply = pushReply(server, session, front);
        } else {
          reply = co_await answer(server, session, front.request);
        }
        co_await channel.sendMessage(reply);
        server.metrics.observeLatency(std::chrono::steady_clock::now() - front.at);
        taken.pop_front();
        if (std::holds_alternative<ErrorReply>(reply)) {
          break;
        }
      }
    } catch (...) {
      failure = std::current_exception();
    }
    channel.close();
    co_await settle(*ahead);
    while (std::any_of(taken.begin(), taken.end(),
                       [](const auto& t) { return t->ticket && !t->ticket->done; })) {
      co_await nextEvent(wake);
    }
    if (failure) {
      std::rethrow_exception(failure);
    }
  } catch (const Error& e) {
    // A peer that goes away between requests is an ordinary end; anything else is
    // counted and logged by code (never with record contents).
    if (e.code() != Errc::network) {
      server.metrics.errors.fetch_add(1);
      server.context.log().info("session ended: {}", errcName(e.code()));
    }
  } catch (const std::exception& e) {
    server.metrics.errors.fetch_add(1);
    server.context.log().error("session failed: {}", e.what());
  }
}

} // namespace outpost::server
