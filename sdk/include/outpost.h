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

#ifdef __cplusplus
}
#endif

#endif /* OUTPOST_H */
