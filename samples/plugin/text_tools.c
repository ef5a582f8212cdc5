/* A sample Runnel plugin in plain C: two functions in one library.
 *
 *   word-count  counts lines, words and bytes of the input; params.min_length (default 1) skips
 *               shorter words. Binary input (a NUL byte) is bad input: dead-lettered, not retried.
 *   uppercase   returns the input with ASCII letters upper-cased.
 *
 * Handler: plugin:PATH/librunnel_text_tools.so#word-count (or #uppercase). Builds against the
 * installed runnel/plugin.h only (see CMakeLists.txt and README.md).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <runnel/plugin.h>

typedef struct WordCount {
  long min_length;
} WordCount;

/* The input bytes: inline, or read from the referenced file. *owned is set when they must be freed. */
static const char* ReadInput(const RunnelEventV1* event, size_t* size, char** owned, RunnelResultV1* result) {
  *owned = NULL;
  if (event->file_path[0] == '\0') {
    *size = event->payload_size;
    return event->payload;
  }
  FILE* f = fopen(event->file_path, "rb");
  if (f == NULL) {
    result->set_error(result, "cannot open the input file");
    return NULL;
  }
  size_t cap = 65536, len = 0;
  char* buf = malloc(cap);
  size_t n;
  while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      char* bigger = realloc(buf, cap * 2);
      if (bigger == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
  }
  fclose(f);
  if (buf == NULL) {
    result->set_error(result, "out of memory reading the input file");
    return NULL;
  }
  *owned = buf;
  *size = len;
  return buf;
}

static void* WordCountCreate(const char* params_json, char* error, size_t error_size) {
  long min_length = 1;
  /* A sample keeps JSON handling minimal: find "min_length": N. */
  const char* at = strstr(params_json, "\"min_length\"");
  if (at != NULL) {
    at = strchr(at, ':');
    char* end = NULL;
    min_length = at ? strtol(at + 1, &end, 10) : -1;
    if (at == NULL || end == at + 1 || min_length < 1 || min_length > 1000) {
      snprintf(error, error_size, "params.min_length must be an integer within 1..1000");
      return NULL;
    }
  }
  WordCount* wc = malloc(sizeof *wc);
  if (wc == NULL) {
    snprintf(error, error_size, "out of memory");
    return NULL;
  }
  wc->min_length = min_length;
  return wc;
}

static int WordCountHandle(void* instance, const RunnelEventV1* event, RunnelResultV1* result) {
  const WordCount* wc = instance;
  size_t size = 0;
  char* owned = NULL;
  const char* data = ReadInput(event, &size, &owned, result);
  if (data == NULL) return RUNNEL_E_BAD_INPUT;
  if (memchr(data, '\0', size) != NULL) {
    free(owned);
    result->set_error(result, "word-count: binary input (a NUL byte); expected text");
    return RUNNEL_E_BAD_INPUT;
  }
  long lines = 0, words = 0, run = 0;
  for (size_t i = 0; i <= size; ++i) {
    const int c = i < size ? (unsigned char)data[i] : ' ';
    if (c == '\n') ++lines;
    if (isspace(c)) {
      if (run >= wc->min_length) ++words;
      run = 0;
    } else {
      ++run;
    }
  }
  if (size > 0 && data[size - 1] != '\n') ++lines;
  free(owned);
  char out[160];
  const int n = snprintf(out, sizeof out, "{\"lines\":%ld,\"words\":%ld,\"bytes\":%zu}", lines, words, size);
  result->write(result, out, (size_t)n);
  result->set_content_type(result, "application/json");
  return RUNNEL_OK;
}

static void WordCountDestroy(void* instance) { free(instance); }

static void* UppercaseCreate(const char* params_json, char* error, size_t error_size) {
  (void)params_json;
  (void)error;
  (void)error_size;
  static int instance; /* stateless: any non-NULL pointer */
  return &instance;
}

static int UppercaseHandle(void* instance, const RunnelEventV1* event, RunnelResultV1* result) {
  (void)instance;
  size_t size = 0;
  char* owned = NULL;
  const char* data = ReadInput(event, &size, &owned, result);
  if (data == NULL) return RUNNEL_E_BAD_INPUT;
  char chunk[4096];
  for (size_t done = 0; done < size;) {
    size_t n = size - done < sizeof chunk ? size - done : sizeof chunk;
    for (size_t i = 0; i < n; ++i) chunk[i] = (char)toupper((unsigned char)data[done + i]);
    result->write(result, chunk, n);
    done += n;
  }
  free(owned);
  result->set_content_type(result, event->content_type[0] ? event->content_type : "text/plain");
  return RUNNEL_OK;
}

static const RunnelFunctionV1 kFunctions[] = {
    {"word-count", "counts lines, words and bytes of text", WordCountCreate, WordCountHandle, WordCountDestroy},
    {"uppercase", "upper-cases ASCII letters", UppercaseCreate, UppercaseHandle, NULL},
};

static const RunnelPluginV1 kPlugin = {RUNNEL_PLUGIN_ABI_VERSION, sizeof(RunnelPluginV1), "text-tools",
                                       sizeof kFunctions / sizeof kFunctions[0], kFunctions};

RUNNEL_PLUGIN_EXPORT const RunnelPluginV1* runnel_plugin_v1(void) { return &kPlugin; }
