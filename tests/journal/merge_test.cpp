// The merge rule: unit cases, then a convergence property test over many seeds —
// devices with skewed clocks edit, append, delete and resolve offline; batches to
// and from the server are duplicated, reordered and cut; in the end every replica
// holds the same state and no value anyone typed is lost.

#include "manual_clock.hpp"

#include <outpost/context.hpp>
#include <outpost/sync/hlc.hpp>
#include <outpost/sync/merge.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>

using namespace outpost;
using namespace outpost::sync;

namespace {

Uuid id(std::uint8_t n) {
  Uuid u;
  u.bytes[15] = n;
  return u;
}

Change edit(std::uint8_t changeNo, std::uint64_t hlc, std::uint8_t device, std::int64_t value,
            std::uint64_t baseHlc = 0, std::uint8_t baseDevice = 0) {
  Change c;
  c.changeId = id(changeNo);
  c.recordId = id(200);
  c.recordType = "child";
  c.field = "status";
  c.value = value;
  c.hlc = Hlc{hlc};
  c.deviceId = id(device);
  c.baseHlc = Hlc{baseHlc};
  c.baseDeviceId = baseHlc == 0 ? Uuid{} : id(baseDevice);
  return c;
}

FieldState mergeAll(const std::vector<Change>& changes, MergePolicy policy = MergePolicy::lww) {
  FieldState s;
  for (const Change& c : changes) {
    (void)merge(s, c, policy);
  }
  return s;
}

} // namespace

TEST_SUITE("sync.merge") {
  TEST_CASE("a change based on the current version fast-forwards, with no conflict") {
    FieldState s;
    CHECK(merge(s, edit(1, 10, 1, 100), MergePolicy::lww) == MergeOutcome::fastForward);
    CHECK(merge(s, edit(2, 20, 2, 200, 10, 1), MergePolicy::lww) == MergeOutcome::fastForward);
    REQUIRE(s.current);
    CHECK(s.current->value == Value{std::int64_t{200}});
    CHECK_FALSE(s.hasConflict());
  }

  TEST_CASE("concurrent edits: the greater (hlc, device) wins everywhere and the other is kept") {
    const Change a = edit(1, 10, 1, 100);
    const Change b = edit(2, 30, 2, 200, 10, 1);
    const Change c = edit(3, 25, 3, 300, 10, 1); // also based on a: concurrent with b
    FieldState s1;
    CHECK(merge(s1, a, MergePolicy::lww) == MergeOutcome::fastForward);
    CHECK(merge(s1, b, MergePolicy::lww) == MergeOutcome::fastForward);
    CHECK(merge(s1, c, MergePolicy::lww) == MergeOutcome::lost);
    FieldState s2;
    (void)merge(s2, a, MergePolicy::lww);
    CHECK(merge(s2, c, MergePolicy::lww) == MergeOutcome::fastForward);
    CHECK(merge(s2, b, MergePolicy::lww) == MergeOutcome::won);
    CHECK(s1 == s2);
    CHECK(s1.current->value == Value{std::int64_t{200}});
    REQUIRE(s1.conflicts.size() == 1);
    CHECK(s1.conflicts[0].value == Value{std::int64_t{300}});
  }

  TEST_CASE("equal HLCs on two devices are still two versions: neither is lost") {
    const Change a = edit(1, 10, 1, 100);
    const Change b = edit(2, 10, 2, 200);
    const Change c = edit(3, 20, 3, 300, 10, 1); // saw a only
    const FieldState s = mergeAll({a, b, c});
    REQUIRE(s.current);
    CHECK(s.current->value == Value{std::int64_t{300}});
    REQUIRE(s.conflicts.size() == 1);
    CHECK(s.conflicts[0].value == Value{std::int64_t{200}});
  }

  TEST_CASE("a resolution names the competitors it saw and clears the conflict in any order") {
    const Change a = edit(1, 10, 1, 100);
    const Change b = edit(2, 11, 2, 200);
    Change r = edit(3, 20, 1, 150, 11, 2); // based on the current (b)...
    r.resolves = {{Hlc{10}, id(1)}};       // ...and resolving a
    const FieldState s1 = mergeAll({a, b, r});
    const FieldState s2 = mergeAll({r, b, a});
    const FieldState s3 = mergeAll({b, r, a});
    CHECK(s1 == s2);
    CHECK(s1 == s3);
    CHECK(s1.current->value == Value{std::int64_t{150}});
    CHECK_FALSE(s1.hasConflict());
  }

  TEST_CASE("a change that arrives after the change that replaced it is history, not a conflict") {
    const Change a = edit(1, 10, 1, 100);
    const Change b = edit(2, 20, 2, 200, 10, 1);
    FieldState s;
    CHECK(merge(s, b, MergePolicy::lww) == MergeOutcome::fastForward);
    CHECK(merge(s, a, MergePolicy::lww) == MergeOutcome::superseded);
    CHECK(s.current->value == Value{std::int64_t{200}});
    CHECK_FALSE(s.hasConflict());
  }

  TEST_CASE("a duplicate changes nothing") {
    FieldState s = mergeAll({edit(1, 10, 1, 100), edit(2, 12, 2, 200)});
    const FieldState before = s;
    CHECK(merge(s, edit(1, 10, 1, 100), MergePolicy::lww) == MergeOutcome::duplicate);
    CHECK(merge(s, edit(2, 12, 2, 200), MergePolicy::lww) == MergeOutcome::duplicate);
    CHECK(s == before);
  }

  TEST_CASE("append-only entries never conflict and keep one order") {
    const Change a = edit(1, 10, 1, 1);
    const Change b = edit(2, 10, 2, 2);
    const Change c = edit(3, 5, 3, 3);
    const FieldState s1 = mergeAll({a, b, c}, MergePolicy::appendOnly);
    const FieldState s2 = mergeAll({c, b, a, b}, MergePolicy::appendOnly);
    CHECK(s1 == s2);
    CHECK(s1.entries.size() == 3);
    CHECK(s1.entries[0].changeId == id(3));
    CHECK_FALSE(s1.hasConflict());
  }

  TEST_CASE("an immutable-after-sign field refuses changes once its record is signed") {
    FieldState s;
    CHECK(merge(s, edit(1, 10, 1, 100), MergePolicy::immutableAfterSign) ==
          MergeOutcome::fastForward);
    CHECK(merge(s, edit(2, 20, 1, 200, 10, 1), MergePolicy::immutableAfterSign, true) ==
          MergeOutcome::rejected);
    CHECK(s.current->value == Value{std::int64_t{100}});
  }

  TEST_CASE("a delete concurrent with an edit is a conflict, not a win") {
    RecordState record;
    const Change e1 = edit(1, 10, 1, 100);
    (void)merge(record.fields["status"], e1, MergePolicy::lww);
    Change del = edit(2, 20, 2, 0);
    del.field = std::string(kRecordField);
    del.value = Tombstone{};
    del.resolves = {{Hlc{10}, id(1)}}; // the deleter saw e1
    (void)merge(record.fields[std::string(kRecordField)], del, MergePolicy::lww);
    CHECK(isDeleted(record));
    CHECK(deletionConflicts(record).empty());
    const Change e2 = edit(3, 15, 3, 300, 10, 1); // edited offline, unseen by the deleter
    (void)merge(record.fields["status"], e2, MergePolicy::lww);
    const auto conflicts = deletionConflicts(record);
    REQUIRE(conflicts.size() == 1);
    CHECK(conflicts[0].first == "status");
    CHECK(conflicts[0].second.value == Value{std::int64_t{300}});
  }
}

// --- convergence -----------------------------------------------------------------

namespace {

struct Replica {
  std::map<std::pair<int, std::string>, FieldState> fields;
  bool operator==(const Replica&) const = default;
};

MergePolicy policyOf(const std::string& field) {
  return field == "notes" ? MergePolicy::appendOnly : MergePolicy::lww;
}

struct Device {
  Uuid id;
  test::ManualClock clock;
  HlcClock hlc{clock, std::chrono::hours(24 * 365)};
  Replica replica;
  std::vector<Change> outbox;
};

const std::vector<std::string> kFields = {std::string(kRecordField), "status", "risk", "notes"};

void apply(Replica& r, const Change& c, int record) {
  (void)merge(r.fields[{record, c.field}], c, policyOf(c.field));
}

int recordOf(const Change& c) { return c.recordId.bytes[0]; }

} // namespace

TEST_CASE("sync.merge: any interleaving of offline edits and syncs converges, losing nothing") {
  const Context context;
  int seeds = 0;
  int conflictsSeen = 0;
  for (std::uint32_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    const int deviceCount = 3 + pick(2);
    std::vector<Device> devices(static_cast<std::size_t>(deviceCount));
    for (int d = 0; d < deviceCount; ++d) {
      devices[static_cast<std::size_t>(d)].id = id(static_cast<std::uint8_t>(d + 1));
      devices[static_cast<std::size_t>(d)].clock.advance(std::chrono::milliseconds(pick(5000)));
    }
    Replica server;
    std::vector<Change> serverLog;
    std::vector<Change> everything;
    std::uint32_t changeCounter = 0;

    const auto newChange = [&](Device& dev, int record, const std::string& field) {
      Change c;
      c.changeId = Uuid::random();
      c.recordId.bytes[0] = static_cast<std::uint8_t>(record);
      c.recordType = "child";
      c.field = field;
      c.hlc = dev.hlc.now();
      c.deviceId = dev.id;
      ++changeCounter;
      return c;
    };

    for (int step = 0; step < 120; ++step) {
      Device& dev = devices[static_cast<std::size_t>(pick(deviceCount))];
      dev.clock.advance(std::chrono::milliseconds(pick(3) == 0 ? -pick(2000) : pick(50)));
      const int action = pick(10);
      const int record = pick(2);
      if (action < 4) { // edit a field, sometimes resolving its conflict
        const std::string field = pick(2) == 0 ? "status" : "risk";
        Change c = newChange(dev, record, field);
        c.value = std::int64_t{pick(1000)};
        const FieldState& local = dev.replica.fields[{record, field}];
        if (local.current) {
          c.baseHlc = local.current->hlc;
          c.baseDeviceId = local.current->deviceId;
        }
        if (local.hasConflict() && pick(2) == 0) {
          for (const FieldVersion& v : local.conflicts) {
            c.resolves.push_back(v.version());
          }
        }
        apply(dev.replica, c, record);
        dev.outbox.push_back(c);
        everything.push_back(c);
      } else if (action < 5) { // append a note
        Change c = newChange(dev, record, "notes");
        c.value = std::string("note ") + std::to_string(changeCounter);
        apply(dev.replica, c, record);
        dev.outbox.push_back(c);
        everything.push_back(c);
      } else if (action < 6) { // delete the record, naming what was seen
        Change c = newChange(dev, record, std::string(kRecordField));
        c.value = Tombstone{};
        const FieldState& self = dev.replica.fields[{record, std::string(kRecordField)}];
        if (self.current) {
          c.baseHlc = self.current->hlc;
          c.baseDeviceId = self.current->deviceId;
        }
        for (const auto& [key, state] : dev.replica.fields) {
          if (key.first == record && key.second != kRecordField && state.current) {
            c.resolves.push_back(state.current->version());
          }
        }
        apply(dev.replica, c, record);
        dev.outbox.push_back(c);
        everything.push_back(c);
      } else if (action < 8) { // push: a cut, shuffled, duplicated batch
        if (dev.outbox.empty()) {
          continue;
        }
        const std::size_t n =
            1 + static_cast<std::size_t>(pick(static_cast<int>(dev.outbox.size())));
        std::vector<Change> batch(dev.outbox.begin(),
                                  dev.outbox.begin() + static_cast<std::ptrdiff_t>(n));
        if (pick(3) == 0) {
          batch.push_back(batch[static_cast<std::size_t>(pick(static_cast<int>(batch.size())))]);
        }
        std::shuffle(batch.begin(), batch.end(), rng);
        for (const Change& c : batch) {
          const auto before = server.fields[{recordOf(c), c.field}];
          apply(server, c, recordOf(c));
          if (std::none_of(serverLog.begin(), serverLog.end(),
                           [&](const Change& l) { return l.changeId == c.changeId; })) {
            serverLog.push_back(c);
          }
        }
        if (pick(4) != 0) { // the ack arrived: drop what was pushed
          dev.outbox.erase(dev.outbox.begin(), dev.outbox.begin() + static_cast<std::ptrdiff_t>(n));
        }
      } else { // pull a shuffled, partial view of the server's log
        std::vector<Change> batch;
        for (const Change& c : serverLog) {
          if (pick(3) != 0) {
            batch.push_back(c);
          }
        }
        std::shuffle(batch.begin(), batch.end(), rng);
        for (const Change& c : batch) {
          (void)dev.hlc.update(c.hlc);
          apply(dev.replica, c, recordOf(c));
        }
      }
    }

    // Final sync: every outbox reaches the server, every device pulls everything.
    for (Device& dev : devices) {
      for (const Change& c : dev.outbox) {
        apply(server, c, recordOf(c));
        if (std::none_of(serverLog.begin(), serverLog.end(),
                         [&](const Change& l) { return l.changeId == c.changeId; })) {
          serverLog.push_back(c);
        }
      }
      dev.outbox.clear();
    }
    for (Device& dev : devices) {
      std::vector<Change> all = serverLog;
      std::shuffle(all.begin(), all.end(), rng);
      for (const Change& c : all) {
        apply(dev.replica, c, recordOf(c));
      }
      CHECK(dev.replica == server);
    }

    // Nothing typed is lost: every change is current, a conflict, an entry, or
    // was replaced by someone who saw it.
    for (const Change& c : everything) {
      const FieldState& s = server.fields[{recordOf(c), c.field}];
      const auto same = [&](const FieldVersion& v) { return v.changeId == c.changeId; };
      const bool kept = (s.current && same(*s.current)) ||
                        std::any_of(s.conflicts.begin(), s.conflicts.end(), same) ||
                        std::any_of(s.entries.begin(), s.entries.end(), same) ||
                        std::binary_search(s.superseded.begin(), s.superseded.end(), c.version());
      CHECK(kept);
    }
    for (const auto& [key, s] : server.fields) {
      conflictsSeen += static_cast<int>(s.conflicts.size());
    }
    ++seeds;
  }
  MESSAGE("seeds: " << seeds << ", conflicts kept for review across seeds: " << conflictsSeen);
  CHECK(conflictsSeen > 0); // the scenarios really produce concurrency
}
