/* Outpost — the stable C ABI for mobile bindings (JNI, Swift).
 *
 * Pure C. Every function is noexcept on the C++ side: it returns a status and
 * fills the optional `outpost_error*` last parameter on failure. Handles are
 * opaque and freed with their `..._release` function. Codes are the stable
 * numbers of outpost::Errc (outpost/error.hpp). */
#ifndef OUTPOST_H
#define OUTPOST_H

#include "outpost/export.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An error filled by a failed call. `message` is NUL-terminated and owned by
 * the struct; it never contains record contents or key material. */
typedef struct outpost_error {
  int32_t code;
  char message[256];
} outpost_error;

/** The library's version, "MAJOR.MINOR.PATCH". Static storage. */
OUTPOST_API const char* outpost_version(void);

/** The stable name of an error code ("wrong_pin"), or "unknown". Static storage. */
OUTPOST_API const char* outpost_error_name(int32_t code);

/** What a person should do about an error with this code. Static storage. */
OUTPOST_API const char* outpost_error_advice(int32_t code);

/** Status codes: 0 is success; others are outpost::Errc numbers. */
#define OUTPOST_OK 0

/** An encrypted vault with its record store. Opaque; free with outpost_vault_release. */
typedef struct outpost_vault outpost_vault;

/** Creates a vault in `dir` protected by `pin`, with its key store items in
 * `key_store_dir` (Linux file key store), and returns it unlocked in `*out`.
 * `worker_id` is the person using the device (audit actor, created_by). */
OUTPOST_API int32_t outpost_vault_create(const char* dir, const char* key_store_dir,
                                         const char* pin, const char* worker_id,
                                         outpost_vault** out, outpost_error* error);

/** Opens the vault in `dir`, locked. */
OUTPOST_API int32_t outpost_vault_open(const char* dir, const char* key_store_dir,
                                       const char* worker_id, outpost_vault** out,
                                       outpost_error* error);

/** Unlocks with `pin`. A wrong PIN returns 6 (wrong_pin) with `*attempts_left` set
 * (may be NULL); a destroyed key returns 8 (shredded). */
OUTPOST_API int32_t outpost_vault_unlock(outpost_vault* vault, const char* pin,
                                         uint32_t* attempts_left, outpost_error* error);

/** Locks: closes the database and wipes the keys. Safe on NULL. */
OUTPOST_API void outpost_vault_lock(outpost_vault* vault);

/** Frees the handle (locking first). Safe on NULL. */
OUTPOST_API void outpost_vault_release(outpost_vault* vault);

/** Creates or changes a record from JSON:
 *   {"type": "child", "fields": {"name": "Jay", ...}}            creates one
 *   {"id": "<uuid>", "fields": {"name": "Jay K"}}                   changes one
 * Field values use the canonical JSON of values (text, numbers, true/false, null to
 * clear, arrays of text). `id_out` (may be NULL) receives the record id as 36
 * characters plus NUL: it must hold 37 bytes. */
OUTPOST_API int32_t outpost_record_put_json(outpost_vault* vault, const char* json, char* id_out,
                                            outpost_error* error);

/** The record `id` as JSON {"id","type","fields":{...}} in `*json_out` (free with
 * outpost_string_release), shown to the worker (audited as a view). A record
 * that does not exist is not an error: OUTPOST_OK with `*json_out` NULL. */
OUTPOST_API int32_t outpost_record_get_json(outpost_vault* vault, const char* id, char** json_out,
                                            outpost_error* error);

/** Enrolls the device with the payload a worker typed or scanned
 * ("outpost-enroll:v1:..." from the central team). The vault must be unlocked.
 * Errors: invalid_argument (bad payload), already_exists (enrolled already),
 * auth_failed (code refused: ask for a new one), network/timeout (retry). */
OUTPOST_API int32_t outpost_device_enroll(outpost_vault* vault, const char* payload,
                                          const char* app_version, outpost_error* error);

/** Syncs once with the device's server (push, then pull). On success `*report_json_out`
 * (free with outpost_string_release) holds {"changes_pushed", "changes_rejected",
 * "changes_pulled", "records_updated", "new_conflicts", "purged": [ids],
 * "templates_installed", "bytes_up", "bytes_down"}. Errors: network/timeout (all
 * is kept; sync again later), revoked (the vault has been wiped), clock_skew,
 * version_mismatch, invalid_argument (not enrolled). */
OUTPOST_API int32_t outpost_sync(outpost_vault* vault, char** report_json_out,
                                 outpost_error* error);

/** Frees a string returned by the library. Safe on NULL. */
OUTPOST_API void outpost_string_release(char* text);

#ifdef __cplusplus
}
#endif

#endif /* OUTPOST_H */
