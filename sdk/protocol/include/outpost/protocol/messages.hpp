#pragma once
/// \file
/// The application messages as plain C++ values, and their wire encoding.
///
/// Callers never touch Cap'n Proto: `encode()` turns a `Message` into the bytes of
/// one packed Cap'n Proto `Envelope` (sdk/protocol/outpost.capnp), `decode()` turns
/// untrusted bytes back, refusing anything malformed or out of bounds with
/// `Error{Errc::protocol}` — never a crash, never an unbounded allocation. The
/// limits below are part of the protocol (docs/protocol.md).

#include "outpost/error.hpp"

#include <outpost/sync/change.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace outpost::protocol {

/// Protocol versions this build speaks (Hello negotiation).
inline constexpr std::uint16_t kProtocolVersionMin = 1;
inline constexpr std::uint16_t kProtocolVersionMax = 1;

/// Limits every decoder enforces (and every encoder, so we never send what a peer
/// must refuse).
namespace limits {
inline constexpr std::size_t kMessageBytes = 16u << 20;    ///< one encoded Envelope
inline constexpr std::size_t kShortText = 256;             ///< ids, names, versions
inline constexpr std::size_t kErrorText = 1024;            ///< Error.message
inline constexpr std::size_t kValueText = 1u << 20;        ///< Value.text, each textList item
inline constexpr std::size_t kValueBytes = 4u << 20;       ///< Value.bytes
inline constexpr std::size_t kTextListItems = 4096;        ///< Value.textList
inline constexpr std::size_t kChanges = 10000;             ///< per PushBatch / PullReply
inline constexpr std::size_t kResolves = 1024;             ///< Change.resolves
inline constexpr std::size_t kCapabilities = 64;           ///< Hello.capabilities
inline constexpr std::size_t kCommands = 256;              ///< HelloReply.pendingCommands
inline constexpr std::size_t kPurgeRecords = 100000;       ///< Command.purgeRecords
inline constexpr std::size_t kTemplates = 64;              ///< Command.templateUpdate
inline constexpr std::size_t kTemplateRefs = 1024;         ///< Hello.templates
inline constexpr std::size_t kTeams = 1024;                ///< HelloReply.teams
inline constexpr std::size_t kTemplateText = 4u << 20;     ///< one template document
inline constexpr std::uint32_t kPullLimit = 10000;         ///< PullRequest.limit maximum
inline constexpr std::uint64_t kTraversalWords = 2u << 20; ///< Cap'n Proto traversal limit
inline constexpr int kNestingLimit = 16;                   ///< Cap'n Proto nesting limit
} // namespace limits

using Bytes = std::vector<std::uint8_t>;
/// A 16-byte UUID.
using Uuid = std::array<std::uint8_t, 16>;
/// Hybrid logical clock: 48-bit physical milliseconds << 16 | 16-bit logical counter.
using Hlc = std::uint64_t;

/// A field's typed value and a change are the sync types themselves: the wire
/// decodes straight into what the merge takes (sdk/sync_core). A change whose id the
/// peer left out ("derived-ids") carries the all-zero id.
using Null = sync::Null;
using Tombstone = sync::Tombstone;
using Value = sync::Value;
/// One version of a field: the HLC and device of the change that wrote it.
using VersionRef = sync::VersionId;
/// sync::Change on the wire. `baseDeviceId` and `resolves` came after the first
/// cut of v1: an older peer does not send them and they read as zero / empty.
using Change = sync::Change;

struct Wipe {
  bool operator==(const Wipe&) const = default;
};
struct PurgeRecords {
  std::vector<Uuid> recordIds;
  bool operator==(const PurgeRecords&) const = default;
};
struct TemplateUpdate {
  std::vector<std::string> templates; ///< JSON documents
  bool operator==(const TemplateUpdate&) const = default;
};

struct Command {
  Uuid commandId{};
  std::variant<Wipe, PurgeRecords, TemplateUpdate> action;
  bool operator==(const Command&) const = default;
};

struct Hello {
  std::uint16_t minVersion = kProtocolVersionMin;
  std::uint16_t maxVersion = kProtocolVersionMax;
  Uuid deviceId{};
  std::string workerId;
  std::string appVersion;
  Hlc hlc = 0;
  std::vector<std::string> capabilities;
  /// The templates the device has, "id@version" (an older device: none).
  std::vector<std::string> templates{};
  bool operator==(const Hello&) const = default;
};

/// The capability that lets both sides compress messages (zstd) once the Hello
/// exchange has shown both have it (docs/protocol.md).
inline constexpr std::string_view kCapabilityZstd = "zstd";
/// The capability that lets both sides leave out change ids that are
/// sync::derivedChangeId of the change's fields (sent as all-zero ids).
inline constexpr std::string_view kCapabilityDerivedIds = "derived-ids";
/// The capability that lets both sides send change lists grouped by write
/// (PushBatch.writes, PullReply.writes).
inline constexpr std::string_view kCapabilityRecordWrites = "record-writes";
/// The capability that lets the server send a PushAck's results compactly: only
/// those that are not "applied with an all-zero id", by position (PushAck.exceptions).
inline constexpr std::string_view kCapabilityCompactAcks = "compact-acks";

struct HelloReply {
  std::uint16_t version = kProtocolVersionMax;
  Hlc serverHlc = 0;
  std::vector<Command> pendingCommands;
  /// The capabilities of the Hello that the server has too (older servers: none).
  std::vector<std::string> capabilities{};
  /// The worker's teams, whose records the device may pull (older servers: none).
  std::vector<std::string> teams{};
  bool operator==(const HelloReply&) const = default;
};

struct PushBatch {
  Uuid batchId{};
  std::vector<Change> changes;
  bool operator==(const PushBatch&) const = default;
};

enum class ChangeOutcome : std::uint8_t { applied = 0, duplicate = 1, conflict = 2, rejected = 3 };

struct ChangeResult {
  Uuid changeId{};
  ChangeOutcome outcome = ChangeOutcome::applied;
  /// Why (an `Errc`), `Errc::ok` for applied and duplicate.
  Errc reason = Errc::ok;
  bool operator==(const ChangeResult&) const = default;
};

struct PushAck {
  Uuid batchId{};
  std::vector<ChangeResult> results;
  bool operator==(const PushAck&) const = default;
};

struct PullRequest {
  std::uint64_t cursor = 0;
  std::uint32_t limit = 1000;
  bool operator==(const PullRequest&) const = default;
};

struct PullReply {
  std::vector<Change> changes;
  std::uint64_t nextCursor = 0;
  bool more = false;
  bool operator==(const PullReply&) const = default;
};

/// The peer reports an error (the wire's `Error`; named so it is not confused with
/// the exception `outpost::Error`).
struct ErrorReply {
  Errc code = Errc::internal;
  std::string message;
  bool operator==(const ErrorReply&) const = default;
};

struct EnrollRequest {
  std::string code;
  std::string appVersion;
  std::uint16_t minVersion = kProtocolVersionMin;
  std::uint16_t maxVersion = kProtocolVersionMax;
  bool operator==(const EnrollRequest&) const = default;
};

struct EnrollReply {
  Uuid deviceId{};
  std::string workerId;
  std::string teamId;
  Hlc serverHlc = 0;
  bool operator==(const EnrollReply&) const = default;
};

/// One application message: exactly the members of the wire's Envelope union, in
/// the same order.
using Message = std::variant<Hello, HelloReply, PushBatch, PushAck, PullRequest, PullReply, Command,
                             ErrorReply, EnrollRequest, EnrollReply>;

/// How encode() lays a message out; every layout decodes to the same Message.
struct EncodeOptions {
  /// Change lists as RecordWrites (consecutive changes of one write share their
  /// record, type, HLC and device), for a peer that named kCapabilityRecordWrites.
  bool recordWrites = false;
  /// A PushAck's results in the compact layout (count + exceptions), for a peer that
  /// named kCapabilityCompactAcks.
  bool compactAcks = false;
};

/// The message's bytes on the wire (packed Cap'n Proto Envelope). Throws
/// `Error{invalid_argument}` when the message breaks a limit or holds invalid
/// values (the peer would refuse it).
[[nodiscard]] Bytes encode(const Message& message, const EncodeOptions& options = {});

/// Decodes untrusted bytes. Throws `Error{protocol}` for anything malformed, over a
/// limit, of an unknown type, or invalid (wrong UUID size, bad UTF-8, out-of-range
/// enum or count); never crashes.
[[nodiscard]] Message decode(std::span<const std::uint8_t> bytes);

/// Checks a message against the protocol's rules; throws `Error{code}`.
void validate(const Message& message, Errc code);
/// True when two changes belong to one write (same record, type, HLC and device):
/// a write's changes travel consecutively, and the record-writes layout groups them.
[[nodiscard]] bool sameWrite(const Change& a, const Change& b) noexcept;

/// The highest version both ranges include, or nullopt when they do not overlap.
[[nodiscard]] std::optional<std::uint16_t> negotiateVersion(std::uint16_t peerMin,
                                                            std::uint16_t peerMax) noexcept;
/// As negotiateVersion(), but throws `Error{version_mismatch}` with a message that
/// says which side to update.
[[nodiscard]] std::uint16_t requireVersion(std::uint16_t peerMin, std::uint16_t peerMax);

/// The message type's wire name ("hello", "pushAck", ...), for logs.
[[nodiscard]] std::string_view messageName(const Message& message) noexcept;

/// When `message` is an ErrorReply, throws `outpost::Error` with its code (the peer's
/// refusal as this side's exception); otherwise returns it unchanged.
Message throwIfError(Message message);

/// Extracts the expected alternative or throws `Error{protocol}` naming what came.
template <typename T>
[[nodiscard]] T expect(Message message) {
  message = throwIfError(std::move(message));
  if (auto* m = std::get_if<T>(&message)) {
    return std::move(*m);
  }
  throw Error(Errc::protocol,
              "unexpected message '" + std::string(messageName(message)) + "' from the peer");
}

} // namespace outpost::protocol
