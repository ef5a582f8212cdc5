// The test of function @NAME@'s plugin, as Runnel's worker uses it: loads the built library with
// dlopen, finds function "@NAME@" through the entry point runnel_plugin_v2, creates an instance and
// hands it the sample input as an event (inline, then by file reference) and an empty one, with
// result callbacks that collect what it writes. Run by ctest (CMakeLists.txt): test_handler LIBRARY
// SAMPLE_INPUT EXPECTED_OUTPUT.
#include <dlfcn.h>
#include <runnel/plugin.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

namespace {

int failures = 0;

void Check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

std::string ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// What a call wrote through its result's callbacks.
struct Collected {
  RunnelResultV2 result{};
  std::string body, content_type, error;
};

Collected* Of(RunnelResultV2* result) { return static_cast<Collected*>(result->host); }

Collected NewResult() {
  Collected c;
  c.result.struct_size = sizeof(RunnelResultV2);
  c.result.write = [](RunnelResultV2* r, const void* data, size_t size) {
    Of(r)->body.append(static_cast<const char*>(data), size);
  };
  c.result.set_content_type = [](RunnelResultV2* r, const char* type) { Of(r)->content_type = type; };
  c.result.set_error = [](RunnelResultV2* r, const char* message) { Of(r)->error = message; };
  c.result.log = [](RunnelResultV2*, RunnelLogLevel, const char* message) {
    std::printf("log: %s\n", message);
  };
  c.result.write_output = [](RunnelResultV2*, const char*, const void*, size_t, const char*) {
    return static_cast<int>(RUNNEL_E_INTERNAL);  // this test gives no output directory
  };
  c.result.add_output = [](RunnelResultV2*, const char*, const char*) {
    return static_cast<int>(RUNNEL_E_INTERNAL);
  };
  c.result.emit = [](RunnelResultV2*, const char*, const void*, size_t, const void*, size_t,
                     const RunnelHeaderV1*, size_t) { return static_cast<int>(RUNNEL_E_INTERNAL); };
  return c;
}

RunnelEventV1 NewEvent(const std::string& payload, const char* file_path) {
  RunnelEventV1 e{};
  e.struct_size = sizeof(RunnelEventV1);
  e.id = "test-event-1";
  e.key = "";
  e.payload = payload.c_str();
  e.payload_size = payload.size();
  e.file_path = file_path;
  e.content_type = "text/plain";
  e.topic = "@NAME@";
  e.attempt = 1;
  e.timeout_ms = -1;
  e.output_dir = "";
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: test_handler LIBRARY SAMPLE_INPUT EXPECTED_OUTPUT\n");
    return 2;
  }
  void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    std::fprintf(stderr, "FAIL cannot load %s: %s\n", argv[1], dlerror());
    return 1;
  }
  const auto entry =
      reinterpret_cast<const RunnelPluginV2* (*)()>(dlsym(library, RUNNEL_PLUGIN_ENTRY_POINT_V2));
  Check(entry != nullptr, "the library exports runnel_plugin_v2");
  if (entry == nullptr) return 1;
  const RunnelPluginV2* plugin = entry();
  Check(plugin->abi_version == RUNNEL_PLUGIN_ABI_V2, "the plugin reports ABI version 2");
  const RunnelFunctionV2* function = nullptr;
  for (size_t i = 0; i < plugin->function_count; ++i) {
    if (std::strcmp(plugin->functions[i].name, "@NAME@") == 0) function = &plugin->functions[i];
  }
  Check(function != nullptr, "the plugin has function @NAME@");
  if (function == nullptr) return 1;
  char error[256] = "";
  void* instance = function->create("{}", error, sizeof error);
  Check(instance != nullptr, std::string("create({}) makes an instance ") + error);
  if (instance == nullptr) return 1;

  const std::string sample = ReadFile(argv[2]);
  const std::string expected = ReadFile(argv[3]);
  Collected inline_call = NewResult();
  inline_call.result.host = &inline_call;
  const RunnelEventV1 inline_event = NewEvent(sample, "");
  Check(function->handle(instance, &inline_event, &inline_call.result) == RUNNEL_OK,
        "the sample input is handled");
  Check(inline_call.body == expected, "its output is the expected output (got '" + inline_call.body + "')");
  Check(inline_call.content_type == "text/plain", "its content type is text/plain");

  Collected by_file = NewResult();
  by_file.result.host = &by_file;
  const RunnelEventV1 file_event = NewEvent("", argv[2]);
  const int file_status = function->handle(instance, &file_event, &by_file.result);
  Check(file_status == RUNNEL_OK && by_file.body == expected,
        "the sample input by file reference gives the same output (got '" + by_file.body + "' " +
            by_file.error + ")");

  Collected empty = NewResult();
  empty.result.host = &empty;
  const RunnelEventV1 empty_event = NewEvent("", "");
  const int empty_status = function->handle(instance, &empty_event, &empty.result);
  Check(empty_status == RUNNEL_E_BAD_INPUT && !empty.error.empty(),
        "empty input is bad input, with a reason (" + empty.error + ")");

  if (function->destroy != nullptr) function->destroy(instance);
  dlclose(library);
  return failures == 0 ? 0 : 1;
}
