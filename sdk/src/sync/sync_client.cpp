// The sync client: one sync as a protocol script over a secure channel (connect,
// Hello, commands, push, pull), and background mode around it.
//
// Values used across a co_await are named first: gcc 12 mis-destroys temporaries
// that live across one.

#include "device_merge.hpp"
#include "pull_merger.hpp"

#include <outpost/device_identity.hpp>
#include <outpost/error.hpp>
#include <outpost/platform/clock.hpp>
#include <outpost/protocol/convert.hpp>
#include <outpost/protocol/session.hpp>
#include <outpost/sync_client.hpp>
#include <outpost/template.hpp>

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

namespace outpost {

namespace {

using tcp = asio::ip::tcp;

sync::Uuid uuidOf(const protocol::Uuid& raw) {
  sync::Uuid u;
  u.bytes = raw;
  return u;
}

void createTemplateTable(sql::Database& db) {
  db.exec("CREATE TABLE IF NOT EXISTS installed_templates(seq INTEGER PRIMARY KEY, "
          "document TEXT NOT NULL UNIQUE)");
}

/// The store_meta key of the teams the last complete pull covered ("\n"-joined).
constexpr std::string_view kTeamsKey = "teams";

std::string joinTeams(std::vector<std::string> teams) {
  std::sort(teams.begin(), teams.end());
  std::string out;
  for (const auto& t : teams) {
    out += (out.empty() ? "" : "\n") + t;
  }
  return out;
}

/// True when `now` holds a team that `stored` (joinTeams() of an earlier pull) did not.
bool gainsTeam(std::string_view stored, const std::vector<std::string>& now) {
  std::set<std::string, std::less<>> had;
  while (!stored.empty()) {
    const auto end = stored.find('\n');
    had.emplace(stored.substr(0, end));
    stored = end == std::string_view::npos ? std::string_view() : stored.substr(end + 1);
  }
  return std::any_of(now.begin(), now.end(),
                     [&](const std::string& team) { return !had.contains(team); });
}

/// "id@version" of a template document, or "" when it does not load.
std::string templateRef(std::string_view document) {
  const auto parsed = model::parseTemplate(document);
  return parsed.loaded ? parsed.loaded->id() + "@" + std::to_string(parsed.loaded->version())
                       : std::string();
}

/// "id@version" of every template this device has: the SDK's own and the installed
/// ones (Hello.templates: the server sends the published ones missing from it).
/// `known` remembers the refs of documents parsed before (parsing is milliseconds).
std::vector<std::string> templateRefs(Vault& vault, std::map<std::string, std::string>& known) {
  static const std::string builtin = templateRef(model::cseScreeningV1Json());
  std::set<std::string> refs{builtin};
  for (std::string& document : installedTemplates(vault)) {
    auto it = known.find(document);
    if (it == known.end()) {
      const std::string ref = templateRef(document);
      it = known.emplace(std::move(document), ref).first;
    }
    if (!it->second.empty()) {
      refs.insert(it->second);
    }
  }
  std::vector<std::string> out(refs.begin(), refs.end());
  if (out.size() > protocol::limits::kTemplateRefs) {
    out.resize(protocol::limits::kTemplateRefs); // the server may then re-send some
  }
  return out;
}

} // namespace

struct SyncClient::Impl {
  Impl(Context& c, Vault& v, model::RecordStore& s, const platform::Clock& k, SyncOptions o)
      : context(c), vault(v), store(s), clock(k), options(std::move(o)) {}

  Context& context;
  Vault& vault;
  model::RecordStore& store;
  const platform::Clock& clock;
  SyncOptions options;
  DeviceIdentity identity;
  bool elideIds = false; ///< the server takes derived change ids left out (this session)
  /// Installed template documents and their "id@version" (templateRefs()).
  std::map<std::string, std::string> knownTemplates;

  std::mutex syncMutex; ///< one sync at a time
  mutable std::mutex stateMutex;
  SyncStatus status;
  asio::io_context* activeIo = nullptr;
  bool cancelRequested = false;
  std::condition_variable wake;
  bool wakeRequested = false;
  bool stopRequested = false;
  std::thread worker;

  model::RecordStore::Impl& internals() { return store.internals(); }

  SyncReport runOnce();
  asio::awaitable<void> session(SyncReport& report);
  asio::awaitable<void> runCommands(protocol::SecureChannel& channel,
                                    const std::vector<protocol::Command>& commands,
                                    SyncReport& report);
  /// Pushes the outbox; once it is all sent, sends the pull's first request (before
  /// the last acknowledgements arrive: the server answers in order).
  asio::awaitable<void> push(protocol::SecureChannel& channel, SyncReport& report,
                             SyncProgress& progress, std::size_t& skewed);
  /// Pulls, the first request sent already (push).
  asio::awaitable<void> pull(protocol::SecureChannel& channel, SyncReport& report,
                             SyncProgress& progress);
  /// Receives and decodes one PullReply, and asks for the next batch if there is one.
  asio::awaitable<PulledBatch> receivePull(protocol::SecureChannel& channel, SyncReport& report,
                                           std::uint64_t& cursor);
  /// The pull's merge thread (pull()); stopped before a sync returns, however it
  /// ends.
  std::unique_ptr<PullMerger> merger;
  void progress(SyncProgress& p, const protocol::SecureChannel* channel) const {
    if (channel) {
      p.bytesUp = channel->bytesSent();
      p.bytesDown = channel->bytesReceived();
    }
    if (options.onProgress) {
      options.onProgress(p);
    }
  }
  void wipeDevice();
  void backgroundLoop();
};

SyncClient::SyncClient(Context& context, Vault& vault, model::RecordStore& store,
                       const platform::Clock& clock, SyncOptions options)
    : impl_(std::make_unique<Impl>(context, vault, store, clock, std::move(options))) {
  auto identity = loadDeviceIdentity(vault);
  if (!identity) {
    throw Error(Errc::invalid_argument,
                "this device is not enrolled: enroll it with a code from the central team first");
  }
  impl_->identity = std::move(*identity);
  if (impl_->options.pushBatch == 0 || impl_->options.pullBatch == 0) {
    throw Error(Errc::invalid_argument, "push and pull batches must hold at least one change");
  }
  impl_->options.pullBatch = std::min(impl_->options.pullBatch, protocol::limits::kPullLimit);
  impl_->options.pushBatch =
      std::min<std::size_t>(impl_->options.pushBatch, protocol::limits::kChanges);
  model::adoptDeviceId(impl_->internals(), uuidOf(impl_->identity.deviceId));
  vault.write([](sql::Database& db) { createTemplateTable(db); });
  impl_->status.cursor = model::pullCursor(impl_->internals());
  if (const auto last = model::syncMeta(impl_->internals(), "last_success_ms")) {
    impl_->status.lastSuccessMs = std::stoll(*last);
  }
}

SyncClient::~SyncClient() { stop(); }

SyncReport SyncClient::sync() { return impl_->runOnce(); }

SyncReport SyncClient::Impl::runOnce() {
  const std::lock_guard one(syncMutex);
  {
    const std::lock_guard lock(stateMutex);
    if (status.wiped) {
      throw Error(Errc::revoked, "this device was revoked and its data wiped");
    }
    cancelRequested = stopRequested; // a stop asked for meanwhile still applies
  }
  SyncReport report;
  asio::io_context io;
  std::exception_ptr failure;
  bool finished = false;
  asio::co_spawn(io, session(report), [&](std::exception_ptr e) {
    failure = e;
    finished = true;
  });
  {
    const std::lock_guard lock(stateMutex);
    activeIo = &io;
    if (cancelRequested) {
      io.stop(); // cancelled before it started
    }
  }
  io.run();
  // A sync stopped during a pull may leave batches merging on their own thread: the
  // merge running ends (committed whole, or rolled back) before this returns or
  // touches the vault again, and no other starts.
  merger.reset();
  bool cancelled = false;
  {
    const std::lock_guard lock(stateMutex);
    activeIo = nullptr;
    cancelled = cancelRequested;
  }
  const auto fail = [&](const std::string& message) {
    const std::lock_guard lock(stateMutex);
    status.lastError = message;
    ++status.consecutiveFailures;
  };
  try {
    if (cancelled && !(finished && !failure)) {
      throw Error(Errc::cancelled, "the sync was cancelled; what was done before is kept");
    }
    if (failure) {
      std::rethrow_exception(failure);
    }
  } catch (const Error& e) {
    if (e.code() == Errc::revoked) {
      wipeDevice();
    }
    fail(e.what());
    throw;
  } catch (const boost::system::system_error& e) {
    const std::string message = "cannot reach the server at " + identity.serverHost + ":" +
                                std::to_string(identity.serverPort) + ": " + e.code().message() +
                                "; everything is kept on the device, sync again later";
    fail(message);
    throw Error(Errc::network, message);
  }
  report.finishedAtMs = clock.unixMillis();
  model::setSyncMeta(internals(), "last_success_ms", std::to_string(report.finishedAtMs));
  const std::lock_guard lock(stateMutex);
  status.lastSuccessMs = report.finishedAtMs;
  status.lastError.reset();
  status.consecutiveFailures = 0;
  status.cursor = model::pullCursor(internals());
  return report;
}

asio::awaitable<void> SyncClient::Impl::session(SyncReport& report) {
  auto executor = co_await asio::this_coro::executor;
  SyncProgress progress;
  this->progress(progress, nullptr);

  // Connect, bounded by the timeout.
  const std::string host = identity.serverHost;
  const std::string port = std::to_string(identity.serverPort);
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code notAnAddress;
  const auto address = asio::ip::make_address(host, notAnAddress);
  if (!notAnAddress) {
    // An address needs no resolver (whose thread each sync would start anew).
    endpoints.emplace_back(address, identity.serverPort);
  } else {
    tcp::resolver resolver(executor);
    const auto resolved = co_await resolver.async_resolve(host, port, asio::use_awaitable);
    for (const auto& entry : resolved) {
      endpoints.push_back(entry.endpoint());
    }
  }
  tcp::socket socket(executor);
  asio::steady_timer connectTimer(executor);
  bool connectTimedOut = false;
  connectTimer.expires_after(options.timeout);
  connectTimer.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) {
      connectTimedOut = true;
      boost::system::error_code ignored;
      socket.close(ignored);
    }
  });
  boost::system::error_code connectError;
  co_await asio::async_connect(socket, endpoints,
                               asio::redirect_error(asio::use_awaitable, connectError));
  connectTimer.cancel();
  if (connectTimedOut) {
    throw Error(Errc::timeout, "the server at " + host + ":" + port + " did not answer within " +
                                   std::to_string(options.timeout.count()) +
                                   " ms; everything is kept on the device, sync again later");
  }
  if (connectError) {
    throw boost::system::system_error(connectError);
  }

  protocol::ChannelLimits limits;
  limits.readTimeout = options.timeout;
  limits.writeTimeout = options.timeout;
  protocol::SecureChannel channel = co_await protocol::SecureChannel::connect(
      context, std::move(socket), protocol::Purpose::session, identity.deviceKey,
      identity.serverKey, limits);
  protocol::Hello hello;
  hello.deviceId = identity.deviceId;
  hello.workerId = identity.workerId;
  hello.appVersion = options.appVersion;
  hello.capabilities.emplace_back(protocol::kCapabilityZstd);
  hello.capabilities.emplace_back(protocol::kCapabilityDerivedIds);
  hello.capabilities.emplace_back(protocol::kCapabilityRecordWrites);
  hello.capabilities.emplace_back(protocol::kCapabilityCompactAcks);
  hello.templates = templateRefs(vault, knownTemplates);
  {
    auto& s = internals();
    const std::lock_guard guard(s.mutex);
    hello.hlc = s.hlc.last().value;
  }
  const protocol::HelloReply reply = co_await protocol::openSession(channel, hello);
  const auto serverHas = [&](std::string_view capability) {
    return std::find(reply.capabilities.begin(), reply.capabilities.end(), capability) !=
           reply.capabilities.end();
  };
  if (serverHas(protocol::kCapabilityZstd)) {
    channel.compressMessages();
  }
  if (serverHas(protocol::kCapabilityRecordWrites)) {
    channel.groupWrites();
  }
  elideIds = serverHas(protocol::kCapabilityDerivedIds);
  {
    // Devices adopt server time at hello: later writes are stamped at or after it.
    auto& s = internals();
    const std::lock_guard guard(s.mutex);
    (void)s.hlc.adoptServerTime(sync::Hlc{reply.serverHlc});
  }

  progress.phase = SyncPhase::commands;
  this->progress(progress, &channel);
  co_await runCommands(channel, reply.pendingCommands, report);

  // A team the worker joined since the last complete pull (or rejoined after its
  // records were purged) has earlier writes behind the cursor: pull from the start.
  // The teams are remembered only once a pull has completed. Decided before the
  // push, which sends the pull's first request.
  const std::string teams = joinTeams(reply.teams);
  const std::optional<std::string> knownTeams = model::syncMeta(internals(), kTeamsKey);
  if (!reply.teams.empty() && gainsTeam(knownTeams.value_or(""), reply.teams) &&
      model::pullCursor(internals()) > 0) {
    model::resetPullCursor(internals());
    context.log().info("sync: the worker's teams grew; pulling their records from the start");
  }

  progress.phase = SyncPhase::pushing;
  std::size_t skewed = 0;
  co_await push(channel, report, progress, skewed);
  progress.phase = SyncPhase::pulling;
  co_await pull(channel, report, progress);
  if (!reply.teams.empty() && knownTeams != teams) {
    model::setSyncMeta(internals(), kTeamsKey, teams);
  }
  report.bytesUp = channel.bytesSent();
  report.bytesDown = channel.bytesReceived();
  channel.close();
  progress.phase = SyncPhase::done;
  this->progress(progress, nullptr);
  if (skewed > 0) {
    throw Error(Errc::clock_skew,
                std::to_string(skewed) +
                    " change(s) carry a time ahead of the server's clock; they are kept on the "
                    "device and sent once the server's time reaches them");
  }
}

asio::awaitable<void> SyncClient::Impl::runCommands(protocol::SecureChannel& channel,
                                                    const std::vector<protocol::Command>& commands,
                                                    SyncReport& report) {
  for (const protocol::Command& command : commands) {
    if (std::holds_alternative<protocol::Wipe>(command.action)) {
      channel.close();
      throw Error(Errc::revoked, "the central team had this device wiped");
    }
    if (const auto* purge = std::get_if<protocol::PurgeRecords>(&command.action)) {
      std::vector<sync::Uuid> ids;
      ids.reserve(purge->recordIds.size());
      for (const auto& raw : purge->recordIds) {
        ids.push_back(uuidOf(raw));
      }
      const model::PurgeResult purged = model::purgeRecords(internals(), ids);
      DeletionReceipt receipt;
      receipt.commandId = uuidOf(command.commandId);
      receipt.records = purged.removed;
      receipt.atMs = clock.unixMillis();
      receipt.discardedChanges = purged.discardedWrites;
      if (!receipt.records.empty()) {
        context.log().info("sync: {} record(s) left this worker's scope and were removed",
                           receipt.records.size());
      }
      report.purged.push_back(std::move(receipt));
    } else if (const auto* update = std::get_if<protocol::TemplateUpdate>(&command.action)) {
      vault.write([&](sql::Database& db) {
        for (const std::string& document : update->templates) {
          // Checked before it is kept: a template that does not load is not installed.
          if (!model::parseTemplate(document).loaded) {
            context.log().warn("sync: the server sent a template that does not load; skipped");
            continue;
          }
          sql::Statement st(db, "INSERT OR IGNORE INTO installed_templates(document) VALUES (?1)");
          st.bind(1, std::string_view(document)).run();
          report.templatesInstalled += static_cast<std::size_t>(db.changes());
        }
      });
    }
  }
  co_return;
}

asio::awaitable<void> SyncClient::Impl::push(protocol::SecureChannel& channel, SyncReport& report,
                                             SyncProgress& progress, std::size_t& skewed) {
  model::Journal& journal = store.journal();
  // Up to kPushesInFlight batches are sent before their acknowledgements arrive (the
  // server answers in order): the device reads and encodes the next batches while the
  // server merges the previous ones. With four, the server's writer often ran alone
  // while the device waited for an acknowledgement; eight keep both cores busy (W2's
  // push_all ~11 % faster, docs/benchmarks.md). The server takes as many ahead.
  constexpr std::size_t kPushesInFlight = 8;
  struct InFlight {
    protocol::Uuid batchId{};
    std::vector<protocol::Uuid> changeIds; ///< as sent (all-zero where elided)
    std::vector<model::JournalEntry> entries;
  };
  std::deque<InFlight> inFlight;
  // The list of the batch last sent, kept for the next (its capacity: a batch's
  // worth of changes is not allocated and touched afresh each time).
  std::vector<protocol::Change> spareChanges;
  std::int64_t afterSeq = 0;
  bool drained = false;
  for (;;) {
    while (!drained && inFlight.size() < kPushesInFlight) {
      progress.writesPending = static_cast<std::size_t>(journal.pendingCount());
      InFlight next;
      // The journal's change ids are derived ones: a server that derives them is
      // sent none, and they are not computed (a hash per change).
      next.entries = model::pendingWrites(internals(), options.pushBatch, afterSeq, !elideIds);
      if (next.entries.empty()) {
        drained = true;
        // The pull's first request goes now, ahead of the last acknowledgements: its
        // reply comes after them (and the cursor only moves once it is merged).
        const protocol::Message firstPull =
            protocol::PullRequest{model::pullCursor(internals()), options.pullBatch};
        co_await channel.sendMessage(firstPull);
        break;
      }
      protocol::PushBatch batch;
      randombytes_buf(batch.batchId.data(), batch.batchId.size());
      batch.changes = std::move(spareChanges);
      batch.changes.clear();
      batch.changes.reserve(next.entries.size());
      next.changeIds.reserve(next.entries.size());
      // The entries' strings and values are taken: once sent, only their seqs and
      // record ids are read.
      for (model::JournalEntry& e : next.entries) {
        batch.changes.push_back(std::move(e.change));
        next.changeIds.push_back(batch.changes.back().changeId.bytes);
        afterSeq = std::max(afterSeq, e.seq);
      }
      next.batchId = batch.batchId;
      // Moved into the message, not copied: the acknowledgement is matched by ids.
      protocol::Message request = std::move(batch);
      co_await channel.sendMessage(request);
      spareChanges = std::move(std::get<protocol::PushBatch>(request).changes);
      inFlight.push_back(std::move(next));
    }
    if (inFlight.empty()) {
      break;
    }
    const InFlight sent = std::move(inFlight.front());
    inFlight.pop_front();
    const std::vector<model::JournalEntry>& entries = sent.entries;
    protocol::Message answer = co_await channel.receiveMessage();
    ++report.roundTrips;
    const protocol::PushAck ack = protocol::expect<protocol::PushAck>(std::move(answer));
    if (ack.batchId != sent.batchId || ack.results.size() != entries.size()) {
      throw Error(Errc::protocol, "the server's acknowledgement does not match the batch sent");
    }
    // The server has committed the batch: acknowledge the writes whose changes it
    // took (applied, duplicate, conflict) or refused for good. Changes refused for
    // clock skew stay in the outbox.
    std::set<std::int64_t> skewedSeqs;
    std::map<sync::Uuid, std::string> rejected;
    std::set<sync::Uuid> accepted; // only kept once something was refused
    const auto noteAccepted = [&](std::size_t upTo) {
      for (std::size_t j = 0; j < upTo; ++j) {
        if (ack.results[j].outcome != protocol::ChangeOutcome::rejected) {
          accepted.insert(entries[j].change.recordId);
        }
      }
    };
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const protocol::ChangeResult& r = ack.results[i];
      if (r.changeId != sent.changeIds[i]) {
        throw Error(Errc::protocol, "the server's acknowledgement does not match the batch sent");
      }
      if (r.outcome == protocol::ChangeOutcome::rejected) {
        if (r.reason == Errc::clock_skew) {
          skewedSeqs.insert(entries[i].seq);
          continue;
        }
        if (rejected.empty()) {
          noteAccepted(i); // the records accepted so far
        }
        rejected.emplace(entries[i].change.recordId, std::string(errcName(r.reason)));
        ++report.changesRejected;
      } else {
        if (!rejected.empty()) {
          accepted.insert(entries[i].change.recordId);
        }
        ++report.changesPushed;
        ++progress.changesPushed;
      }
    }
    // A record the server accepted and refused nothing of is no longer rejected.
    // With nothing refused, that is every record of an acknowledged write (a write
    // whose changes were all held back for clock skew is not acknowledged).
    std::vector<model::AckedWrite> acked;
    for (const model::JournalEntry& e : entries) {
      if ((acked.empty() || acked.back().seq != e.seq) && !skewedSeqs.contains(e.seq)) {
        const sync::Uuid& record = e.change.recordId;
        acked.push_back(
            {e.seq, rejected.empty() || (accepted.contains(record) && !rejected.contains(record))});
      }
    }
    skewed += skewedSeqs.size();
    report.writesAcknowledged += model::acknowledgeWrites(internals(), acked);
    for (const auto& [id, reason] : rejected) {
      journal.markRejected(id, reason);
    }
    this->progress(progress, &channel);
  }
  progress.writesPending = static_cast<std::size_t>(journal.pendingCount());
}

asio::awaitable<PulledBatch> SyncClient::Impl::receivePull(protocol::SecureChannel& channel,
                                                           SyncReport& report,
                                                           std::uint64_t& cursor) {
  protocol::Message answer = co_await channel.receiveMessage();
  ++report.roundTrips;
  protocol::PullReply reply = protocol::expect<protocol::PullReply>(std::move(answer));
  if (reply.nextCursor < cursor) {
    throw Error(Errc::protocol, "the server moved the pull cursor backwards");
  }
  cursor = reply.nextCursor;
  if (reply.more) {
    // Asked before this reply is merged: the server reads the next batch while the
    // device merges this one. The stored cursor only moves once a batch is merged.
    const protocol::Message request = protocol::PullRequest{reply.nextCursor, options.pullBatch};
    co_await channel.sendMessage(request);
  }
  PulledBatch out;
  out.nextCursor = reply.nextCursor;
  out.more = reply.more;
  // A change whose id the wire left out keeps it all-zero, flagged as derived: the
  // merge derives it only where it needs it (model::applyRemote).
  out.derived = std::make_unique<bool[]>(reply.changes.size());
  for (std::size_t i = 0; i < reply.changes.size(); ++i) {
    out.derived[i] = reply.changes[i].changeId.isNil();
  }
  out.changes = std::move(reply.changes);
  co_return out;
}

asio::awaitable<void> SyncClient::Impl::pull(protocol::SecureChannel& channel, SyncReport& report,
                                             SyncProgress& progress) {
  const auto mergeGroup = [this](std::span<PulledBatch> group) {
    std::vector<model::RemoteBatch> batches;
    batches.reserve(group.size());
    for (PulledBatch& b : group) {
      batches.push_back({b.changes, std::span<const bool>(b.derived.get(), b.changes.size())});
    }
    return model::applyRemote(internals(), batches, group.back().nextCursor);
  };
  const auto reportMerged = [&](const model::RemoteMergeResult& merged) {
    if (merged.merged == 0 && merged.records == 0) {
      return;
    }
    report.changesPulled += merged.merged;
    report.recordsUpdated += merged.records;
    report.newConflicts += merged.newConflicts;
    progress.changesPulled += merged.merged;
    progress.recordsPulled += merged.records;
    this->progress(progress, &channel);
  };
  std::uint64_t cursor = model::pullCursor(internals());
  PulledBatch first = co_await receivePull(channel, report, cursor);
  if (!first.more) {
    // Everything came in one reply (the usual case between two syncs): merged here,
    // with no thread to start for it.
    reportMerged(mergeGroup(std::span(&first, 1)));
    co_return;
  }
  // Replies are received and decoded on this (the io) thread while earlier ones are
  // merged on a thread of their own (PullMerger): in order, whatever has arrived
  // when a merge starts in one vault transaction, which also advances the stored
  // cursor.
  merger = std::make_unique<PullMerger>(mergeGroup);
  std::exception_ptr receiveFailed;
  try {
    merger->add(std::move(first));
    reportMerged(merger->takeMerged());
    for (;;) {
      PulledBatch batch = co_await receivePull(channel, report, cursor);
      const bool more = batch.more;
      merger->add(std::move(batch));
      reportMerged(merger->takeMerged());
      if (!more) {
        break;
      }
    }
  } catch (...) {
    receiveFailed = std::current_exception();
  }
  // What arrived is merged first, and a failed merge is the sync's failure, as when
  // the merges ran here.
  merger->finish();
  reportMerged(merger->takeMerged());
  const bool manyGroups = merger->groupsMerged() > 1;
  merger.reset();
  if (manyGroups && !receiveFailed) {
    try {
      model::checkpointWal(internals());
    } catch (const Error& e) {
      // The pull is complete and committed: only the copying waits (for the next
      // write's commit, as SQLite would do it).
      context.log().warn("sync: the vault's log was not copied into its file after the pull: {}",
                         e.what());
    }
  }
  if (receiveFailed) {
    std::rethrow_exception(receiveFailed);
  }
}

void SyncClient::Impl::wipeDevice() {
  context.log().warn("sync: the server revoked this device; wiping its data");
  try {
    store.lock();
  } catch (const std::exception&) {
    // Already locked: the wipe below destroys the keys either way.
  }
  vault.wipe();
  const std::lock_guard lock(stateMutex);
  status.wiped = true;
}

void SyncClient::start() {
  const std::lock_guard lock(impl_->stateMutex);
  if (impl_->worker.joinable()) {
    return;
  }
  impl_->stopRequested = false;
  impl_->wakeRequested = true;
  impl_->status.running = true;
  impl_->worker = std::thread([impl = impl_.get()] { impl->backgroundLoop(); });
}

void SyncClient::stop() {
  std::thread worker;
  {
    const std::lock_guard lock(impl_->stateMutex);
    impl_->stopRequested = true;
    impl_->cancelRequested = true;
    if (impl_->activeIo) {
      impl_->activeIo->stop();
    }
    worker = std::move(impl_->worker);
  }
  impl_->wake.notify_all();
  if (worker.joinable()) {
    worker.join();
  }
  const std::lock_guard lock(impl_->stateMutex);
  impl_->status.running = false;
}

void SyncClient::notifyLocalWrite() {
  {
    const std::lock_guard lock(impl_->stateMutex);
    impl_->wakeRequested = true;
  }
  impl_->wake.notify_all();
}

void SyncClient::cancel() {
  const std::lock_guard lock(impl_->stateMutex);
  impl_->cancelRequested = true;
  if (impl_->activeIo) {
    impl_->activeIo->stop();
  }
}

SyncStatus SyncClient::status() const {
  const std::lock_guard lock(impl_->stateMutex);
  return impl_->status;
}

void SyncClient::Impl::backgroundLoop() {
  unsigned failures = 0;
  for (;;) {
    std::chrono::milliseconds delay = options.interval;
    try {
      const SyncReport report = runOnce();
      failures = 0;
      if (options.onResult) {
        options.onResult(&report, nullptr);
      }
    } catch (const Error& e) {
      if (options.onResult) {
        options.onResult(nullptr, std::current_exception());
      }
      if (e.code() == Errc::revoked || e.code() == Errc::cancelled) {
        const std::lock_guard lock(stateMutex);
        if (e.code() == Errc::revoked || stopRequested) {
          break;
        }
      }
      ++failures;
    } catch (const std::exception&) {
      if (options.onResult) {
        options.onResult(nullptr, std::current_exception());
      }
      ++failures;
    }
    if (failures > 0) {
      // Full jitter: a random wait up to the exponential bound.
      const auto bound = std::min<std::int64_t>(options.maxBackoff.count(),
                                                options.minBackoff.count()
                                                    << std::min<unsigned>(failures - 1, 20));
      delay = std::chrono::milliseconds(
          randombytes_uniform(static_cast<std::uint32_t>(std::max<std::int64_t>(bound, 1))));
    }
    std::unique_lock lock(stateMutex);
    // A local write wakes the loop only when the last sync succeeded; after a
    // failure the backoff decides (it retries without waiting for one).
    wakeRequested = wakeRequested && failures == 0;
    wake.wait_for(lock, delay, [&] { return stopRequested || (wakeRequested && failures == 0); });
    wakeRequested = false;
    if (stopRequested) {
      break;
    }
  }
  const std::lock_guard lock(stateMutex);
  status.running = false;
}

std::vector<std::string> installedTemplates(Vault& vault) {
  std::vector<std::string> out;
  vault.write([&](sql::Database& db) {
    createTemplateTable(db);
    sql::Statement st(db, "SELECT document FROM installed_templates ORDER BY seq");
    while (st.step()) {
      out.emplace_back(st.columnText(0));
    }
  });
  return out;
}

} // namespace outpost
