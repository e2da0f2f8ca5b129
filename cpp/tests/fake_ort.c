/* Stand-ins for libonnxruntime, for test_ort_check.cpp: OrtGetApiBase and the few table entries
 * libhmmn's load-time checks call. Built twice:
 *   FAKE_ORT_OLD: GetApi serves no version (an ORT older than the API version libhmmn needs);
 *   otherwise: a table whose GetErrorCode entry answers another code, as a table laid out
 *   differently from the counted slots would. Statuses live in one static (nothing to leak). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EXPORTED __attribute__((visibility("default")))

typedef struct fake_status {
  int code;
  char message[64];
} fake_status;

static fake_status the_status;
static void* table[128]; /* function pointers at libhmmn's slots, the rest null */

static void* create_status(int code, const char* message) {
  the_status.code = code;
  strncpy(the_status.message, message, sizeof(the_status.message) - 1);
  return &the_status;
}
static int shifted_code(const void* status) { return ((const fake_status*)status)->code + 1; }
static const char* status_message(const void* status) { return ((const fake_status*)status)->message; }
static void release_status(void* status) { (void)status; }

static const void* get_api(uint32_t version) {
  (void)version;
#ifdef FAKE_ORT_OLD
  return NULL;
#else
  table[0] = (void*)create_status;
  table[1] = (void*)shifted_code;
  table[2] = (void*)status_message;
  table[93] = (void*)release_status;
  return table;
#endif
}

static const char* version_string(void) { return "0.0-fake"; }

struct api_base { /* OrtApiBase: two function pointers, in this order */
  const void* (*get_api)(uint32_t);
  const char* (*version_string)(void);
};
static const struct api_base base = {get_api, version_string};

EXPORTED const struct api_base* OrtGetApiBase(void) { return &base; }
