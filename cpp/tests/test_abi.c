/* hmmn_options versioned by size (hmmn.h): accepted from HMMN_OPTIONS_SIZE_V1 up; fields past
 * the ones libhmmn knows must be zero. No export needed: options that are accepted reach the
 * folder check (HMMN_ERROR_ARTIFACT for a folder that is not there), refused ones stop before
 * it (HMMN_ERROR_ARGUMENT). C only, like a client built with another header version. */
#include <stdio.h>
#include <string.h>

#include "hmmn/hmmn.h"

static int failures = 0;
#define EXPECT(cond)                                                                    \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      fprintf(stderr, "%s:%d: EXPECT failed: %s (%s)\n", __FILE__, __LINE__, #cond, hmmn_last_error()); \
      ++failures;                                                                       \
    }                                                                                   \
  } while (0)

/* A caller built with a later header: one more field at the end. */
typedef struct newer_options {
  hmmn_options known;
  int64_t added_later;
} newer_options;

static hmmn_status open_with(const hmmn_options* options) {
  hmmn_model* model = NULL;
  hmmn_status status = hmmn_model_open("/nonexistent/hmmn-export", options, &model);
  EXPECT(model == NULL);
  return status;
}

static int said(const char* part) { return strstr(hmmn_last_error(), part) != NULL; }

int main(void) {
  hmmn_options o;
  newer_options newer;
  EXPECT(hmmn_options_init(&o) == HMMN_OK && o.struct_size == sizeof(hmmn_options));
  EXPECT(open_with(&o) == HMMN_ERROR_ARTIFACT);
  o.struct_size = (uint32_t)HMMN_OPTIONS_SIZE_V1; /* the first release's caller */
  EXPECT(open_with(&o) == HMMN_ERROR_ARTIFACT);
  o.threads = -1; /* its fields are read */
  EXPECT(open_with(&o) == HMMN_ERROR_ARGUMENT && said("threads"));
  o.threads = 0;
  o.struct_size = (uint32_t)HMMN_OPTIONS_SIZE_V1 - 1;
  EXPECT(open_with(&o) == HMMN_ERROR_ARGUMENT && said("less than the first release's"));
  o.struct_size = 0; /* never initialised */
  EXPECT(open_with(&o) == HMMN_ERROR_ARGUMENT && said("hmmn_options_init"));

  memset(&newer, 0, sizeof(newer));
  EXPECT(hmmn_options_init(&newer.known) == HMMN_OK);
  newer.known.struct_size = (uint32_t)sizeof(newer); /* a later field, left at its default: taken */
  EXPECT(open_with(&newer.known) == HMMN_ERROR_ARTIFACT);
  newer.added_later = 7; /* set: this libhmmn cannot honour it */
  EXPECT(open_with(&newer.known) == HMMN_ERROR_ARGUMENT && said("does not know"));
  printf("%d failure(s)\n", failures);
  return failures != 0;
}
