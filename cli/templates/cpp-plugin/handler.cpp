// @NAME@: a Runnel function as a C++ plugin (handler plugin:build/lib@NAME@.so#@NAME@), a shared
// library exporting Runnel's C entry point runnel_plugin_v2 (the installed header runnel/plugin.h,
// ABI version 2). It returns its input with ASCII letters upper-cased, as text/plain; empty input
// is bad input (dead-lettered at once, never retried).
//
// The rules of the ABI: only C types cross it, so no exception may leave handle(); results are
// copied by the result's callbacks during the call; handle() runs concurrently on several threads
// (this function keeps no state, so it is thread-safe). The whole ABI (outputs, emits, batches) is
// described in functions/README.md of Runnel's sources, section "Plugins".
#include <runnel/plugin.h>

#include <cctype>
#include <fstream>
#include <iterator>
#include <string>

namespace {

// The input's bytes: inline in the event, or a file:// reference (event->file_path) for a big one.
bool ReadInput(const RunnelEventV1* event, std::string& input) {
  if (event->file_path[0] == '\0') {
    input.assign(event->payload, event->payload_size);
    return true;
  }
  std::ifstream in(event->file_path, std::ios::binary);
  if (!in) return false;
  input.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

void* Create(const char* params_json, char* error, std::size_t error_size) {
  // params_json is the function's params from runnel.yaml as a JSON object; parse it here, and on
  // a value this function cannot work with write the reason to `error` and return nullptr.
  (void)params_json;
  (void)error;
  (void)error_size;
  static int instance;  // stateless: any non-null pointer
  return &instance;
}

int Handle(void* instance, const RunnelEventV1* event, RunnelResultV2* result) {
  (void)instance;
  try {
    std::string text;
    if (!ReadInput(event, text)) {
      result->set_error(result, "cannot read the input file");
      return RUNNEL_E_BAD_INPUT;
    }
    if (text.empty()) {
      result->set_error(result, "empty input: expected some text");
      return RUNNEL_E_BAD_INPUT;
    }
    for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    result->write(result, text.data(), text.size());
    result->set_content_type(result, "text/plain");
    return RUNNEL_OK;
  } catch (const std::exception& e) {  // out of memory: a failure to retry
    result->set_error(result, e.what());
    return RUNNEL_E_INTERNAL;
  }
}

const RunnelFunctionV2 kFunctions[] = {
    {"@NAME@", "upper-cases its input", Create, Handle, nullptr, 0, 0, nullptr},
};

const RunnelPluginV2 kPlugin = {RUNNEL_PLUGIN_ABI_V2, sizeof(RunnelPluginV2), "@NAME@",
                                sizeof kFunctions / sizeof kFunctions[0], kFunctions};

}  // namespace

extern "C" RUNNEL_PLUGIN_EXPORT const RunnelPluginV2* runnel_plugin_v2(void) { return &kPlugin; }
