# Outpost wire messages (docs/protocol.md). Every application message is one
# Envelope, serialised with Cap'n Proto's packed encoding, inside the Noise channel.
#
# Evolution (Cap'n Proto rules): fields and union members are only ever added, with
# the next ordinal; nothing is renamed in a way that changes meaning, removed or
# renumbered. A decoder ignores fields it does not know; an Envelope whose union
# member it does not know is refused as a protocol error. Anything that changes the
# meaning of an existing field needs a new protocol version (Hello.minVersion /
# maxVersion).
@0xab4ce3d5f09321b7;

$import "/capnp/c++.capnp".namespace("outpost::protocol::wire");

# A 16-byte UUID (RFC 4122 byte order).
using Uuid = Data;

# Hybrid logical clock: (physical milliseconds since the Unix epoch << 16) | logical.
using Hlc = UInt64;

struct Envelope {
  union {
    hello @0 :Hello;
    helloReply @1 :HelloReply;
    pushBatch @2 :PushBatch;
    pushAck @3 :PushAck;
    pullRequest @4 :PullRequest;
    pullReply @5 :PullReply;
    command @6 :Command;
    error @7 :Error;
    enrollRequest @8 :EnrollRequest;
    enrollReply @9 :EnrollReply;
  }
}

# Device -> server, first message of a session.
struct Hello {
  minVersion @0 :UInt16;
  maxVersion @1 :UInt16;
  deviceId @2 :Uuid;
  workerId @3 :Text;
  appVersion @4 :Text;
  hlc @5 :Hlc;
  capabilities @6 :List(Text);
  # The assessment templates the device has, as "id@version" (added in v1; absent
  # from an older device: none). The server sends the published ones it lacks.
  templates @7 :List(Text);
}

# Server -> device, answer to Hello.
struct HelloReply {
  version @0 :UInt16;
  serverHlc @1 :Hlc;
  pendingCommands @2 :List(Command);
  # Capabilities of the device's Hello the server also has (added in v1; absent
  # from an older server: none).
  capabilities @3 :List(Text);
  # The worker's teams: whose records the device may pull (added in v1; absent from
  # an older server: none). A device that sees a team it did not pull for before
  # pulls again from the start, since that team's earlier writes are behind its cursor.
  teams @4 :List(Text);
}

struct Value {
  union {
    null @0 :Void;
    tombstone @1 :Void;
    boolean @2 :Bool;
    int64 @3 :Int64;
    float64 @4 :Float64;
    text @5 :Text;
    bytes @6 :Data;
    textList @7 :List(Text);
  }
}

struct Change {
  changeId @0 :Uuid;
  recordId @1 :Uuid;
  recordType @2 :Text;
  field @3 :Text;
  value @4 :Value;
  hlc @5 :Hlc;
  deviceId @6 :Uuid;
  baseHlc @7 :Hlc;
  # Added after v1's first cut (absent from older peers: read as zero / empty).
  # The device that wrote the base version (zero UUID when baseHlc is zero).
  baseDeviceId @8 :Uuid;
  # Further versions the editor saw and replaced (a conflict it resolves, or the
  # field versions a record deletion saw); at most 1024.
  resolves @9 :List(VersionId);
}

struct PushBatch {
  batchId @0 :Uuid;
  changes @1 :List(Change);
  # The same changes grouped by write (capability "record-writes"); a message
  # carries `changes` or `writes`, never both.
  writes @2 :List(RecordWrite);
}

enum ChangeOutcome {
  applied @0;
  duplicate @1;
  conflict @2;
  rejected @3;
}

struct ChangeResult {
  changeId @0 :Uuid;
  outcome @1 :ChangeOutcome;
  # An outpost::Errc number (stable); 0 unless the outcome is rejected or conflict.
  reason @2 :UInt16;
}

struct PushAck {
  batchId @0 :Uuid;
  results @1 :List(ChangeResult);
  # The compact layout (capability "compact-acks"): `results` is empty, `count` is
  # the number of results, and `exceptions` lists, by position, every result that is
  # not "applied, reason 0, all-zero id"; the others are exactly that.
  count @2 :UInt32;
  exceptions @3 :List(ChangeResultAt);
}

struct ChangeResultAt {
  index @0 :UInt32;
  result @1 :ChangeResult;
}

struct PullRequest {
  cursor @0 :UInt64;
  limit @1 :UInt32;
}

struct PullReply {
  changes @0 :List(Change);
  nextCursor @1 :UInt64;
  more @2 :Bool;
  # As PushBatch.writes.
  writes @3 :List(RecordWrite);
}

# The changes one device made to one record at one HLC (one local write), sharing
# what they have in common. Field i stands for the Change with this write's
# recordId, recordType, hlc and deviceId and the field's own members; the order of
# `fields` is the order of the changes.
struct RecordWrite {
  recordId @0 :Uuid;
  recordType @1 :Text;
  hlc @2 :Hlc;
  deviceId @3 :Uuid;
  fields @4 :List(FieldWrite);
}

struct FieldWrite {
  field @0 :Text;
  value @1 :Value;
  baseHlc @2 :Hlc;
  # Empty when baseHlc is zero; otherwise as Change.baseDeviceId.
  baseDeviceId @3 :Uuid;
  resolves @4 :List(VersionId);
  # Empty for the derived id (capability "derived-ids"); otherwise as Change.changeId.
  changeId @5 :Uuid;
}

struct Command {
  commandId @0 :Uuid;
  union {
    wipe @1 :Void;
    purgeRecords @2 :List(Uuid);
    # Template documents (JSON), each a complete published template version.
    templateUpdate @3 :List(Text);
  }
}

struct Error {
  # An outpost::Errc number (stable, platform/include/outpost/error.hpp).
  code @0 :UInt16;
  message @1 :Text;
}

# Device -> server, first message of an enrollment session (Noise XK).
struct EnrollRequest {
  code @0 :Text;
  appVersion @1 :Text;
  minVersion @2 :UInt16;
  maxVersion @3 :UInt16;
}

struct EnrollReply {
  deviceId @0 :Uuid;
  workerId @1 :Text;
  teamId @2 :Text;
  serverHlc @3 :Hlc;
}

# One version of a field: the HLC and device of the change that wrote it.
struct VersionId {
  hlc @0 :Hlc;
  deviceId @1 :Uuid;
}
