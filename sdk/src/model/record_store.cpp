// The record core: one write path (values + journal + audit in one vault
// transaction), reads, views, exports and queries.

#include "record_store_impl.hpp"
#include "record_validation.hpp"

#include <outpost/error.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <utility>

namespace outpost::model {

void registerSafeguardingTypes(Schema& schema);

namespace {

using sync::StringList;

constexpr const char* kCreateTables = R"sql(
CREATE TABLE IF NOT EXISTS store_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records(
  rid INTEGER PRIMARY KEY,
  id BLOB NOT NULL UNIQUE,
  type TEXT NOT NULL,
  status TEXT,
  risk TEXT,
  due_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  created_hlc INTEGER NOT NULL,
  device BLOB NOT NULL,
  sync_state INTEGER NOT NULL DEFAULT 0,
  sync_reason TEXT,
  conflicts INTEGER NOT NULL DEFAULT 0,
  fields BLOB NOT NULL,
  clocks BLOB);
CREATE INDEX IF NOT EXISTS records_type_idx ON records(type, status);
CREATE INDEX IF NOT EXISTS records_risk_idx ON records(risk, type) WHERE risk IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_due_idx ON records(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_rejected_idx ON records(rid) WHERE sync_state = 3;
CREATE TABLE IF NOT EXISTS record_links(target BLOB NOT NULL, rid INTEGER NOT NULL,
  PRIMARY KEY(target, rid)) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS record_text USING fts5(body);
CREATE TABLE IF NOT EXISTS field_names(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
)sql";

/// The columns recordFromRow reads, from rid on.
#define OUTPOST_SELECT_RECORD                                                                      \
  "SELECT rid, id, type, fields, clocks, created_hlc, device, created_at, "                        \
  "updated_at, " OUTPOST_SYNC_STATE_OF_R " FROM records r "
constexpr const char* kSelectRecord = OUTPOST_SELECT_RECORD "WHERE id = ?1";
/// By row number, with the id checked (rowOfId holds hints).
constexpr const char* kSelectRecordAt = OUTPOST_SELECT_RECORD "WHERE rid = ?1 AND id = ?2";
#undef OUTPOST_SELECT_RECORD
constexpr const char* kSelectType = "SELECT type FROM records WHERE id = ?1";
constexpr const char* kIdTaken = "a record with this id exists";
constexpr const char* kInsertRecord =
    "INSERT INTO records(id, type, status, risk, due_at, created_at, updated_at, created_hlc, "
    "device, fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9)";
constexpr const char* kUpdateRecord =
    "UPDATE records SET status = ?2, risk = ?3, due_at = ?4, updated_at = ?5, fields = ?6, "
    "clocks = ?7 WHERE rid = ?1";
constexpr const char* kDeleteLinks = "DELETE FROM record_links WHERE rid = ?1";
constexpr const char* kInsertLink =
    "INSERT OR IGNORE INTO record_links(target, rid) VALUES (?1, ?2)";
constexpr const char* kDeleteText = "DELETE FROM record_text WHERE rowid = ?1";
constexpr const char* kInsertText = "INSERT INTO record_text(rowid, body) VALUES (?1, ?2)";

const std::string* textOf(const FieldValues& f, std::string_view name) {
  const auto it = f.find(name);
  return it == f.end() ? nullptr : std::get_if<std::string>(&it->second);
}

void bindOptionalText(sql::Statement& s, int index, const std::string* text) {
  if (text) {
    s.bind(index, std::string_view(*text));
  } else {
    s.bindNull(index);
  }
}

} // namespace

/// Clocks of fields written after creation: field -> 8-byte HLC + 16-byte device.
std::string encodeClocks(const std::map<std::string, FieldClock, std::less<>>& clocks) {
  FieldValues packed;
  for (const auto& [name, c] : clocks) {
    sync::Bytes b(24);
    for (int k = 0; k < 8; ++k) {
      b[static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(c.hlc.value >> (56 - 8 * k));
    }
    std::copy(c.device.bytes.begin(), c.device.bytes.end(), b.begin() + 8);
    packed.emplace(name, std::move(b));
  }
  return sync::encodeFields(packed);
}

std::map<std::string, FieldClock, std::less<>> decodeClocks(std::string_view raw) {
  std::map<std::string, FieldClock, std::less<>> clocks;
  for (auto& [name, v] : sync::decodeFields(raw)) {
    const auto* b = std::get_if<sync::Bytes>(&v);
    if (!b || b->size() != 24) {
      throw Error(Errc::corrupt, "a stored field clock is malformed");
    }
    FieldClock c;
    for (int k = 0; k < 8; ++k) {
      c.hlc.value = (c.hlc.value << 8) | (*b)[static_cast<std::size_t>(k)];
    }
    std::copy(b->begin() + 8, b->end(), c.device.bytes.begin());
    clocks.emplace(name, c);
  }
  return clocks;
}

Record recordFromRow(const sql::Statement& s, int at, const sync::FieldNameCodec& names,
                     bool withFields) {
  Record r;
  r.id = uuidColumn(s, at + 1);
  r.type = std::string(s.columnText(at + 2));
  if (withFields) {
    const auto fields = s.columnBlob(at + 3);
    r.fields =
        sync::decodeFields({reinterpret_cast<const char*>(fields.data()), fields.size()}, names);
  }
  if (!s.columnIsNull(at + 4)) {
    const auto clocks = s.columnBlob(at + 4);
    r.changedClocks = decodeClocks({reinterpret_cast<const char*>(clocks.data()), clocks.size()});
  }
  r.createdHlc = Hlc{static_cast<std::uint64_t>(s.columnInt(at + 5))};
  r.device = uuidColumn(s, at + 6);
  r.createdAtMs = s.columnInt(at + 7);
  r.updatedAtMs = s.columnInt(at + 8);
  r.syncState = static_cast<SyncState>(s.columnInt(at + 9));
  return r;
}

namespace {

std::string searchText(const EntityType& type, const FieldValues& fields) {
  std::string body;
  for (const std::string& name : type.searchFields) {
    if (const std::string* t = textOf(fields, name)) {
      body += (body.empty() ? "" : "\n") + *t;
    }
  }
  return body;
}

/// Every record id that the record's reference fields point to.
std::vector<Uuid> referencedIds(const Schema& schema, const EntityType& type,
                                const FieldValues& fields) {
  std::vector<Uuid> ids;
  for (const std::string& name : schema.referenceFields(type)) {
    const auto it = fields.find(name);
    if (it == fields.end()) {
      continue;
    }
    if (const auto* s = std::get_if<std::string>(&it->second)) {
      if (auto id = Uuid::parse(*s)) {
        ids.push_back(*id);
      }
    } else if (const auto* l = std::get_if<StringList>(&it->second)) {
      for (const std::string& item : *l) {
        if (auto id = Uuid::parse(item)) {
          ids.push_back(*id);
        }
      }
    }
  }
  return ids;
}

bool touchesReferences(const Schema& schema, const EntityType& type, const FieldValues& changed) {
  const auto& refs = schema.referenceFields(type);
  return std::any_of(refs.begin(), refs.end(),
                     [&](const std::string& name) { return changed.contains(name); });
}

/// Audit detail of a write: field names for a create, old and new values for an edit.
std::string auditDetail(const FieldValues* before, const FieldValues& changed) {
  std::string d;
  if (before == nullptr) {
    // The values of a new record are in the record and its journal; the event
    // says how many fields it was created with.
    return "{\"fields\":" + std::to_string(changed.size()) + "}";
  }
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, value] : changed) {
    const auto old = before->find(name);
    j[name] = {{"old", nlohmann::json::parse(old == before->end() ? std::string("null")
                                                                  : sync::toJson(old->second))},
               {"new", nlohmann::json::parse(sync::toJson(value))}};
  }
  return j.dump();
}

std::string encodeCursor(std::int64_t key, std::int64_t rid) {
  return std::to_string(key) + ":" + std::to_string(rid);
}

bool decodeCursor(std::string_view text, std::int64_t& key, std::int64_t& rid) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return false;
  }
  const auto a = std::from_chars(text.data(), text.data() + colon, key);
  const auto b = std::from_chars(text.data() + colon + 1, text.data() + text.size(), rid);
  return a.ec == std::errc{} && b.ec == std::errc{} && a.ptr == text.data() + colon &&
         b.ptr == text.data() + text.size();
}

} // namespace

Uuid uuidColumn(const sql::Statement& s, int column) {
  const auto id = Uuid::fromBytes(s.columnBlob(column));
  if (!id) {
    throw Error(Errc::corrupt, "a stored record id is malformed");
  }
  return *id;
}

// ---------------------------------------------------------------------------
// Impl
// ---------------------------------------------------------------------------

FieldNames::FieldNames() {
  codec_.number = [this](std::string_view n) { return number(n); };
  codec_.name = [this](std::uint64_t k) { return name(k); };
  codec_.known = &byNumber_;
}

void FieldNames::load(sql::Database& db) {
  db_ = &db;
  strings_.clear();
  names_.clear();
  numbers_.clear();
  byNumber_.clear();
  added_.clear();
  sql::Statement s(db, "SELECT id, name FROM field_names");
  while (s.step()) {
    (void)remember(static_cast<std::uint64_t>(s.columnInt(0)), std::string(s.columnText(1)));
  }
}

const std::string& FieldNames::remember(std::uint64_t number, std::string name) {
  if (const auto it = names_.find(number); it != names_.end()) {
    numbers_.erase(std::string_view(*it->second)); // that name no longer has this number
  }
  const std::string& kept = strings_.emplace_back(std::move(name));
  names_.insert_or_assign(number, &kept);
  numbers_.insert_or_assign(std::string_view(kept), number);
  constexpr std::uint64_t kIndexed = 1 << 16;
  if (number < kIndexed) {
    if (number >= byNumber_.size()) {
      byNumber_.resize(static_cast<std::size_t>(number) + 1);
    }
    byNumber_[static_cast<std::size_t>(number)] = {&kept, sync::nameOrderKey(kept)};
  }
  return kept;
}

std::uint64_t FieldNames::number(std::string_view name) {
  if (const auto it = numbers_.find(name); it != numbers_.end()) {
    return it->second;
  }
  if (db_ == nullptr) {
    throw Error(Errc::internal, "the record store's field names are not loaded");
  }
  // Another store on this vault may have added it; otherwise it is added now, in
  // the open write transaction.
  sql::Statement find(*db_, "SELECT id FROM field_names WHERE name = ?1");
  find.bind(1, name);
  if (find.step()) {
    const auto n = static_cast<std::uint64_t>(find.columnInt(0));
    (void)remember(n, std::string(name));
    return n;
  }
  sql::Statement(*db_, "INSERT INTO field_names(name) VALUES (?1)").bind(1, name).run();
  const auto n = static_cast<std::uint64_t>(db_->lastInsertRowid());
  (void)remember(n, std::string(name));
  added_.push_back(n);
  return n;
}

const std::string* FieldNames::name(std::uint64_t number) {
  if (number < byNumber_.size() && byNumber_[static_cast<std::size_t>(number)].name != nullptr) {
    return byNumber_[static_cast<std::size_t>(number)].name;
  }
  if (const auto it = names_.find(number); it != names_.end()) {
    return it->second;
  }
  if (db_ == nullptr || number > static_cast<std::uint64_t>(INT64_MAX)) {
    return nullptr;
  }
  sql::Statement find(*db_, "SELECT name FROM field_names WHERE id = ?1");
  find.bind(1, static_cast<std::int64_t>(number));
  return find.step() ? &remember(number, std::string(find.columnText(0))) : nullptr;
}

void FieldNames::rollback() noexcept {
  for (const std::uint64_t n : added_) {
    if (n < byNumber_.size()) {
      byNumber_[static_cast<std::size_t>(n)] = {};
    }
    if (const auto it = names_.find(n); it != names_.end()) {
      numbers_.erase(std::string_view(*it->second));
      names_.erase(it);
    }
  }
  added_.clear();
}

void PendingWrites::load(sql::Database& db) {
  clear();
  sql::Statement s(db, "SELECT rid, count(*) FROM journal GROUP BY rid");
  while (s.step()) {
    addCommitted(s.columnInt(0), s.columnInt(1));
  }
}

std::int64_t PendingWrites::committed(std::int64_t rid) const {
  if (rid >= 0 && rid < kDenseRids) {
    const auto k = static_cast<std::size_t>(rid);
    return k < dense_.size() ? dense_[k] : 0;
  }
  const auto it = sparse_.find(rid);
  return it == sparse_.end() ? 0 : it->second;
}

void PendingWrites::growDenseFor(std::int64_t rid) {
  if (rid >= 0 && rid < kDenseRids && static_cast<std::size_t>(rid) >= dense_.size()) {
    dense_.resize(std::min(std::max(static_cast<std::size_t>(rid) + 1, dense_.size() * 2),
                           std::size_t{kDenseRids}),
                  0);
  }
}

void PendingWrites::addCommitted(std::int64_t rid, std::int64_t n) {
  const std::int64_t now = std::max<std::int64_t>(0, committed(rid) + n);
  if (rid >= 0 && rid < kDenseRids) {
    const auto k = static_cast<std::size_t>(rid);
    if (k >= dense_.size() && now == 0) {
      return;
    }
    growDenseFor(rid);
    dense_[k] = static_cast<std::uint32_t>(
        std::min<std::int64_t>(now, std::numeric_limits<std::uint32_t>::max()));
  } else if (now == 0) {
    sparse_.erase(rid);
  } else {
    sparse_[rid] = now;
  }
}

std::int64_t PendingWrites::count(std::int64_t rid) const {
  std::int64_t n = committed(rid);
  if (!open_.empty()) {
    if (const auto it = open_.find(rid); it != open_.end()) {
      n += it->second;
    }
  }
  return n;
}

void PendingWrites::add(std::int64_t rid, std::int64_t n) { open_[rid] += n; }

void PendingWrites::removeAll(std::int64_t rid) { open_[rid] -= count(rid); }

bool PendingWrites::has(std::int64_t rid) const { return count(rid) > 0; }

void PendingWrites::commit() {
  // The vector grows first, so that no count is applied twice if it cannot.
  std::int64_t top = -1;
  for (const auto& [rid, n] : open_) {
    if (rid < kDenseRids && n > 0) {
      top = std::max(top, rid);
    }
  }
  growDenseFor(top);
  const auto applied = std::exchange(open_, {});
  for (const auto& [rid, n] : applied) {
    addCommitted(rid, n);
  }
}

void PendingWrites::rollback() noexcept { open_.clear(); }

void PendingWrites::clear() noexcept {
  dense_.clear();
  sparse_.clear();
  open_.clear();
}

namespace {

/// outpost_pending(rid): whether the record has writes in the journal.
void pendingFunction(sqlite3_context* ctx, int, sqlite3_value** args) {
  const auto* impl = static_cast<const RecordStore::Impl*>(sqlite3_user_data(ctx));
  sqlite3_result_int(ctx, impl->pending.has(sqlite3_value_int64(args[0])) ? 1 : 0);
}

} // namespace

void RecordStore::Impl::attach(sql::Database& db) {
  // A new connection (the vault was locked and unlocked): the old statements
  // belong to a closed connection, and the journal may have changed meanwhile.
  dropStatements();
  if (sqlite3_create_function_v2(db.handle(), "outpost_pending", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY,
                                 this, pendingFunction, nullptr, nullptr, nullptr) != SQLITE_OK) {
    throw Error(Errc::internal, "could not register the record store's SQL function");
  }
  pending.load(db);
  fieldNames.load(db);
  rowOfId.clear();
  if (options.memoryIdIndexLimit > 0) {
    // SQLite reads these from the id index (it holds both columns): far fewer
    // pages than the table.
    sql::Statement s(db, "SELECT id, rid FROM records LIMIT ?1");
    s.bind(1, static_cast<std::int64_t>(options.memoryIdIndexLimit));
    while (s.step()) {
      if (const auto id = sync::Uuid::fromBytes(s.columnBlob(0))) {
        rowOfId.put(*id, s.columnInt(1), options.memoryIdIndexLimit);
      }
    }
  }
  cachedFor_ = db.handle();
}

void RecordStore::Impl::rememberRow(const Uuid& id, std::int64_t rid) {
  rowOfId.put(id, rid, options.memoryIdIndexLimit);
}

sql::Statement& RecordStore::Impl::stmt(sql::Database& db, const char* sqlText) {
  if (db.handle() != cachedFor_) {
    attach(db);
  }
  auto& slot = statements_[sqlText];
  if (!slot) {
    slot = std::make_unique<sql::Statement>(db, sqlText);
  }
  return *slot;
}

sql::Statement& RecordStore::Impl::dynamicStmt(sql::Database& db, const std::string& sqlText) {
  if (db.handle() != cachedFor_) {
    attach(db);
  }
  auto it = dynamic_.find(sqlText);
  if (it == dynamic_.end()) {
    if (dynamic_.size() > 64) {
      dynamic_.clear();
    }
    it = dynamic_.emplace(sqlText, std::make_unique<sql::Statement>(db, sqlText)).first;
  }
  return *it->second;
}

void RecordStore::Impl::dropStatements() noexcept {
  statements_.clear();
  dynamic_.clear();
  // The pending set stays: the vault's lock observer runs this without the store's
  // mutex, while a write may be counting its rows in. The next connection reloads
  // it (attach).
  cachedFor_ = nullptr;
}

void RecordStore::Impl::write(const std::function<void(sql::Database&, WriteState&)>& work) {
  const std::lock_guard guard(mutex);
  try {
    vault.write([&](sql::Database& db) {
      if (db.handle() != cachedFor_) {
        attach(db);
      }
      WriteState state;
      appendViews(state);
      work(db, state);
      appendAuditEvents(*this, db, state);
      saveHlc(db);
    });
  } catch (...) {
    knownTypes.clear(); // it may name records of the rolled-back transaction
    pending.rollback();
    fieldNames.rollback();
    throw;
  }
  views.clear(); // appended: whatever follows, they are not appended again
  pending.commit();
  fieldNames.commit();
  savedHlc = hlc.last();
}

void RecordStore::Impl::read(const std::function<void(sql::Database&)>& work) {
  const std::lock_guard guard(mutex);
  vault.read([&](sql::Database& db) {
    if (db.handle() != cachedFor_) {
      attach(db);
    }
    work(db);
  });
}

void RecordStore::Impl::appendViews(WriteState& state) {
  for (const PendingView& v : views) {
    appendAudit(state, v.atMs, AuditAction::view, v.record, v.type, "{}");
  }
}

void RecordStore::Impl::saveHlc(sql::Database& db) {
  if (hlc.last() == savedHlc) {
    return;
  }
  StatementUse s(stmt(db, "INSERT OR REPLACE INTO store_meta(key, value) VALUES ('hlc', ?1)"));
  s->bind(1, static_cast<std::int64_t>(hlc.last().value)).run();
}

std::optional<Record> RecordStore::Impl::load(sql::Database& db, const Uuid& id,
                                              std::int64_t* rid) {
  if (db.handle() != cachedFor_) {
    attach(db); // loads rowOfId
  }
  const auto found = [&](const sql::Statement& s) {
    if (rid) {
      *rid = s.columnInt(0);
    }
    return recordFromRow(s, 0, fieldNames.codec());
  };
  if (const auto hint = rowOfId.find(id)) {
    StatementUse s(stmt(db, kSelectRecordAt));
    s->bind(1, *hint).bindBlob(2, uuidBytes(id));
    if (s->step()) {
      return found(*s);
    }
    rowOfId.erase(id); // not that row (any more): the index says
  }
  StatementUse s(stmt(db, kSelectRecord));
  s->bindBlob(1, uuidBytes(id));
  if (!s->step()) {
    return std::nullopt;
  }
  rememberRow(id, s->columnInt(0));
  return found(*s);
}

namespace {

/// Records written before field names were numbered (store_meta has no
/// 'fields_format') name their fields in full: they are re-encoded, in batches by
/// rid, in the transaction that opens the store (all or none of them).
void numberFieldNames(RecordStore::Impl& impl, sql::Database& db) {
  sql::Statement format(db, "SELECT value FROM store_meta WHERE key = 'fields_format'");
  if (format.step()) {
    if (format.columnInt(0) != 2) {
      throw Error(Errc::corrupt, "the record store's format is unknown: update the app");
    }
    return;
  }
  std::int64_t last = 0;
  for (bool more = true; more;) {
    std::vector<std::pair<std::int64_t, std::string>> batch;
    {
      sql::Statement rows(db, "SELECT rid, fields FROM records WHERE rid > ?1 ORDER BY rid "
                              "LIMIT 1000");
      rows.bind(1, last);
      while (rows.step()) {
        const auto raw = rows.columnBlob(1);
        const auto fields =
            sync::decodeFields({reinterpret_cast<const char*>(raw.data()), raw.size()});
        batch.emplace_back(rows.columnInt(0), sync::encodeFields(fields, impl.fieldNames.codec()));
      }
    }
    sql::Statement update(db, "UPDATE records SET fields = ?2 WHERE rid = ?1");
    for (const auto& [rid, fields] : batch) {
      update.bind(1, rid)
          .bindBlob(2,
                    std::span(reinterpret_cast<const unsigned char*>(fields.data()), fields.size()))
          .run();
      update.reset();
      last = rid;
    }
    more = !batch.empty();
  }
  sql::Statement(db, "INSERT INTO store_meta(key, value) VALUES ('fields_format', 2)").run();
}

} // namespace

// ---------------------------------------------------------------------------
// RecordStore
// ---------------------------------------------------------------------------

RecordStore::RecordStore(Context& context, Vault& vault, const platform::Clock& clock,
                         RecordStoreOptions options)
    : impl_(std::make_unique<Impl>(context, vault, clock, std::move(options))) {
  if (impl_->options.workerId.empty()) {
    throw Error(Errc::invalid_argument, "the record store needs the worker's id");
  }
  if (impl_->options.builtinTypes) {
    registerSafeguardingTypes(impl_->schema);
  }
  vault.write([&](sql::Database& db) {
    db.exec(kCreateTables);
    createJournalTables(db);
    createSyncTables(db);
    createAuditTables(db);
    {
      sql::Statement dev(db, "SELECT value FROM store_meta WHERE key = 'device'");
      if (dev.step()) {
        impl_->device = uuidColumn(dev, 0);
      } else {
        impl_->device = Uuid::random();
        sql::Statement(db, "INSERT INTO store_meta(key, value) VALUES ('device', ?1)")
            .bindBlob(1, uuidBytes(impl_->device))
            .run();
      }
      sql::Statement h(db, "SELECT value FROM store_meta WHERE key = 'hlc'");
      if (h.step()) {
        impl_->hlc.restore(Hlc{static_cast<std::uint64_t>(h.columnInt(0))});
        impl_->savedHlc = impl_->hlc.last();
      }
    }
    loadAuditKey(*impl_, db);
    // No statement may be running here: SQLite refuses to register the store's SQL
    // function again (a store made anew on the same unlocked vault) while one is.
    impl_->attach(db); // the pending set is loaded with the store, not by its first use
    numberFieldNames(*impl_, db);
  });
  impl_->fieldNames.commit();
  // Cached statements must go before the connection closes, however the vault
  // locks (auto-lock included). Registered last: a constructor that throws leaves
  // nothing behind.
  impl_->lockObserver = vault.addLockObserver([impl = impl_.get()] { impl->dropStatements(); });
}

RecordStore::~RecordStore() {
  try {
    if (!impl_->views.empty() && !impl_->vault.isLocked()) {
      flushViews();
    }
  } catch (const std::exception& e) {
    impl_->context.log().warn("records: could not append {} view events at close: {}",
                              impl_->views.size(), e.what());
  }
  impl_->dropStatements();
  impl_->vault.removeLockObserver(impl_->lockObserver);
}

Schema& RecordStore::schema() noexcept { return impl_->schema; }
Journal& RecordStore::journal() noexcept { return impl_->journal; }
AuditLog& RecordStore::audit() noexcept { return impl_->audit; }
const Uuid& RecordStore::deviceId() const noexcept { return impl_->device; }
const RecordStoreOptions& RecordStore::options() const noexcept { return impl_->options; }

namespace {

struct PreparedWrite {
  /// For a conflict resolution: the field and the competing versions it replaces.
  std::string resolvesField;
  std::vector<sync::VersionId> resolves;
  const EntityType* type = nullptr;
  std::optional<Record> before;
  std::int64_t rid = 0;
  FieldValues after;
  /// The fields an edit changes. A new record (no `before`) changes every field
  /// of `after`, which `changes()` then answers without a copy.
  FieldValues changed;
  Uuid id;

  [[nodiscard]] const FieldValues& changes() const noexcept { return before ? changed : after; }
};

} // namespace

void indexRecord(RecordStore::Impl& s, sql::Database& db, const EntityType& type, std::int64_t rid,
                 bool existed, const FieldValues& after, const FieldValues& changed) {
  if (touchesReferences(s.schema, type, changed)) {
    if (existed) {
      StatementUse del(s.stmt(db, kDeleteLinks));
      del->bind(1, rid).run();
    }
    for (const Uuid& target : referencedIds(s.schema, type, after)) {
      StatementUse link(s.stmt(db, kInsertLink));
      link->bindBlob(1, uuidBytes(target)).bind(2, rid).run();
    }
  }

  if (std::any_of(type.searchFields.begin(), type.searchFields.end(),
                  [&](const std::string& f) { return changed.contains(f); })) {
    if (existed) {
      StatementUse del(s.stmt(db, kDeleteText));
      del->bind(1, rid).run();
    }
    StatementUse text(s.stmt(db, kInsertText));
    text->bind(1, rid).bind(2, searchText(type, after)).run();
  }
}

static PreparedWrite prepareWrite(RecordStore::Impl& s, sql::Database& db, const RecordWrite& w,
                                  std::vector<FieldProblem>& problems) {
  PreparedWrite p;
  if (w.id) {
    p.before = s.load(db, *w.id, &p.rid);
    if (!p.before) {
      throw Error(Errc::not_found, "no record with this id");
    }
    p.id = *w.id;
    p.type = s.schema.find(p.before->type);
    if (!p.type) {
      throw Error(Errc::validation, p.before->type + ": the record's type is not registered");
    }
    p.after = p.before->fields;
  } else {
    p.type = s.schema.find(w.type);
    if (!p.type) {
      throw Error(Errc::validation, w.type + ": no such entity type");
    }
    // A taken `newId` is found by the insert (records.id is UNIQUE): storeWrite.
    p.id = w.newId ? *w.newId : Uuid::random();
  }
  if (!w.id) {
    // A new record: every non-null value is a change (changes() is `after`), with
    // the store's defaults. The input is sorted and so are the defaults: the map is
    // built by appending, merging them in (no search, no insert in the middle).
    struct Default {
      std::string_view name;
      std::string_view value;
      bool always; ///< replaces a value given
    };
    std::array<Default, 3> defaults = {{{"created_by", s.options.workerId, true},
                                        {"retention_class", "standard", false},
                                        {"status", {}, false}}};
    const std::size_t defaultCount = p.type->statuses.empty() ? 2 : 3;
    if (!p.type->statuses.empty()) {
      defaults[2].value = p.type->statuses.front();
    }
    std::size_t next = 0; // the next default to merge
    // The defaults before `name` (nullopt: all that are left).
    const auto defaultsBefore = [&](std::optional<std::string_view> name) {
      for (; next < defaultCount && (!name || defaults[next].name < *name); ++next) {
        p.after.emplace_hint(p.after.end(), defaults[next].name, std::string(defaults[next].value));
      }
    };
    p.after.reserve(w.fields.size() + defaultCount);
    for (const auto& [name, value] : w.fields) {
      const bool isNull = std::holds_alternative<sync::Null>(value);
      defaultsBefore(name);
      if (next < defaultCount && defaults[next].name == name) {
        if (defaults[next].always || isNull) {
          p.after.emplace_hint(p.after.end(), name, std::string(defaults[next].value));
          ++next;
          continue;
        }
        ++next; // the value given stands
      }
      if (!isNull) {
        p.after.emplace_hint(p.after.end(), name, value);
      }
    }
    defaultsBefore(std::nullopt);
  }
  static const FieldValues kNothing;
  for (const auto& [name, value] : w.id ? w.fields : kNothing) {
    const auto old = p.after.find(name);
    const bool isNull = std::holds_alternative<sync::Null>(value);
    if (old == p.after.end() ? isNull : old->second == value) {
      continue; // unchanged: no journal entry
    }
    p.changed.insert_or_assign(name, value);
    if (isNull) {
      p.after.erase(name);
    } else {
      p.after.insert_or_assign(name, value);
    }
  }
  const ReferenceLookup lookup = [&](const Uuid& target) -> std::optional<std::string> {
    if (const auto known = s.knownTypes.find(target); known != s.knownTypes.end()) {
      return known->second;
    }
    StatementUse q(s.stmt(db, kSelectType));
    q->bindBlob(1, uuidBytes(target));
    if (!q->step()) {
      return std::nullopt;
    }
    std::string type(q->columnText(0));
    if (s.knownTypes.size() >= 50000) {
      s.knownTypes.clear();
    }
    s.knownTypes.emplace(target, type);
    return type;
  };
  problems = checkWrite(s.schema, *p.type, p.before ? &p.before->fields : nullptr, p.after,
                        p.changes(), lookup);
  return p;
}

static void storeWrite(RecordStore::Impl& s, sql::Database& db, WriteState& state,
                       const RecordWrite& w, PreparedWrite& p) {
  if (p.changes().empty()) {
    return;
  }
  const EntityType& type = *p.type;
  const Hlc hlc = s.hlc.now();
  const std::int64_t nowMs = s.clock.unixMillis();
  const std::string fields = sync::encodeFields(p.after, s.fieldNames.codec());
  const std::string* status = textOf(p.after, "status");
  const std::string* risk = type.riskField.empty() ? nullptr : textOf(p.after, type.riskField);
  std::optional<std::int64_t> due;
  if (type.dueAt) {
    due = type.dueAt(p.after);
  }
  const auto fieldsBlob =
      std::span(reinterpret_cast<const unsigned char*>(fields.data()), fields.size());

  if (!p.before) {
    StatementUse ins(s.stmt(db, kInsertRecord));
    ins->bindBlob(1, uuidBytes(p.id)).bindStatic(2, type.name);
    bindOptionalText(*ins, 3, status);
    bindOptionalText(*ins, 4, risk);
    ins->bindNull(5);
    if (due.has_value()) {
      ins->bind(5, due.value_or(0));
    }
    ins->bind(6, nowMs)
        .bind(7, static_cast<std::int64_t>(hlc.value))
        .bindBlob(8, uuidBytes(s.device))
        .bindBlob(9, fieldsBlob);
    try {
      ins->run();
    } catch (const Error&) {
      if (sqlite3_extended_errcode(db.handle()) == SQLITE_CONSTRAINT_UNIQUE) {
        throw Error(Errc::already_exists, kIdTaken); // the id is the only UNIQUE column
      }
      throw;
    }
    p.rid = db.lastInsertRowid();
    s.rememberRow(p.id, p.rid); // a hint: if the write rolls back, reads fall back
  } else {
    auto clocks = p.before->changedClocks;
    for (const auto& [name, value] : p.changes()) {
      clocks.insert_or_assign(name, FieldClock{hlc, s.device});
    }
    const std::string clockBlob = encodeClocks(clocks);
    StatementUse up(s.stmt(db, kUpdateRecord));
    up->bind(1, p.rid);
    bindOptionalText(*up, 2, status);
    bindOptionalText(*up, 3, risk);
    up->bindNull(4);
    if (due.has_value()) {
      up->bind(4, due.value_or(0));
    }
    up->bind(5, nowMs)
        .bindBlob(6, fieldsBlob)
        .bindBlob(7, std::span(reinterpret_cast<const unsigned char*>(clockBlob.data()),
                               clockBlob.size()))
        .run();
  }

  indexRecord(s, db, type, p.rid, p.before.has_value(), p.after, p.changes());

  if (p.before) {
    std::map<std::string, JournalBase, std::less<>> bases;
    for (const auto& [name, value] : p.changes()) {
      JournalBase& b = bases[name];
      // The version replaced: the field's clock when it has a value or was cleared.
      if (p.before->fields.contains(name) || p.before->changedClocks.contains(name)) {
        const FieldClock c = p.before->clockOf(name);
        b.base = sync::VersionId{c.hlc, c.device};
      }
      if (name == p.resolvesField) {
        b.resolves = p.resolves;
      }
    }
    appendJournal(s, db, p.rid, hlc, &bases);
    mergeLocalWrite(s, db, p.rid, p.id, type, p.changes(), hlc, &bases);
  } else {
    appendJournal(s, db, p.rid, hlc, nullptr);
    mergeLocalWrite(s, db, p.rid, p.id, type, p.changes(), hlc, nullptr);
  }

  AuditAction action = p.before ? AuditAction::edit : AuditAction::create;
  if (p.before && !type.signedField.empty() && p.changes().contains(type.signedField)) {
    action = AuditAction::sign;
  }
  if (w.action) {
    action = *w.action;
  }
  if (!p.resolvesField.empty()) {
    action = AuditAction::resolve;
  }
  appendAudit(state, nowMs, action, p.id, type.name,
              auditDetail(p.before ? &p.before->fields : nullptr, p.changes()));
}

std::vector<Uuid> RecordStore::writeBatch(std::span<const RecordWrite> writes) {
  std::vector<Uuid> ids;
  ids.reserve(writes.size());
  impl_->write([&](sql::Database& db, WriteState& state) {
    for (const RecordWrite& w : writes) {
      std::vector<FieldProblem> problems;
      PreparedWrite p = prepareWrite(*impl_, db, w, problems);
      if (!problems.empty()) {
        throw Error(Errc::validation, describeProblems(problems));
      }
      storeWrite(*impl_, db, state, w, p);
      ids.push_back(p.id);
    }
  });
  return ids;
}

Uuid RecordStore::create(std::string_view type, FieldValues fields) {
  RecordWrite w;
  w.type = std::string(type);
  w.fields = std::move(fields);
  return writeBatch(std::span(&w, 1)).front();
}

void RecordStore::update(const Uuid& id, FieldValues fields) {
  RecordWrite w;
  w.id = id;
  w.fields = std::move(fields);
  (void)writeBatch(std::span(&w, 1));
}

void RecordStore::modify(const Uuid& id, const std::function<FieldValues(const Record&)>& change,
                         std::optional<AuditAction> action) {
  impl_->write([&](sql::Database& db, WriteState& state) {
    const auto current = impl_->load(db, id, nullptr);
    if (!current) {
      throw Error(Errc::not_found, "no record with this id");
    }
    RecordWrite w;
    w.id = id;
    w.fields = change(*current);
    w.action = action;
    std::vector<FieldProblem> problems;
    PreparedWrite p = prepareWrite(*impl_, db, w, problems);
    if (!problems.empty()) {
      throw Error(Errc::validation, describeProblems(problems));
    }
    storeWrite(*impl_, db, state, w, p);
  });
}

void RecordStore::resolveConflict(const Uuid& id, std::string_view field, Value value) {
  impl_->write([&](sql::Database& db, WriteState& state) {
    std::int64_t rid = 0;
    if (!impl_->load(db, id, &rid)) {
      throw Error(Errc::not_found, "no record with this id");
    }
    const auto fieldState = loadFieldState(*impl_, db, rid, field);
    if (!fieldState || fieldState->conflicts.empty()) {
      throw Error(Errc::invalid_argument,
                  std::string(field) + ": the field has no conflict to resolve");
    }
    RecordWrite w;
    w.id = id;
    w.fields.emplace(std::string(field), value);
    std::vector<FieldProblem> problems;
    PreparedWrite p = prepareWrite(*impl_, db, w, problems);
    if (!problems.empty()) {
      throw Error(Errc::validation, describeProblems(problems));
    }
    p.resolvesField = std::string(field);
    for (const sync::FieldVersion& v : fieldState->conflicts) {
      p.resolves.push_back(v.version());
    }
    // Keeping the current value is a decision too: it is written (and journalled)
    // so that every replica drops the competing values.
    p.changed.emplace(std::string(field), value);
    storeWrite(*impl_, db, state, w, p);
  });
}

std::vector<FieldConflict> RecordStore::conflicts(const Uuid& id) {
  std::vector<FieldConflict> out;
  impl_->read([&](sql::Database& db) {
    std::int64_t rid = 0;
    if (!impl_->load(db, id, &rid)) {
      throw Error(Errc::not_found, "no record with this id");
    }
    for (auto& [field, state] : loadConflictedFields(*impl_, db, rid)) {
      if (state.current) {
        out.push_back({field, std::move(*state.current), std::move(state.conflicts)});
      }
    }
  });
  return out;
}

std::vector<FieldProblem> RecordStore::validate(const RecordWrite& write) {
  std::vector<FieldProblem> problems;
  impl_->read([&](sql::Database& db) {
    if (!write.id && write.newId) {
      StatementUse q(impl_->stmt(db, kSelectType));
      q->bindBlob(1, uuidBytes(*write.newId));
      if (q->step()) {
        throw Error(Errc::already_exists, kIdTaken);
      }
    }
    (void)prepareWrite(*impl_, db, write, problems);
  });
  return problems;
}

std::optional<Record> RecordStore::get(const Uuid& id) {
  std::optional<Record> r;
  impl_->read([&](sql::Database& db) { r = impl_->load(db, id, nullptr); });
  return r;
}

std::optional<Record> RecordStore::view(const Uuid& id) {
  const std::lock_guard guard(impl_->mutex);
  auto r = get(id);
  if (r) {
    const std::int64_t now = impl_->clock.unixMillis();
    impl_->views.push_back({now, r->id, r->type});
    if (impl_->views.size() >= std::max(1u, impl_->options.viewFlushEvery) ||
        now - impl_->views.front().atMs >= impl_->options.viewFlushAfter.count()) {
      try {
        flushViews();
      } catch (const Error& e) {
        // The record was read and is shown; its view waits for the next flush.
        impl_->context.log().warn("records: {} view events not appended yet: {}",
                                  impl_->views.size(), e.what());
      }
    }
  }
  return r;
}

void RecordStore::flushViews() {
  const std::lock_guard guard(impl_->mutex);
  if (!impl_->views.empty()) {
    impl_->write([](sql::Database&, WriteState&) {});
  }
}

void RecordStore::lock() {
  const std::lock_guard guard(impl_->mutex);
  try {
    flushViews();
  } catch (const Error& e) {
    impl_->context.log().warn("records: view events not appended before lock: {}", e.what());
  }
  impl_->dropStatements();
  impl_->rowOfId.clear(); // which records exist: reloaded at the next unlock
  impl_->vault.lock();
}

std::string RecordStore::exportJson(std::span<const Uuid> ids) {
  nlohmann::json out = nlohmann::json::array();
  impl_->write([&](sql::Database& db, WriteState& state) {
    for (const Uuid& id : ids) {
      const auto r = impl_->load(db, id, nullptr);
      if (!r) {
        throw Error(Errc::not_found, "no record with this id");
      }
      nlohmann::json fields = nlohmann::json::object();
      for (const auto& [name, value] : r->fields) {
        fields[name] = nlohmann::json::parse(sync::toJson(value));
      }
      out.push_back({{"id", r->id.toString()}, {"type", r->type}, {"fields", fields}});
      appendAudit(state, impl_->clock.unixMillis(), AuditAction::exportData, r->id, r->type, "{}");
    }
  });
  return out.dump();
}

namespace {

struct BuiltQuery {
  std::string sql;
  std::vector<std::variant<std::int64_t, std::string, Uuid>> binds;
  bool byDue = false;
};

BuiltQuery buildQuery(const RecordQuery& q, bool full) {
  BuiltQuery b;
  b.byDue = q.dueBeforeMs.has_value();
  b.sql = full ? "SELECT r.rid, r.id, r.type, r.fields, r.clocks, r.created_hlc, r.device, "
                 "r.created_at, r.updated_at, " OUTPOST_SYNC_STATE_OF_R ", r.due_at"
               : "SELECT r.rid, r.id, r.due_at";
  std::vector<std::string> where;
  if (q.text) {
    // CROSS JOIN fixes the join order: the selective side drives.
    b.sql += " FROM record_text t CROSS JOIN records r ON r.rid = t.rowid";
    where.emplace_back("record_text MATCH ?");
    b.binds.emplace_back(*q.text);
    if (q.linkedTo) {
      where.emplace_back("r.rid IN (SELECT rid FROM record_links WHERE target = ?)");
      b.binds.emplace_back(*q.linkedTo);
    }
  } else if (q.linkedTo) {
    b.sql += " FROM record_links l CROSS JOIN records r ON r.rid = l.rid";
    where.emplace_back("l.target = ?");
    b.binds.emplace_back(*q.linkedTo);
  } else {
    b.sql += " FROM records r";
  }
  if (q.type) {
    where.emplace_back("r.type = ?");
    b.binds.emplace_back(*q.type);
  }
  if (q.status) {
    where.emplace_back("r.status = ?");
    b.binds.emplace_back(*q.status);
  }
  if (q.riskLevel) {
    where.emplace_back("r.risk = ?");
    b.binds.emplace_back(*q.riskLevel);
  }
  if (q.syncState) {
    where.emplace_back("(" OUTPOST_SYNC_STATE_OF_R ") = ?");
    b.binds.emplace_back(static_cast<std::int64_t>(*q.syncState));
  }
  if (q.dueBeforeMs) {
    where.emplace_back("r.due_at IS NOT NULL AND r.due_at < ?");
    b.binds.emplace_back(*q.dueBeforeMs);
  }
  if (q.after) {
    std::int64_t key = 0;
    std::int64_t rid = 0;
    if (!decodeCursor(*q.after, key, rid)) {
      throw Error(Errc::invalid_argument, "the paging cursor is not one this store made");
    }
    if (b.byDue) {
      where.emplace_back("(r.due_at > ? OR (r.due_at = ? AND r.rid > ?))");
      b.binds.emplace_back(key);
      b.binds.emplace_back(key);
    } else {
      where.emplace_back("r.rid > ?");
    }
    b.binds.emplace_back(rid);
  }
  for (std::size_t i = 0; i < where.size(); ++i) {
    b.sql += (i == 0 ? " WHERE " : " AND ") + where[i];
  }
  b.sql += b.byDue ? " ORDER BY r.due_at, r.rid" : " ORDER BY r.rid";
  b.sql += " LIMIT ?";
  return b;
}

template <class Row>
std::optional<std::string> runQuery(RecordStore::Impl& impl, const RecordQuery& q, bool full,
                                    Row&& onRow) {
  if (q.limit == 0) {
    throw Error(Errc::invalid_argument, "a query needs a limit above zero");
  }
  const BuiltQuery b = buildQuery(q, full);
  std::optional<std::string> next;
  try {
    impl.read([&](sql::Database& db) {
      StatementUse s(impl.dynamicStmt(db, b.sql));
      int index = 1;
      for (const auto& v : b.binds) {
        if (const auto* i = std::get_if<std::int64_t>(&v)) {
          s->bind(index++, *i);
        } else if (const auto* t = std::get_if<std::string>(&v)) {
          s->bind(index++, std::string_view(*t));
        } else {
          s->bindBlob(index++, uuidBytes(std::get<Uuid>(v)));
        }
      }
      s->bind(index, static_cast<std::int64_t>(q.limit + 1));
      std::size_t n = 0;
      std::int64_t lastRid = 0;
      std::int64_t lastKey = 0;
      while (s->step()) {
        if (n == q.limit) {
          next = encodeCursor(lastKey, lastRid);
          break;
        }
        lastRid = s->columnInt(0);
        lastKey = b.byDue ? s->columnInt(full ? 10 : 2) : 0;
        onRow(*s);
        ++n;
      }
    });
  } catch (const Error& e) {
    // SQLite's message would quote the search text: say what is wrong instead.
    if (q.text && e.code() == Errc::internal) {
      throw Error(Errc::invalid_argument, "the search text is not a valid full-text query");
    }
    throw;
  }
  return next;
}

} // namespace

RecordPage RecordStore::query(const RecordQuery& q) {
  RecordPage page;
  page.next = runQuery(*impl_, q, true, [&](const sql::Statement& s) {
    page.records.push_back(recordFromRow(s, 0, impl_->fieldNames.codec()));
  });
  return page;
}

IdPage RecordStore::queryIds(const RecordQuery& q) {
  IdPage page;
  page.next = runQuery(*impl_, q, false,
                       [&](const sql::Statement& s) { page.ids.push_back(uuidColumn(s, 1)); });
  return page;
}

} // namespace outpost::model
