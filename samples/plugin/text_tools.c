/* A sample Runnel plugin in plain C (plugin ABI version 2): three functions in one library.
 *
 *   word-count   counts lines, words and bytes of the input; params.min_length (default 1) skips
 *                shorter words; params.save (default false) also writes the counts to the output
 *                file counts.json. Binary input (a NUL byte) is bad input: dead-lettered, not
 *                retried. Takes events in batches of up to 20 (100 ms window).
 *   uppercase    returns the input with ASCII letters upper-cased.
 *   split-lines  a pipeline step: emits each non-empty line of the input as its own record to
 *                params.topic (required), with the event's key; the result counts them.
 *
 * Handler: plugin:PATH/librunnel_text_tools.so#word-count (or #uppercase, #split-lines). Builds
 * against the installed runnel/plugin.h only (see CMakeLists.txt and README.md).
 */
#include <ctype.h>
#include <runnel/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct WordCount {
  long min_length;
  int save;
} WordCount;

/* A sample keeps JSON handling minimal: the text after "key": in a flat params object, or NULL. */
static const char* ParamValue(const char* params_json, const char* key) {
  char quoted[64];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  const char* at = strstr(params_json, quoted);
  if (at == NULL) return NULL;
  at = strchr(at + strlen(quoted), ':');
  if (at == NULL) return NULL;
  ++at;
  while (*at == ' ') ++at;
  return at;
}

/* The input bytes: inline, or read from the referenced file. *owned is set when they must be freed. */
static const char* ReadInput(const RunnelEventV1* event, size_t* size, char** owned, RunnelResultV2* result) {
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
  const char* at = ParamValue(params_json, "min_length");
  if (at != NULL) {
    char* end = NULL;
    min_length = strtol(at, &end, 10);
    if (end == at || min_length < 1 || min_length > 1000) {
      snprintf(error, error_size, "params.min_length must be an integer within 1..1000");
      return NULL;
    }
  }
  int save = 0;
  at = ParamValue(params_json, "save");
  if (at != NULL) {
    if (strncmp(at, "true", 4) != 0 && strncmp(at, "false", 5) != 0) {
      snprintf(error, error_size, "params.save must be true or false");
      return NULL;
    }
    save = at[0] == 't';
  }
  WordCount* wc = malloc(sizeof *wc);
  if (wc == NULL) {
    snprintf(error, error_size, "out of memory");
    return NULL;
  }
  wc->min_length = min_length;
  wc->save = save;
  return wc;
}

static int WordCountHandle(void* instance, const RunnelEventV1* event, RunnelResultV2* result) {
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
  if (wc->save) {
    char facts[64];
    snprintf(facts, sizeof facts, "{\"words\":%ld}", words);
    const int status = result->write_output(result, "counts.json", out, (size_t)n, facts);
    if (status != RUNNEL_OK) {
      result->set_error(result, "word-count: cannot write counts.json");
      return status;
    }
  }
  result->write(result, out, (size_t)n);
  result->set_content_type(result, "application/json");
  return RUNNEL_OK;
}

/* A batch is each event handled on its own: one bad event fails alone. A real plugin would share
 * work across the batch here (one database round trip, one model invocation). */
static void WordCountHandleBatch(void* instance, const RunnelEventV1* events, size_t count,
                                 RunnelResultV2* results, int* statuses) {
  for (size_t i = 0; i < count; ++i) statuses[i] = WordCountHandle(instance, &events[i], &results[i]);
}

static void* UppercaseCreate(const char* params_json, char* error, size_t error_size) {
  (void)params_json;
  (void)error;
  (void)error_size;
  static int instance; /* stateless: any non-NULL pointer */
  return &instance;
}

static int UppercaseHandle(void* instance, const RunnelEventV1* event, RunnelResultV2* result) {
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

typedef struct SplitLines {
  char topic[250];
} SplitLines;

static void* SplitLinesCreate(const char* params_json, char* error, size_t error_size) {
  const char* at = ParamValue(params_json, "topic");
  const char* end = at && *at == '"' ? strchr(at + 1, '"') : NULL;
  if (end == NULL || end == at + 1 || (size_t)(end - at - 1) >= sizeof(((SplitLines*)0)->topic)) {
    snprintf(error, error_size, "params.topic must be a topic name (a non-empty string)");
    return NULL;
  }
  SplitLines* sl = calloc(1, sizeof *sl);
  if (sl == NULL) {
    snprintf(error, error_size, "out of memory");
    return NULL;
  }
  memcpy(sl->topic, at + 1, (size_t)(end - at - 1));
  return sl;
}

static int SplitLinesHandle(void* instance, const RunnelEventV1* event, RunnelResultV2* result) {
  const SplitLines* sl = instance;
  size_t size = 0;
  char* owned = NULL;
  const char* data = ReadInput(event, &size, &owned, result);
  if (data == NULL) return RUNNEL_E_BAD_INPUT;
  const RunnelHeaderV1 type = {"content-type", "text/plain", 10};
  long emitted = 0;
  for (size_t start = 0; start < size;) {
    const char* newline = memchr(data + start, '\n', size - start);
    const size_t end = newline ? (size_t)(newline - data) : size;
    if (end > start) {
      const int status = result->emit(result, sl->topic, event->has_key ? event->key : NULL, event->key_size,
                                      data + start, end - start, &type, 1);
      if (status != RUNNEL_OK) {
        free(owned);
        result->set_error(result, "split-lines: cannot emit a line");
        return status;
      }
      ++emitted;
    }
    start = end + 1;
  }
  free(owned);
  char out[64];
  const int n = snprintf(out, sizeof out, "{\"emitted\":%ld}", emitted);
  result->write(result, out, (size_t)n);
  result->set_content_type(result, "application/json");
  return RUNNEL_OK;
}

static void FreeInstance(void* instance) { free(instance); }

static const RunnelFunctionV2 kFunctions[] = {
    {"word-count", "counts lines, words and bytes of text", WordCountCreate, WordCountHandle, FreeInstance,
     20, 100, WordCountHandleBatch},
    {"uppercase", "upper-cases ASCII letters", UppercaseCreate, UppercaseHandle, NULL, 0, 0, NULL},
    {"split-lines", "emits each line as its own record", SplitLinesCreate, SplitLinesHandle, FreeInstance, 0,
     0, NULL},
};

static const RunnelPluginV2 kPlugin = {RUNNEL_PLUGIN_ABI_V2, sizeof(RunnelPluginV2), "text-tools",
                                       sizeof kFunctions / sizeof kFunctions[0], kFunctions};

RUNNEL_PLUGIN_EXPORT const RunnelPluginV2* runnel_plugin_v2(void) { return &kPlugin; }
