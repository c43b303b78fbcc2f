#include "outpost/protocol/messages.hpp"

#include "outpost.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace outpost::protocol {

namespace {

namespace w = outpost::protocol::wire;

// ---------------------------------------------------------------------------
// Validation (shared by encode and decode)

bool validUtf8(std::string_view s) noexcept {
  // RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF.
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    // ASCII eight bytes at a time: most text on the wire is.
    if (end - p >= 8) {
      std::uint64_t word = 0;
      std::memcpy(&word, p, sizeof word);
      if ((word & 0x8080808080808080ull) == 0) {
        p += 8;
        continue;
      }
    }
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= n) {
      return false;
    }
    for (std::size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

struct Checker {
  Errc code;

  [[noreturn]] void fail(const std::string& what) const { throw Error(code, what); }

  void text(std::string_view s, std::size_t max, const char* what) const {
    if (s.size() > max) {
      fail(std::string(what) + " is longer than " + std::to_string(max) + " bytes");
    }
    if (!validUtf8(s)) {
      fail(std::string(what) + " is not valid UTF-8");
    }
  }
  void nonEmptyText(std::string_view s, std::size_t max, const char* what) const {
    if (s.empty()) {
      fail(std::string(what) + " is empty");
    }
    text(s, max, what);
  }
  void count(std::size_t n, std::size_t max, const char* what) const {
    if (n > max) {
      fail(std::string(what) + " has more than " + std::to_string(max) + " entries");
    }
  }
  void versions(std::uint16_t min, std::uint16_t max) const {
    if (min == 0 || min > max) {
      fail("the protocol version range is invalid");
    }
  }

  void value(const Value& v) const {
    if (const auto* s = std::get_if<std::string>(&v)) {
      text(*s, limits::kValueText, "a text value");
    } else if (const auto* b = std::get_if<Bytes>(&v)) {
      if (b->size() > limits::kValueBytes) {
        fail("a bytes value is too large");
      }
    } else if (const auto* l = std::get_if<std::vector<std::string>>(&v)) {
      count(l->size(), limits::kTextListItems, "a text list value");
      for (const auto& item : *l) {
        text(item, limits::kValueText, "a text list item");
      }
    }
  }
  void change(const Change& c) const {
    nonEmptyText(c.recordType, limits::kShortText, "Change.recordType");
    nonEmptyText(c.field, limits::kShortText, "Change.field");
    value(c.value);
    count(c.resolves.size(), limits::kResolves, "Change.resolves");
  }
  void changes(const std::vector<Change>& cs) const {
    count(cs.size(), limits::kChanges, "the change list");
    for (const auto& c : cs) {
      change(c);
    }
  }
  void command(const Command& c) const {
    if (const auto* p = std::get_if<PurgeRecords>(&c.action)) {
      count(p->recordIds.size(), limits::kPurgeRecords, "Command.purgeRecords");
    } else if (const auto* t = std::get_if<TemplateUpdate>(&c.action)) {
      count(t->templates.size(), limits::kTemplates, "Command.templateUpdate");
      for (const auto& doc : t->templates) {
        nonEmptyText(doc, limits::kTemplateText, "a template document");
      }
    }
  }

  void operator()(const Hello& m) const {
    versions(m.minVersion, m.maxVersion);
    nonEmptyText(m.workerId, limits::kShortText, "Hello.workerId");
    text(m.appVersion, limits::kShortText, "Hello.appVersion");
    count(m.capabilities.size(), limits::kCapabilities, "Hello.capabilities");
    for (const auto& c : m.capabilities) {
      nonEmptyText(c, limits::kShortText, "a capability");
    }
    count(m.templates.size(), limits::kTemplateRefs, "Hello.templates");
    for (const auto& t : m.templates) {
      nonEmptyText(t, limits::kShortText, "a template reference");
    }
  }
  void operator()(const HelloReply& m) const {
    if (m.version == 0) {
      fail("HelloReply.version is 0");
    }
    count(m.pendingCommands.size(), limits::kCommands, "HelloReply.pendingCommands");
    for (const auto& c : m.pendingCommands) {
      command(c);
    }
    count(m.capabilities.size(), limits::kCapabilities, "HelloReply.capabilities");
    for (const auto& c : m.capabilities) {
      nonEmptyText(c, limits::kShortText, "a capability");
    }
    count(m.teams.size(), limits::kTeams, "HelloReply.teams");
    for (const auto& t : m.teams) {
      nonEmptyText(t, limits::kShortText, "a team name");
    }
  }
  void operator()(const PushBatch& m) const { changes(m.changes); }
  void operator()(const PushAck& m) const {
    count(m.results.size(), limits::kChanges, "PushAck.results");
    for (const auto& r : m.results) {
      const bool needsReason =
          r.outcome == ChangeOutcome::rejected || r.outcome == ChangeOutcome::conflict;
      if (r.outcome == ChangeOutcome::rejected && r.reason == Errc::ok) {
        fail("a rejected change needs a reason code");
      }
      if (!needsReason && r.reason != Errc::ok) {
        fail("an applied or duplicate change has no reason code");
      }
    }
  }
  void operator()(const PullRequest& m) const {
    if (m.limit == 0 || m.limit > limits::kPullLimit) {
      fail("PullRequest.limit must be 1.." + std::to_string(limits::kPullLimit));
    }
  }
  void operator()(const PullReply& m) const { changes(m.changes); }
  void operator()(const Command& m) const { command(m); }
  void operator()(const ErrorReply& m) const {
    if (m.code == Errc::ok) {
      fail("an Error message carries code 0");
    }
    text(m.message, limits::kErrorText, "Error.message");
  }
  void operator()(const EnrollRequest& m) const {
    versions(m.minVersion, m.maxVersion);
    nonEmptyText(m.code, limits::kShortText, "EnrollRequest.code");
    text(m.appVersion, limits::kShortText, "EnrollRequest.appVersion");
  }
  void operator()(const EnrollReply& m) const {
    nonEmptyText(m.workerId, limits::kShortText, "EnrollReply.workerId");
    nonEmptyText(m.teamId, limits::kShortText, "EnrollReply.teamId");
  }
};

// ---------------------------------------------------------------------------
// C++ -> Cap'n Proto

capnp::Data::Reader asData(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const kj::byte*>(b.data()), b.size()};
}
capnp::Data::Reader asData(const Uuid& id) { return asData(std::span(id)); }
capnp::Data::Reader asData(const sync::Uuid& id) { return asData(id.bytes); }
capnp::Text::Reader asText(const std::string& s) { return {s.data(), s.size()}; }

template <typename List>
void setTexts(List list, const std::vector<std::string>& items) {
  for (unsigned i = 0; i < items.size(); ++i) {
    list.set(i, asText(items[i]));
  }
}

void build(w::Value::Builder b, const Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Null>) {
          b.setNull();
        } else if constexpr (std::is_same_v<T, Tombstone>) {
          b.setTombstone();
        } else if constexpr (std::is_same_v<T, bool>) {
          b.setBoolean(x);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          b.setInt64(x);
        } else if constexpr (std::is_same_v<T, double>) {
          b.setFloat64(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          b.setText(asText(x));
        } else if constexpr (std::is_same_v<T, Bytes>) {
          b.setBytes(asData(x));
        } else {
          setTexts(b.initTextList(static_cast<unsigned>(x.size())), x);
        }
      },
      v);
}

void build(w::Change::Builder b, const Change& c) {
  b.setChangeId(asData(c.changeId));
  b.setRecordId(asData(c.recordId));
  b.setRecordType(asText(c.recordType));
  b.setField(asText(c.field));
  build(b.initValue(), c.value);
  b.setHlc(c.hlc.value);
  b.setDeviceId(asData(c.deviceId));
  b.setBaseHlc(c.baseHlc.value);
  b.setBaseDeviceId(asData(c.baseDeviceId));
  if (!c.resolves.empty()) {
    auto rs = b.initResolves(static_cast<unsigned>(c.resolves.size()));
    for (unsigned i = 0; i < c.resolves.size(); ++i) {
      rs[i].setHlc(c.resolves[i].hlc.value);
      rs[i].setDeviceId(asData(c.resolves[i].deviceId));
    }
  }
}

void build(capnp::List<w::Change>::Builder list, const std::vector<Change>& changes) {
  for (unsigned i = 0; i < changes.size(); ++i) {
    build(list[i], changes[i]);
  }
}

/// What the compact PushAck layout leaves out.
bool plainApplied(const ChangeResult& r) noexcept {
  return r.outcome == ChangeOutcome::applied && r.reason == Errc::ok &&
         sync::Uuid(r.changeId).isNil();
}

/// The changes as RecordWrites: each run of consecutive changes of one write
/// becomes one RecordWrite. `init` makes the list once its length is known.
template <typename Init>
void buildWrites(Init init, const std::vector<Change>& changes) {
  std::vector<std::pair<std::size_t, std::size_t>> runs; // [first, last)
  for (std::size_t i = 0; i < changes.size(); ++i) {
    if (runs.empty() || !sameWrite(changes[runs.back().first], changes[i])) {
      runs.emplace_back(i, i);
    }
    runs.back().second = i + 1;
  }
  auto list = init(static_cast<unsigned>(runs.size()));
  for (unsigned k = 0; k < runs.size(); ++k) {
    const auto [first, last] = runs[k];
    const Change& head = changes[first];
    auto wb = list[k];
    wb.setRecordId(asData(head.recordId));
    wb.setRecordType(asText(head.recordType));
    wb.setHlc(head.hlc.value);
    wb.setDeviceId(asData(head.deviceId));
    auto fields = wb.initFields(static_cast<unsigned>(last - first));
    for (std::size_t i = first; i < last; ++i) {
      const Change& c = changes[i];
      auto fb = fields[static_cast<unsigned>(i - first)];
      fb.setField(asText(c.field));
      build(fb.initValue(), c.value);
      fb.setBaseHlc(c.baseHlc.value);
      if (!c.baseHlc.isZero() || !c.baseDeviceId.isNil()) {
        fb.setBaseDeviceId(asData(c.baseDeviceId));
      }
      if (!c.resolves.empty()) {
        auto rs = fb.initResolves(static_cast<unsigned>(c.resolves.size()));
        for (unsigned j = 0; j < c.resolves.size(); ++j) {
          rs[j].setHlc(c.resolves[j].hlc.value);
          rs[j].setDeviceId(asData(c.resolves[j].deviceId));
        }
      }
      if (!c.changeId.isNil()) {
        fb.setChangeId(asData(c.changeId));
      }
    }
  }
}

void build(w::Command::Builder b, const Command& c) {
  b.setCommandId(asData(c.commandId));
  if (std::holds_alternative<Wipe>(c.action)) {
    b.setWipe();
  } else if (const auto* p = std::get_if<PurgeRecords>(&c.action)) {
    auto ids = b.initPurgeRecords(static_cast<unsigned>(p->recordIds.size()));
    for (unsigned i = 0; i < p->recordIds.size(); ++i) {
      ids.set(i, asData(p->recordIds[i]));
    }
  } else {
    const auto& t = std::get<TemplateUpdate>(c.action);
    setTexts(b.initTemplateUpdate(static_cast<unsigned>(t.templates.size())), t.templates);
  }
}

void build(w::Envelope::Builder env, const Message& message, const EncodeOptions& options) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, Hello>) {
          auto b = env.initHello();
          b.setMinVersion(m.minVersion);
          b.setMaxVersion(m.maxVersion);
          b.setDeviceId(asData(m.deviceId));
          b.setWorkerId(asText(m.workerId));
          b.setAppVersion(asText(m.appVersion));
          b.setHlc(m.hlc);
          setTexts(b.initCapabilities(static_cast<unsigned>(m.capabilities.size())),
                   m.capabilities);
          if (!m.templates.empty()) {
            setTexts(b.initTemplates(static_cast<unsigned>(m.templates.size())), m.templates);
          }
        } else if constexpr (std::is_same_v<T, HelloReply>) {
          auto b = env.initHelloReply();
          b.setVersion(m.version);
          b.setServerHlc(m.serverHlc);
          auto cmds = b.initPendingCommands(static_cast<unsigned>(m.pendingCommands.size()));
          for (unsigned i = 0; i < m.pendingCommands.size(); ++i) {
            build(cmds[i], m.pendingCommands[i]);
          }
          setTexts(b.initCapabilities(static_cast<unsigned>(m.capabilities.size())),
                   m.capabilities);
          if (!m.teams.empty()) {
            setTexts(b.initTeams(static_cast<unsigned>(m.teams.size())), m.teams);
          }
        } else if constexpr (std::is_same_v<T, PushBatch>) {
          auto b = env.initPushBatch();
          b.setBatchId(asData(m.batchId));
          if (options.recordWrites) {
            buildWrites([&](unsigned n) { return b.initWrites(n); }, m.changes);
          } else {
            build(b.initChanges(static_cast<unsigned>(m.changes.size())), m.changes);
          }
        } else if constexpr (std::is_same_v<T, PushAck>) {
          auto b = env.initPushAck();
          b.setBatchId(asData(m.batchId));
          const auto setResult = [](w::ChangeResult::Builder r, const ChangeResult& x) {
            r.setChangeId(asData(x.changeId));
            r.setOutcome(static_cast<w::ChangeOutcome>(x.outcome));
            r.setReason(static_cast<std::uint16_t>(x.reason));
          };
          if (options.compactAcks && !m.results.empty()) {
            std::vector<unsigned> at;
            for (unsigned i = 0; i < m.results.size(); ++i) {
              if (!plainApplied(m.results[i])) {
                at.push_back(i);
              }
            }
            b.setCount(static_cast<std::uint32_t>(m.results.size()));
            auto xs = b.initExceptions(static_cast<unsigned>(at.size()));
            for (unsigned k = 0; k < at.size(); ++k) {
              xs[k].setIndex(at[k]);
              setResult(xs[k].initResult(), m.results[at[k]]);
            }
          } else {
            auto rs = b.initResults(static_cast<unsigned>(m.results.size()));
            for (unsigned i = 0; i < m.results.size(); ++i) {
              setResult(rs[i], m.results[i]);
            }
          }
        } else if constexpr (std::is_same_v<T, PullRequest>) {
          auto b = env.initPullRequest();
          b.setCursor(m.cursor);
          b.setLimit(m.limit);
        } else if constexpr (std::is_same_v<T, PullReply>) {
          auto b = env.initPullReply();
          if (options.recordWrites) {
            buildWrites([&](unsigned n) { return b.initWrites(n); }, m.changes);
          } else {
            build(b.initChanges(static_cast<unsigned>(m.changes.size())), m.changes);
          }
          b.setNextCursor(m.nextCursor);
          b.setMore(m.more);
        } else if constexpr (std::is_same_v<T, Command>) {
          build(env.initCommand(), m);
        } else if constexpr (std::is_same_v<T, ErrorReply>) {
          auto b = env.initError();
          b.setCode(static_cast<std::uint16_t>(m.code));
          b.setMessage(asText(m.message));
        } else if constexpr (std::is_same_v<T, EnrollRequest>) {
          auto b = env.initEnrollRequest();
          b.setCode(asText(m.code));
          b.setAppVersion(asText(m.appVersion));
          b.setMinVersion(m.minVersion);
          b.setMaxVersion(m.maxVersion);
        } else {
          static_assert(std::is_same_v<T, EnrollReply>);
          auto b = env.initEnrollReply();
          b.setDeviceId(asData(m.deviceId));
          b.setWorkerId(asText(m.workerId));
          b.setTeamId(asText(m.teamId));
          b.setServerHlc(m.serverHlc);
        }
      },
      message);
}

// ---------------------------------------------------------------------------
// Cap'n Proto -> C++ (every read may throw kj::Exception; decode() converts)

[[noreturn]] void refuse(const std::string& what) { throw Error(Errc::protocol, what); }

Uuid uuid(capnp::Data::Reader d, const char* what) {
  if (d.size() != 16) {
    refuse(std::string(what) + " is not a 16-byte UUID");
  }
  Uuid u{};
  std::memcpy(u.data(), d.begin(), 16);
  return u;
}

std::string str(capnp::Text::Reader t) { return {t.begin(), t.size()}; }

std::vector<std::string> strs(capnp::List<capnp::Text>::Reader list, std::size_t max,
                              const char* what) {
  if (list.size() > max) {
    refuse(std::string(what) + " has too many entries");
  }
  std::vector<std::string> out;
  out.reserve(list.size());
  for (auto t : list) {
    out.push_back(str(t));
  }
  return out;
}

Value read(w::Value::Reader r) {
  switch (r.which()) {
  case w::Value::NULL_:
    return Null{};
  case w::Value::TOMBSTONE:
    return Tombstone{};
  case w::Value::BOOLEAN:
    return r.getBoolean();
  case w::Value::INT64:
    return r.getInt64();
  case w::Value::FLOAT64:
    return r.getFloat64();
  case w::Value::TEXT:
    return str(r.getText());
  case w::Value::BYTES: {
    auto d = r.getBytes();
    return Bytes(d.begin(), d.end());
  }
  case w::Value::TEXT_LIST:
    return strs(r.getTextList(), limits::kTextListItems, "a text list value");
  }
  refuse("a value has an unknown type");
}

/// A change's UUID.
sync::Uuid id(capnp::Data::Reader d, const char* what) { return sync::Uuid{uuid(d, what)}; }

template <typename ResolvesReader>
void readResolves(ResolvesReader rs, std::vector<sync::VersionId>& out, const char* what,
                  const char* idWhat) {
  if (rs.size() > limits::kResolves) {
    refuse(std::string(what) + " has too many entries");
  }
  out.reserve(rs.size());
  for (auto v : rs) {
    out.push_back({sync::Hlc{v.getHlc()}, id(v.getDeviceId(), idWhat)});
  }
}

/// Reads into `c` (a new element of the output: changes are made in place).
void read(w::Change::Reader r, Change& c) {
  c.changeId = id(r.getChangeId(), "Change.changeId");
  c.recordId = id(r.getRecordId(), "Change.recordId");
  c.recordType = str(r.getRecordType());
  c.field = str(r.getField());
  if (!r.hasValue()) {
    refuse("a change has no value");
  }
  c.value = read(r.getValue());
  c.hlc = sync::Hlc{r.getHlc()};
  c.deviceId = id(r.getDeviceId(), "Change.deviceId");
  c.baseHlc = sync::Hlc{r.getBaseHlc()};
  // Absent in messages from older peers: zero / empty.
  if (r.hasBaseDeviceId()) {
    c.baseDeviceId = id(r.getBaseDeviceId(), "Change.baseDeviceId");
  }
  if (r.hasResolves()) {
    readResolves(r.getResolves(), c.resolves, "Change.resolves", "Change.resolves[].deviceId");
  }
}

std::vector<Change> read(capnp::List<w::Change>::Reader list) {
  if (list.size() > limits::kChanges) {
    refuse("the change list has too many entries");
  }
  std::vector<Change> out;
  out.reserve(list.size());
  for (auto c : list) {
    read(c, out.emplace_back());
  }
  return out;
}

/// The changes of RecordWrites, in order; counted before any is made.
std::vector<Change> read(capnp::List<w::RecordWrite>::Reader writes) {
  std::size_t total = 0;
  for (auto wr : writes) {
    total += wr.getFields().size();
    if (total > limits::kChanges) {
      refuse("the change list has too many entries");
    }
  }
  std::vector<Change> out;
  out.reserve(total);
  for (auto wr : writes) {
    const sync::Uuid recordId = id(wr.getRecordId(), "RecordWrite.recordId");
    const sync::Uuid deviceId = id(wr.getDeviceId(), "RecordWrite.deviceId");
    const auto recordType = wr.getRecordType();
    const sync::Hlc hlc{wr.getHlc()};
    if (wr.getFields().size() == 0) {
      refuse("a record write has no fields");
    }
    for (auto f : wr.getFields()) {
      Change& c = out.emplace_back();
      c.recordId = recordId;
      c.recordType.assign(recordType.begin(), recordType.size());
      c.hlc = hlc;
      c.deviceId = deviceId;
      const auto field = f.getField();
      c.field.assign(field.begin(), field.size());
      if (!f.hasValue()) {
        refuse("a field write has no value");
      }
      c.value = read(f.getValue());
      c.baseHlc = sync::Hlc{f.getBaseHlc()};
      if (f.hasBaseDeviceId()) {
        c.baseDeviceId = id(f.getBaseDeviceId(), "FieldWrite.baseDeviceId");
      }
      if (f.hasResolves()) {
        readResolves(f.getResolves(), c.resolves, "FieldWrite.resolves",
                     "FieldWrite.resolves[].deviceId");
      }
      if (f.hasChangeId()) {
        c.changeId = id(f.getChangeId(), "FieldWrite.changeId");
      }
    }
  }
  return out;
}

/// A change list that may come in either form (never both).
template <typename Reader>
std::vector<Change> readChanges(Reader r, const char* what) {
  if (r.hasWrites()) {
    if (r.hasChanges() && r.getChanges().size() != 0) {
      refuse(std::string(what) + " carries both changes and writes");
    }
    return read(r.getWrites());
  }
  return read(r.getChanges());
}

Command read(w::Command::Reader r) {
  Command c;
  c.commandId = uuid(r.getCommandId(), "Command.commandId");
  switch (r.which()) {
  case w::Command::WIPE:
    c.action = Wipe{};
    return c;
  case w::Command::PURGE_RECORDS: {
    auto ids = r.getPurgeRecords();
    if (ids.size() > limits::kPurgeRecords) {
      refuse("Command.purgeRecords has too many entries");
    }
    PurgeRecords p;
    p.recordIds.reserve(ids.size());
    for (auto id : ids) {
      p.recordIds.push_back(uuid(id, "a purged record id"));
    }
    c.action = std::move(p);
    return c;
  }
  case w::Command::TEMPLATE_UPDATE:
    c.action = TemplateUpdate{strs(r.getTemplateUpdate(), limits::kTemplates, "templateUpdate")};
    return c;
  }
  refuse("a command has an unknown type; update the app");
}

Errc errc(std::uint16_t n) { return static_cast<Errc>(n); }

Message read(w::Envelope::Reader env) {
  switch (env.which()) {
  case w::Envelope::HELLO: {
    auto r = env.getHello();
    Hello m;
    m.minVersion = r.getMinVersion();
    m.maxVersion = r.getMaxVersion();
    m.deviceId = uuid(r.getDeviceId(), "Hello.deviceId");
    m.workerId = str(r.getWorkerId());
    m.appVersion = str(r.getAppVersion());
    m.hlc = r.getHlc();
    m.capabilities = strs(r.getCapabilities(), limits::kCapabilities, "Hello.capabilities");
    m.templates = strs(r.getTemplates(), limits::kTemplateRefs, "Hello.templates");
    return m;
  }
  case w::Envelope::HELLO_REPLY: {
    auto r = env.getHelloReply();
    HelloReply m;
    m.version = r.getVersion();
    m.serverHlc = r.getServerHlc();
    auto cmds = r.getPendingCommands();
    if (cmds.size() > limits::kCommands) {
      refuse("HelloReply.pendingCommands has too many entries");
    }
    for (auto c : cmds) {
      m.pendingCommands.push_back(read(c));
    }
    m.capabilities = strs(r.getCapabilities(), limits::kCapabilities, "HelloReply.capabilities");
    m.teams = strs(r.getTeams(), limits::kTeams, "HelloReply.teams");
    return m;
  }
  case w::Envelope::PUSH_BATCH: {
    auto r = env.getPushBatch();
    return PushBatch{uuid(r.getBatchId(), "PushBatch.batchId"), readChanges(r, "PushBatch")};
  }
  case w::Envelope::PUSH_ACK: {
    auto r = env.getPushAck();
    PushAck m;
    m.batchId = uuid(r.getBatchId(), "PushAck.batchId");
    const auto result = [](w::ChangeResult::Reader x) {
      const auto outcome = static_cast<std::uint16_t>(x.getOutcome());
      if (outcome > static_cast<std::uint16_t>(ChangeOutcome::rejected)) {
        refuse("a change result has an unknown outcome");
      }
      return ChangeResult{uuid(x.getChangeId(), "ChangeResult.changeId"),
                          static_cast<ChangeOutcome>(outcome), errc(x.getReason())};
    };
    auto rs = r.getResults();
    auto xs = r.getExceptions();
    if (rs.size() > limits::kChanges || r.getCount() > limits::kChanges) {
      refuse("PushAck.results has too many entries");
    }
    if (r.getCount() == 0) {
      if (xs.size() != 0) {
        refuse("PushAck.exceptions without a count");
      }
      m.results.reserve(rs.size());
      for (auto x : rs) {
        m.results.push_back(result(x));
      }
      return m;
    }
    // The compact layout: every result not listed is applied, reason 0, zero id.
    if (rs.size() != 0) {
      refuse("a PushAck has both results and a count");
    }
    if (xs.size() > r.getCount()) {
      refuse("PushAck.exceptions has more entries than the count");
    }
    m.results.resize(r.getCount());
    std::uint64_t next = 0; // positions strictly increase
    for (auto x : xs) {
      if (x.getIndex() < next || x.getIndex() >= r.getCount()) {
        refuse("PushAck.exceptions are out of order or out of range");
      }
      next = std::uint64_t{x.getIndex()} + 1;
      if (!x.hasResult()) {
        refuse("a PushAck exception has no result");
      }
      m.results[x.getIndex()] = result(x.getResult());
    }
    return m;
  }
  case w::Envelope::PULL_REQUEST: {
    auto r = env.getPullRequest();
    return PullRequest{r.getCursor(), r.getLimit()};
  }
  case w::Envelope::PULL_REPLY: {
    auto r = env.getPullReply();
    return PullReply{readChanges(r, "PullReply"), r.getNextCursor(), r.getMore()};
  }
  case w::Envelope::COMMAND:
    return read(env.getCommand());
  case w::Envelope::ERROR: {
    auto r = env.getError();
    return ErrorReply{errc(r.getCode()), str(r.getMessage())};
  }
  case w::Envelope::ENROLL_REQUEST: {
    auto r = env.getEnrollRequest();
    return EnrollRequest{str(r.getCode()), str(r.getAppVersion()), r.getMinVersion(),
                         r.getMaxVersion()};
  }
  case w::Envelope::ENROLL_REPLY: {
    auto r = env.getEnrollReply();
    return EnrollReply{uuid(r.getDeviceId(), "EnrollReply.deviceId"), str(r.getWorkerId()),
                       str(r.getTeamId()), r.getServerHlc()};
  }
  }
  refuse("a message of an unknown type arrived; update the app or the server");
}

} // namespace

void validate(const Message& message, Errc code) { std::visit(Checker{code}, message); }

bool sameWrite(const Change& a, const Change& b) noexcept {
  return a.hlc == b.hlc && a.recordId == b.recordId && a.deviceId == b.deviceId &&
         a.recordType == b.recordType;
}

Bytes encode(const Message& message, const EncodeOptions& options) {
  validate(message, Errc::invalid_argument);
  capnp::MallocMessageBuilder builder;
  build(builder.initRoot<w::Envelope>(), message, options);
  // The receiver's traversal limit bounds the unpacked size; packing may hide it.
  const std::size_t words = capnp::computeSerializedSizeInWords(builder);
  if (words > limits::kTraversalWords) {
    throw Error(Errc::invalid_argument, "the message is larger than 16 MiB; split it");
  }
  // Room for the packed bytes from the start (packing rarely adds to the unpacked
  // size): a large batch is not copied again at every doubling.
  kj::VectorOutputStream out(words * sizeof(capnp::word) + 64);
  capnp::writePackedMessage(out, builder);
  auto bytes = out.getArray();
  if (bytes.size() > limits::kMessageBytes) {
    throw Error(Errc::invalid_argument, "the message is larger than 16 MiB; split it");
  }
  return Bytes(bytes.begin(), bytes.end());
}

Message decode(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) {
    refuse("an empty message arrived");
  }
  if (bytes.size() > limits::kMessageBytes) {
    refuse("a message larger than 16 MiB arrived");
  }
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits::kTraversalWords;
  options.nestingLimit = limits::kNestingLimit;
  try {
    kj::ArrayInputStream in(kj::ArrayPtr<const kj::byte>(bytes.data(), bytes.size()));
    Message message = [&] {
      capnp::PackedMessageReader reader(in, options);
      return read(reader.getRoot<w::Envelope>());
    }();
    if (in.tryGetReadBuffer().size() != 0) {
      refuse("a message has trailing bytes");
    }
    validate(message, Errc::protocol);
    return message;
  } catch (const kj::Exception& e) {
    // The description names the structural problem, never the contents.
    refuse("a malformed message arrived (" + std::string(e.getDescription().cStr()) + ")");
  }
}

std::optional<std::uint16_t> negotiateVersion(std::uint16_t peerMin,
                                              std::uint16_t peerMax) noexcept {
  const auto lo = std::max(peerMin, kProtocolVersionMin);
  const auto hi = std::min(peerMax, kProtocolVersionMax);
  if (peerMin > peerMax || lo > hi) {
    return std::nullopt;
  }
  return hi;
}

std::uint16_t requireVersion(std::uint16_t peerMin, std::uint16_t peerMax) {
  if (auto v = negotiateVersion(peerMin, peerMax)) {
    return *v;
  }
  const std::string ours =
      std::to_string(kProtocolVersionMin) + ".." + std::to_string(kProtocolVersionMax);
  const std::string theirs = std::to_string(peerMin) + ".." + std::to_string(peerMax);
  const char* advice = peerMax < kProtocolVersionMin ? "the peer is too old; update it"
                                                     : "this side is too old; update it";
  throw Error(Errc::version_mismatch, "protocol versions do not overlap (peer speaks " + theirs +
                                          ", we speak " + ours + "): " + advice);
}

std::string_view messageName(const Message& message) noexcept {
  static constexpr std::string_view names[] = {
      "hello",     "helloReply", "pushBatch", "pushAck",       "pullRequest",
      "pullReply", "command",    "error",     "enrollRequest", "enrollReply"};
  return names[message.index()];
}

Message throwIfError(Message message) {
  if (const auto* e = std::get_if<ErrorReply>(&message)) {
    throw Error(e->code, "the peer refused: " + e->message);
  }
  return message;
}

} // namespace outpost::protocol
