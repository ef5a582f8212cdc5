/* Runnel plugin ABI: what a shared library exports to be loaded as a Runnel function
 * (`handler: plugin:PATH[#NAME]`). Plain C, so a plugin needs no C++ ABI compatibility with the
 * Runnel build: any compiler, any C++ standard library, or no C++ at all.
 *
 * Two versions are loaded side by side. A plugin exports one of these symbols:
 *
 *     RUNNEL_PLUGIN_EXPORT const RunnelPluginV2* runnel_plugin_v2(void);   (preferred)
 *     RUNNEL_PLUGIN_EXPORT const RunnelPluginV1* runnel_plugin_v1(void);
 *
 * returning a pointer to static data that lives as long as the library is loaded. The worker loads
 * the library with dlopen(RTLD_NOW | RTLD_LOCAL), looks for runnel_plugin_v2 first, then
 * runnel_plugin_v1, calls it once, and refuses the plugin unless abi_version matches the entry
 * point (RUNNEL_PLUGIN_ABI_V2 or RUNNEL_PLUGIN_ABI_V1).
 *
 * Version 2 adds, on top of version 1: output files listed in the result (write_output,
 * add_output), pipeline records (emit), and batches (batch_max_events, batch_window_ms,
 * handle_batch). Its event struct is version 1's.
 *
 * Memory never changes owner across the boundary: every pointer Runnel passes in is valid only
 * during the call, and results are handed back through the result's callbacks, which copy.
 *
 * Compatibility: the structs of a version only grow at their end; `struct_size` lets either side
 * tell which fields exist. Anything incompatible gets a new entry point and version.
 */
#ifndef RUNNEL_PLUGIN_H_
#define RUNNEL_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RUNNEL_PLUGIN_ABI_V1 1u
#define RUNNEL_PLUGIN_ABI_V2 2u
#define RUNNEL_PLUGIN_ENTRY_POINT_V1 "runnel_plugin_v1"
#define RUNNEL_PLUGIN_ENTRY_POINT_V2 "runnel_plugin_v2"
/* The names version 1 plugins were written with. */
#define RUNNEL_PLUGIN_ABI_VERSION RUNNEL_PLUGIN_ABI_V1
#define RUNNEL_PLUGIN_ENTRY_POINT RUNNEL_PLUGIN_ENTRY_POINT_V1

#if defined(__GNUC__) || defined(__clang__)
#define RUNNEL_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define RUNNEL_PLUGIN_EXPORT
#endif

/* Status a handle() call returns; the same numbers as Runnel's error kinds (docs/protocol.md).
 * Permanent kinds (bad input, limit, config) dead-letter the event at once; the others are retried. */
typedef enum RunnelStatus {
  RUNNEL_OK = 0,
  RUNNEL_E_BAD_INPUT = 1,      /* corrupt or malformed input: permanent */
  RUNNEL_E_LIMIT_EXCEEDED = 2, /* over a cap: permanent */
  RUNNEL_E_BAD_CONFIG = 3,     /* params the function cannot work with: permanent */
  RUNNEL_E_TIMEOUT = 5,        /* ran out of time: retried */
  RUNNEL_E_TRANSIENT = 6,      /* a dependency failed and may recover: retried */
  RUNNEL_E_INTERNAL = 7        /* a bug: retried */
} RunnelStatus;

typedef enum RunnelLogLevel {
  RUNNEL_LOG_DEBUG = 1,
  RUNNEL_LOG_INFO = 2,
  RUNNEL_LOG_WARN = 3,
  RUNNEL_LOG_ERROR = 4
} RunnelLogLevel;

/* One Kafka record header. Values may be binary: use value_size. */
typedef struct RunnelHeaderV1 {
  const char* name;  /* NUL-terminated */
  const char* value; /* NUL-terminated too, for convenience */
  size_t value_size;
} RunnelHeaderV1;

/* One event. Strings are NUL-terminated UTF-8 (empty, never NULL, when absent) unless a size is given. */
typedef struct RunnelEventV1 {
  uint32_t struct_size; /* sizeof(RunnelEventV1) as Runnel built it */
  const char* id;       /* the event id */
  const char* key;      /* the Kafka key; has_key says whether there was one */
  size_t key_size;
  int has_key;
  const char* payload; /* inline bytes (NUL-terminated as a convenience); empty when file_path is set */
  size_t payload_size;
  const char* file_path;    /* the input by reference: an absolute local path, or "" */
  const char* content_type; /* "" means application/octet-stream */
  const char* topic;
  int32_t partition;
  int64_t offset;
  uint32_t attempt;              /* 1 for the first try */
  int64_t timeout_ms;            /* time left for this call when it started; -1 = no limit */
  const char* output_dir;        /* a directory for this event's output files (created on first use by you) */
  const RunnelHeaderV1* headers; /* the headers Runnel does not own (runnel-* are in the fields above) */
  size_t header_count;
} RunnelEventV1;

/* Where handle() puts its outcome. Every callback copies what it is given. */
typedef struct RunnelResultV1 RunnelResultV1;
struct RunnelResultV1 {
  uint32_t struct_size;
  void* host; /* Runnel's; do not touch */
  /* Appends bytes to the result body. */
  void (*write)(RunnelResultV1* result, const void* data, size_t size);
  /* Sets the result's content type (default application/octet-stream). */
  void (*set_content_type)(RunnelResultV1* result, const char* content_type);
  /* Sets the error message returned with a non-zero status. */
  void (*set_error)(RunnelResultV1* result, const char* message);
  /* Logs through the worker's `function` logger. */
  void (*log)(RunnelResultV1* result, RunnelLogLevel level, const char* message);
};

/* One function a plugin provides. */
typedef struct RunnelFunctionV1 {
  const char* name;        /* chosen with plugin:PATH#NAME */
  const char* description; /* one line, for people */
  /* Builds an instance from the function's params (a JSON object, NUL-terminated). On failure
   * returns NULL with a NUL-terminated reason in error[0..error_size) (a bad-config error). */
  void* (*create)(const char* params_json, char* error, size_t error_size);
  /* Handles one event; returns RUNNEL_OK or an error status (with result->set_error). It is called
   * concurrently from several threads on one instance, so it must be thread-safe. It runs on a
   * worker thread: a long blocking call holds that thread (raise `--threads` for such plugins). */
  int (*handle)(void* instance, const RunnelEventV1* event, RunnelResultV1* result);
  /* Frees an instance; called once, after its last handle() returned. May be NULL. */
  void (*destroy)(void* instance);
} RunnelFunctionV1;

typedef struct RunnelPluginV1 {
  uint32_t abi_version; /* RUNNEL_PLUGIN_ABI_V1 */
  uint32_t struct_size; /* sizeof(RunnelPluginV1) */
  const char* name;     /* the library's name, for messages */
  size_t function_count;
  const RunnelFunctionV1* functions;
} RunnelPluginV1;

typedef const RunnelPluginV1* (*RunnelPluginEntryV1)(void);

/* ---- Version 2 ---------------------------------------------------------------------------- */

/* Where a version 2 handle() puts its outcome: version 1's callbacks, then outputs and emits.
 * Every callback copies what it is given and may be called any number of times during the call. */
typedef struct RunnelResultV2 RunnelResultV2;
struct RunnelResultV2 {
  uint32_t struct_size;
  void* host; /* Runnel's; do not touch */
  void (*write)(RunnelResultV2* result, const void* data, size_t size);
  void (*set_content_type)(RunnelResultV2* result, const char* content_type);
  void (*set_error)(RunnelResultV2* result, const char* message);
  void (*log)(RunnelResultV2* result, RunnelLogLevel level, const char* message);
  /* Writes the output file <event->output_dir>/<name> atomically (a rerun of the event overwrites
   * it) and lists it in the result's files with its path, size and `facts_json` (a JSON object of
   * key facts such as {"width": 256}, or NULL). `name` is one plain path segment. Returns
   * RUNNEL_OK, RUNNEL_E_BAD_INPUT for a bad name or facts (nothing written; the reason is logged),
   * or RUNNEL_E_TRANSIENT when the disk refuses. */
  int (*write_output)(RunnelResultV2* result, const char* name, const void* data, size_t size,
                      const char* facts_json);
  /* Lists a file the plugin wrote itself as <event->output_dir>/<name> (for libraries that write
   * files). Same returns as write_output; RUNNEL_E_BAD_INPUT also when the file is not there. */
  int (*add_output)(RunnelResultV2* result, const char* name, const char* facts_json);
  /* Publishes a new event to `topic` (a pipeline step); its hop count is this event's plus one, so
   * a loop is stopped by the hop limit. `key` may be NULL (no key). Headers are optional. Returns
   * RUNNEL_OK, or an error status when Runnel cannot publish it (then fail the call with it). */
  int (*emit)(RunnelResultV2* result, const char* topic, const void* key, size_t key_size,
              const void* payload, size_t payload_size, const RunnelHeaderV1* headers, size_t header_count);
};

/* One function a version 2 plugin provides. */
typedef struct RunnelFunctionV2 {
  const char* name;
  const char* description;
  void* (*create)(const char* params_json, char* error, size_t error_size);
  int (*handle)(void* instance, const RunnelEventV1* event, RunnelResultV2* result);
  void (*destroy)(void* instance);
  /* Batching, as Lambda's Kafka trigger does it: the worker hands up to batch_max_events events to
   * one call, waiting at most batch_window_ms to fill it. 0 or 1: one event per call. This is the
   * plugin's default: the function's `batch` key in runnel.yaml overrides it. */
  uint32_t batch_max_events;
  uint32_t batch_window_ms;
  /* Handles events[0..count) in one call: results[i] and statuses[i] (set to RUNNEL_OK or an error
   * status, initially RUNNEL_E_INTERNAL) are event i's outcome, so one bad event fails alone.
   * Thread-safe like handle(). May be NULL: handle() is then called for each event. */
  void (*handle_batch)(void* instance, const RunnelEventV1* events, size_t count, RunnelResultV2* results,
                       int* statuses);
} RunnelFunctionV2;

typedef struct RunnelPluginV2 {
  uint32_t abi_version; /* RUNNEL_PLUGIN_ABI_V2 */
  uint32_t struct_size; /* sizeof(RunnelPluginV2) */
  const char* name;
  size_t function_count;
  const RunnelFunctionV2* functions;
} RunnelPluginV2;

typedef const RunnelPluginV2* (*RunnelPluginEntryV2)(void);

#ifdef __cplusplus
}
#endif

#endif /* RUNNEL_PLUGIN_H_ */
