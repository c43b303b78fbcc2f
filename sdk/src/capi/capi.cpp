// The C ABI bridge: noexcept one-liners over the C++ API.

#include "outpost.h"

#include "outpost/context.hpp"
#include "outpost/device_identity.hpp"
#include "outpost/error.hpp"
#include "outpost/platform/clock.hpp"
#include "outpost/platform/key_store.hpp"
#include "outpost/records.hpp"
#include "outpost/sync_client.hpp"
#include "outpost/vault.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

struct outpost_vault {
  outpost::Context context;
  std::unique_ptr<outpost::platform::FileKeyStore> keyStore;
  outpost::platform::SystemClock clock;
  std::string workerId;
  std::unique_ptr<outpost::Vault> vault;
  std::unique_ptr<outpost::model::RecordStore> records; // while unlocked
  std::unique_ptr<outpost::SyncClient> sync;            // made at the first sync
};

namespace {

// Error names and advice are string literals: their data() is NUL-terminated.
const char* cstr(std::string_view literal) noexcept { return literal.data(); }

int32_t fill(outpost_error* error, outpost::Errc code, std::string_view message) noexcept {
  if (error) {
    error->code = static_cast<int32_t>(code);
    const std::size_t n = std::min(message.size(), sizeof error->message - 1);
    std::memcpy(error->message, message.data(), n);
    error->message[n] = '\0';
  }
  return static_cast<int32_t>(code);
}

/// Runs `f`, converting every exception into a status and a filled error.
template <class F>
int32_t guard(outpost_error* error, F&& f) noexcept {
  try {
    return f();
  } catch (const outpost::Error& e) {
    return fill(error, e.code(), e.message());
  } catch (const std::bad_alloc&) {
    return fill(error, outpost::Errc::internal, "out of memory");
  } catch (const std::exception& e) {
    return fill(error, outpost::Errc::internal, e.what());
  } catch (...) {
    return fill(error, outpost::Errc::internal, "unknown exception");
  }
}

int32_t requireArgs(outpost_error* error, bool ok) {
  if (!ok) {
    throw outpost::Error(outpost::Errc::invalid_argument, "a required argument is NULL");
  }
  (void)error;
  return OUTPOST_OK;
}

/// A copy the caller frees with outpost_string_release.
char* copyOut(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (!out) {
    throw std::bad_alloc();
  }
  std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

void attachRecords(outpost_vault& v) {
  outpost::model::RecordStoreOptions o;
  o.workerId = v.workerId;
  v.records = std::make_unique<outpost::model::RecordStore>(v.context, *v.vault, v.clock, o);
}

std::unique_ptr<outpost_vault> makeHandle(const char* keyStoreDir, const char* workerId) {
  auto h = std::make_unique<outpost_vault>();
  h->keyStore = std::make_unique<outpost::platform::FileKeyStore>(keyStoreDir);
  h->workerId = workerId;
  return h;
}

outpost::model::RecordStore& unlockedRecords(outpost_vault* v) {
  if (!v->records || v->vault->isLocked()) {
    throw outpost::Error(outpost::Errc::locked, "the vault is locked; unlock it first");
  }
  return *v->records;
}

} // namespace

extern "C" {

const char* outpost_version(void) { return OUTPOST_VERSION_STRING; }

const char* outpost_error_name(int32_t code) {
  return cstr(outpost::errcName(static_cast<outpost::Errc>(code)));
}

const char* outpost_error_advice(int32_t code) {
  return cstr(outpost::errcAdvice(static_cast<outpost::Errc>(code)));
}

int32_t outpost_vault_create(const char* dir, const char* keyStoreDir, const char* pin,
                             const char* workerId, outpost_vault** out, outpost_error* error) {
  return guard(error, [&] {
    requireArgs(error, dir && keyStoreDir && pin && workerId && out);
    auto h = makeHandle(keyStoreDir, workerId);
    h->vault = outpost::Vault::create(h->context, dir, pin, *h->keyStore);
    attachRecords(*h);
    *out = h.release();
    return OUTPOST_OK;
  });
}

int32_t outpost_vault_open(const char* dir, const char* keyStoreDir, const char* workerId,
                           outpost_vault** out, outpost_error* error) {
  return guard(error, [&] {
    requireArgs(error, dir && keyStoreDir && workerId && out);
    auto h = makeHandle(keyStoreDir, workerId);
    h->vault = outpost::Vault::open(h->context, dir, *h->keyStore);
    *out = h.release();
    return OUTPOST_OK;
  });
}

int32_t outpost_vault_unlock(outpost_vault* vault, const char* pin, uint32_t* attemptsLeft,
                             outpost_error* error) {
  return guard(error, [&] {
    requireArgs(error, vault && pin);
    const outpost::UnlockResult r = vault->vault->unlock(pin);
    if (attemptsLeft) {
      *attemptsLeft = r.attemptsLeft;
    }
    if (r.status == outpost::UnlockStatus::wrongPin) {
      return fill(error, outpost::Errc::wrong_pin, "wrong PIN");
    }
    if (r.status == outpost::UnlockStatus::shredded) {
      return fill(error, outpost::Errc::shredded,
                  "the key was destroyed after too many wrong PINs");
    }
    attachRecords(*vault);
    return OUTPOST_OK;
  });
}

void outpost_vault_lock(outpost_vault* vault) {
  if (!vault) {
    return;
  }
  try {
    vault->sync.reset(); // it refers to the record store
    if (vault->records) {
      vault->records->lock();
      vault->records.reset();
    }
  } catch (...) {
    // lock() below still wipes the keys
  }
  vault->vault->lock();
}

void outpost_vault_release(outpost_vault* vault) {
  outpost_vault_lock(vault);
  delete vault;
}

int32_t outpost_record_put_json(outpost_vault* vault, const char* json, char* idOut,
                                outpost_error* error) {
  return guard(error, [&] {
    requireArgs(error, vault && json);
    auto& records = unlockedRecords(vault);
    const nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
    if (!j.is_object() || !j.contains("fields") || !j["fields"].is_object()) {
      throw outpost::Error(outpost::Errc::invalid_argument,
                           "expected {\"type\" or \"id\", \"fields\": {...}}");
    }
    outpost::sync::FieldValues fields;
    for (const auto& [name, value] : j["fields"].items()) {
      fields.emplace(name, outpost::sync::valueFromJson(value.dump()));
    }
    outpost::sync::Uuid id;
    if (j.contains("id")) {
      const auto parsed = j["id"].is_string()
                              ? outpost::sync::Uuid::parse(j["id"].get<std::string>())
                              : std::nullopt;
      if (!parsed) {
        throw outpost::Error(outpost::Errc::invalid_argument, "\"id\" is not a record id");
      }
      id = *parsed;
      records.update(id, std::move(fields));
    } else {
      if (!j.contains("type") || !j["type"].is_string()) {
        throw outpost::Error(outpost::Errc::invalid_argument, "a new record needs \"type\"");
      }
      id = records.create(j["type"].get<std::string>(), std::move(fields));
    }
    if (idOut) {
      const std::string text = id.toString();
      std::memcpy(idOut, text.c_str(), text.size() + 1);
    }
    return OUTPOST_OK;
  });
}

int32_t outpost_record_get_json(outpost_vault* vault, const char* id, char** jsonOut,
                                outpost_error* error) {
  return guard(error, [&] {
    requireArgs(error, vault && id && jsonOut);
    *jsonOut = nullptr;
    const auto parsed = outpost::sync::Uuid::parse(id);
    if (!parsed) {
      throw outpost::Error(outpost::Errc::invalid_argument, "not a record id");
    }
    const auto r = unlockedRecords(vault).view(*parsed);
    if (!r) {
      return OUTPOST_OK;
    }
    nlohmann::json fields = nlohmann::json::object();
    for (const auto& [name, value] : r->fields) {
      fields[name] = nlohmann::json::parse(outpost::sync::toJson(value));
    }
    *jsonOut = copyOut(
        nlohmann::json{{"id", r->id.toString()}, {"type", r->type}, {"fields", fields}}.dump());
    return OUTPOST_OK;
  });
}

int32_t outpost_device_enroll(outpost_vault* vault, const char* payload, const char* appVersion,
                              outpost_error* error) {
  return guard(error, [&] {
    requireArgs(error, vault && payload && appVersion);
    (void)unlockedRecords(vault);
    (void)outpost::enrollDevice(vault->context, *vault->vault, payload, appVersion);
    return OUTPOST_OK;
  });
}

int32_t outpost_sync(outpost_vault* vault, char** reportJsonOut, outpost_error* error) {
  return guard(error, [&] {
    requireArgs(error, vault && reportJsonOut);
    *reportJsonOut = nullptr;
    auto& records = unlockedRecords(vault);
    if (!vault->sync) {
      vault->sync = std::make_unique<outpost::SyncClient>(vault->context, *vault->vault, records,
                                                          vault->clock);
    }
    const outpost::SyncReport r = vault->sync->sync();
    nlohmann::json purged = nlohmann::json::array();
    for (const auto& receipt : r.purged) {
      for (const auto& id : receipt.records) {
        purged.push_back(id.toString());
      }
    }
    *reportJsonOut = copyOut(nlohmann::json{
        {"changes_pushed", r.changesPushed},
        {"changes_rejected", r.changesRejected},
        {"changes_pulled", r.changesPulled},
        {"records_updated", r.recordsUpdated},
        {"new_conflicts", r.newConflicts},
        {"purged", purged},
        {"templates_installed", r.templatesInstalled},
        {"bytes_up", r.bytesUp},
        {"bytes_down",
         r.bytesDown}}.dump());
    return OUTPOST_OK;
  });
}

void outpost_string_release(char* text) { std::free(text); }

} // extern "C"
