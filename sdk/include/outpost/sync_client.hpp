#pragma once
/// \file
/// The sync client (DESIGN.md §3, §6; docs/sync.md): pushes the journal to the
/// device's server and pulls what others changed, merging it into the record store
/// with the same rule the server uses.
///
/// One sync is: connect (Noise IK, pinning the server key from enrollment) -> Hello
/// (the device adopts server time) -> carry out the server's commands (wipe, purge,
/// templates) -> push the journal oldest first in bounded batches, each acknowledged
/// in one vault transaction once the server has committed it -> pull after the
/// device's cursor in bounded batches, each merged and the cursor advanced in one
/// vault transaction. A break anywhere loses nothing and duplicates nothing: the
/// next sync resumes (change ids are idempotency keys).
///
/// Thread safety: `sync()` may run on any thread; the record store serialises its
/// operations, so the app may keep using it meanwhile. Background mode runs syncs
/// on its own thread.

#include <outpost/export.h>
#include <outpost/records.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace outpost {

class Context;
class Vault;
namespace platform {
class Clock;
}

/// Where a sync is.
enum class SyncPhase : std::uint8_t { connecting, commands, pushing, pulling, done };

/// Passed to the progress callback after every step (on the syncing thread).
struct SyncProgress {
  SyncPhase phase = SyncPhase::connecting;
  std::size_t changesPushed = 0; ///< acknowledged by the server so far
  std::size_t writesPending = 0; ///< writes (journal entries) still to push, at the last count
  std::size_t changesPulled = 0; ///< merged into the store so far
  std::size_t recordsPulled = 0; ///< records those changes touched
  std::uint64_t bytesUp = 0;     ///< TCP payload bytes sent
  std::uint64_t bytesDown = 0;   ///< TCP payload bytes received
};

/// Proof that records left this device because the server said so (purge): which
/// records, when, and how many unsent local changes they still had (the server
/// would refuse those: the records are out of the worker's scope). Also appended
/// to the device's audit trail.
struct DeletionReceipt {
  sync::Uuid commandId;
  std::vector<sync::Uuid> records; ///< the records that were on the device and are now gone
  std::int64_t atMs = 0;
  std::size_t discardedChanges = 0;
};

/// What one sync did.
struct SyncReport {
  std::size_t changesPushed = 0; ///< acknowledged (applied, duplicate or conflict)
  std::size_t writesAcknowledged = 0;
  std::size_t changesRejected = 0; ///< refused by the server (records marked rejected)
  std::size_t changesPulled = 0;   ///< merged (own changes echoed back are skipped)
  std::size_t recordsUpdated = 0;  ///< records a pulled change touched
  std::size_t newConflicts = 0;    ///< fields that gained a competing value in this sync
  std::vector<DeletionReceipt> purged;
  std::size_t templatesInstalled = 0;
  std::uint64_t bytesUp = 0;
  std::uint64_t bytesDown = 0;
  std::size_t roundTrips = 0; ///< request/reply exchanges after the handshake
  std::int64_t finishedAtMs = 0;
};

struct SyncOptions {
  /// Changes per push batch (whole writes only; at least one write per batch).
  std::size_t pushBatch = 2000;
  /// Changes per pull request (at most 10,000). A pull holds up to eight decoded
  /// batches in memory: four waiting and four being merged in one transaction.
  std::uint32_t pullBatch = 2000;
  /// Connect, handshake and every read and write must finish within this.
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
  /// Sent in Hello (the server logs it).
  std::string appVersion = "outpost-sdk";
  /// Called after every step of a sync.
  std::function<void(const SyncProgress&)> onProgress;

  // Background mode.
  /// A sync runs this long after the last success even with nothing to push (to pull).
  std::chrono::milliseconds interval = std::chrono::minutes(5);
  /// Retries after a failure wait a random time in [0, min(maxBackoff, minBackoff *
  /// 2^failures)] ("full jitter"), so that many devices do not retry in step.
  std::chrono::milliseconds minBackoff = std::chrono::seconds(1);
  std::chrono::milliseconds maxBackoff = std::chrono::minutes(5);
  /// Called after each background sync: the report, or the error that ended it.
  std::function<void(const SyncReport*, const std::exception_ptr&)> onResult;
};

/// The state of the client as an app shows it.
struct SyncStatus {
  std::optional<std::int64_t> lastSuccessMs;
  std::optional<std::string> lastError; ///< of the latest attempt, when it failed
  std::uint64_t cursor = 0;             ///< the server sequence pulled up to
  unsigned consecutiveFailures = 0;
  bool running = false; ///< background mode is on
  bool wiped = false;   ///< the server had this device wiped
};

class OUTPOST_API SyncClient {
public:
  /// `store` must be the vault's record store; the device must be enrolled
  /// (`enrollDevice`), else Error{invalid_argument} saying so. Records written
  /// before enrollment are re-stamped with the enrolled device id (nothing of them
  /// has left the device yet). Everything passed must outlive the client.
  SyncClient(Context& context, Vault& vault, model::RecordStore& store,
             const platform::Clock& clock, SyncOptions options = {});
  ~SyncClient();
  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  /// One sync, to the end. Throws Error{network|timeout} when the server cannot be
  /// reached or a read stalls (everything done before the break is kept: just sync
  /// again), Error{cancelled} after cancel(), Error{revoked} when the server has
  /// revoked the device (the vault has then been wiped), Error{clock_skew} when the
  /// server refuses the device's time, Error{version_mismatch}.
  SyncReport sync();

  /// Background mode: a thread that syncs at start, soon after `notifyLocalWrite`,
  /// every `interval`, and retries failures with exponential backoff and jitter.
  void start();
  /// Stops background mode (cancelling a sync in progress) and joins the thread.
  void stop();
  /// Tells background mode there is something to push (a failed push is retried
  /// on the backoff schedule without waiting for this).
  void notifyLocalWrite();
  /// Cancels the sync in progress (any thread); it throws Error{cancelled}.
  void cancel();

  [[nodiscard]] SyncStatus status() const;

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

/// Templates the server sent (TemplateUpdate commands), stored in the vault: their
/// JSON documents, oldest first, for `model::parseTemplate` and a catalog.
[[nodiscard]] OUTPOST_API std::vector<std::string> installedTemplates(Vault& vault);

} // namespace outpost
