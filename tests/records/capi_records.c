/* The record C ABI used from C, as a JNI or Swift binding would. Returns NULL on
 * success or a description of the first failed expectation. */

#include "outpost.h"

#include <stdio.h>
#include <string.h>

#define EXPECT(cond)                                                                               \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      return #cond;                                                                                \
    }                                                                                              \
  } while (0)

const char* outpost_capi_records_scenario(const char* vaultDir, const char* keyDir);

const char* outpost_capi_records_scenario(const char* vaultDir, const char* keyDir) {
  outpost_vault* vault = NULL;
  outpost_error error;
  char id[37];
  char* json = NULL;
  uint32_t left = 0;

  EXPECT(outpost_vault_create(vaultDir, keyDir, "2468", "worker-c", &vault, &error) == OUTPOST_OK);

  /* a validation error is a status with the field named */
  EXPECT(outpost_record_put_json(vault, "{\"type\":\"child\",\"fields\":{\"name\":\"Jay\"}}", id,
                                 &error) == 19);
  EXPECT(error.code == 19);
  EXPECT(strstr(error.message, "child.owner_team") != NULL);
  EXPECT(outpost_record_put_json(vault, "not json", id, &error) == 1);

  EXPECT(
      outpost_record_put_json(vault,
                              "{\"type\":\"child\",\"fields\":{\"name\":\"Jay\",\"estimated_age\":"
                              "14,\"owner_team\":\"t\",\"local_authority\":\"Leeds\","
                              "\"police_force_area\":\"West Yorkshire\"}}",
                              id, &error) == OUTPOST_OK);
  EXPECT(strlen(id) == 36);

  char change[160];
  snprintf(change, sizeof change, "{\"id\":\"%s\",\"fields\":{\"school\":\"Park High\"}}", id);
  EXPECT(outpost_record_put_json(vault, change, NULL, &error) == OUTPOST_OK);

  EXPECT(outpost_record_get_json(vault, id, &json, &error) == OUTPOST_OK);
  EXPECT(json != NULL);
  EXPECT(strstr(json, "\"school\":\"Park High\"") != NULL);
  EXPECT(strstr(json, "\"type\":\"child\"") != NULL);
  outpost_string_release(json);

  /* a miss is not an error */
  EXPECT(outpost_record_get_json(vault, "00000000-0000-4000-8000-000000000000", &json, &error) ==
         OUTPOST_OK);
  EXPECT(json == NULL);

  outpost_vault_lock(vault);
  EXPECT(outpost_record_get_json(vault, id, &json, &error) == 7); /* locked */
  outpost_vault_release(vault);
  vault = NULL;

  EXPECT(outpost_vault_open(vaultDir, keyDir, "worker-c", &vault, &error) == OUTPOST_OK);
  EXPECT(outpost_vault_unlock(vault, "1111", &left, &error) == 6);
  EXPECT(left > 0);
  EXPECT(outpost_vault_unlock(vault, "2468", &left, &error) == OUTPOST_OK);
  EXPECT(outpost_record_get_json(vault, id, &json, &error) == OUTPOST_OK);
  EXPECT(json != NULL);
  outpost_string_release(json);
  outpost_vault_release(vault);
  outpost_vault_release(NULL);
  return NULL;
}
