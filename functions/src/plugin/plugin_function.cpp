// The plugin loader: dlopen, the versioned entry point, and the C ABI wrapped into a Function.
#include "runnel/functions/plugin_function.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <filesystem>

#include "runnel/plugin.h"

namespace runnel::functions {
namespace {

using Library = std::shared_ptr<void>;  // dlclose when the last function built from it is gone

struct Loaded {
  Library library;
  const RunnelPluginV1* plugin = nullptr;
};

[[noreturn]] void Refuse(const std::string& path, const std::string& why) {
  throw FunctionError(Errc::kBadConfig, fmt::format("plugin '{}': {}", path, why));
}

Loaded Load(const std::string& path) {
  ::dlerror();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    Refuse(path, fmt::format("cannot load it: {}", err ? err : "unknown dlopen error"));
  }
  Library library(handle, [](void* h) { ::dlclose(h); });
  ::dlerror();
  void* symbol = ::dlsym(handle, RUNNEL_PLUGIN_ENTRY_POINT);
  if (symbol == nullptr) {
    Refuse(path, fmt::format("it does not export {}() (not a Runnel plugin, or one built for another ABI; "
                             "this runnel loads ABI version {})",
                             RUNNEL_PLUGIN_ENTRY_POINT, RUNNEL_PLUGIN_ABI_VERSION));
  }
  const auto entry = reinterpret_cast<RunnelPluginEntryV1>(symbol);
  const RunnelPluginV1* plugin = entry();
  if (plugin == nullptr) Refuse(path, fmt::format("{}() returned NULL", RUNNEL_PLUGIN_ENTRY_POINT));
  if (plugin->abi_version != RUNNEL_PLUGIN_ABI_VERSION) {
    Refuse(path, fmt::format("it was built for plugin ABI version {}, this runnel loads version {} (rebuild it "
                             "against this runnel's runnel/plugin.h)",
                             plugin->abi_version, RUNNEL_PLUGIN_ABI_VERSION));
  }
  if (plugin->struct_size < sizeof(RunnelPluginV1)) {
    Refuse(path, fmt::format("its RunnelPluginV1 is {} bytes, expected at least {}", plugin->struct_size,
                             sizeof(RunnelPluginV1)));
  }
  if (plugin->function_count == 0 || plugin->functions == nullptr) Refuse(path, "it provides no functions");
  for (std::size_t i = 0; i < plugin->function_count; ++i) {
    const auto& f = plugin->functions[i];
    if (f.name == nullptr || f.create == nullptr || f.handle == nullptr) {
      Refuse(path, fmt::format("function #{} lacks a name, create() or handle()", i));
    }
  }
  return {std::move(library), plugin};
}

std::string Names(const RunnelPluginV1& plugin) {
  std::string out;
  for (std::size_t i = 0; i < plugin.function_count; ++i) out += (i ? ", " : "") + std::string(plugin.functions[i].name);
  return out;
}

// The host side of RunnelResultV1: collects what the plugin hands back.
struct ResultSink {
  RunnelResultV1 c{};
  Context* ctx = nullptr;
  std::string output;
  std::string content_type = "application/octet-stream";
  std::string error;

  explicit ResultSink(Context& context) : ctx(&context) {
    c.struct_size = sizeof(RunnelResultV1);
    c.host = this;
    c.write = [](RunnelResultV1* r, const void* data, size_t size) {
      if (data != nullptr && size > 0) Self(r).output.append(static_cast<const char*>(data), size);
    };
    c.set_content_type = [](RunnelResultV1* r, const char* type) { Self(r).content_type = type ? type : ""; };
    c.set_error = [](RunnelResultV1* r, const char* message) { Self(r).error = message ? message : ""; };
    c.log = [](RunnelResultV1* r, RunnelLogLevel level, const char* message) {
      auto& log = Self(r).ctx->Log();
      const std::string_view text = message ? message : "";
      switch (level) {
        case RUNNEL_LOG_DEBUG: log.debug("{}", text); break;
        case RUNNEL_LOG_INFO: log.info("{}", text); break;
        case RUNNEL_LOG_WARN: log.warn("{}", text); break;
        default: log.error("{}", text); break;
      }
    };
  }
  static ResultSink& Self(RunnelResultV1* r) { return *static_cast<ResultSink*>(r->host); }
};

Errc StatusToErrc(int status) {
  switch (status) {
    case RUNNEL_E_BAD_INPUT: return Errc::kBadInput;
    case RUNNEL_E_LIMIT_EXCEEDED: return Errc::kLimitExceeded;
    case RUNNEL_E_BAD_CONFIG: return Errc::kBadConfig;
    case RUNNEL_E_TIMEOUT: return Errc::kTimeout;
    case RUNNEL_E_TRANSIENT: return Errc::kTransient;
    default: return Errc::kInternal;
  }
}

class PluginFunction final : public Function {
 public:
  PluginFunction(Library library, const RunnelFunctionV1& fn, void* instance, std::string function_name)
      : library_(std::move(library)), fn_(fn), instance_(instance), function_name_(std::move(function_name)) {}

  ~PluginFunction() override {
    if (fn_.destroy != nullptr) fn_.destroy(instance_);
  }

  Result Handle(const Event& event, Context& ctx) override {
    std::vector<RunnelHeaderV1> headers;
    headers.reserve(event.envelope.extra.size());
    for (const auto& h : event.envelope.extra) headers.push_back({h.name.c_str(), h.value.c_str(), h.value.size()});
    const std::string file_path = event.envelope.file ? event.envelope.file->path : std::string();
    const std::string output_dir =
        (ctx.Outputs().Root() / (function_name_.empty() ? std::string(fn_.name) : function_name_) / event.envelope.id)
            .string();
    RunnelEventV1 e{};
    e.struct_size = sizeof(RunnelEventV1);
    e.id = event.envelope.id.c_str();
    e.key = event.key.c_str();
    e.key_size = event.key.size();
    e.has_key = event.key.empty() ? 0 : 1;
    e.payload = event.payload.c_str();
    e.payload_size = event.payload.size();
    e.file_path = file_path.c_str();
    e.content_type = event.envelope.content_type.c_str();
    e.topic = event.topic.c_str();
    e.partition = event.partition;
    e.offset = event.offset;
    e.attempt = static_cast<std::uint32_t>(event.envelope.attempt);
    const auto deadline = ctx.Deadline();
    e.timeout_ms = deadline == std::chrono::steady_clock::time_point::max()
                       ? -1
                       : std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       deadline - std::chrono::steady_clock::now())
                                                       .count());
    e.output_dir = output_dir.c_str();
    e.headers = headers.data();
    e.header_count = headers.size();

    ResultSink sink(ctx);
    const int status = fn_.handle(instance_, &e, &sink.c);
    if (status != RUNNEL_OK) {
      throw FunctionError(StatusToErrc(status),
                          sink.error.empty() ? fmt::format("{} failed with status {}", fn_.name, status) : sink.error);
    }
    return Result{std::move(sink.output), std::move(sink.content_type), {}};
  }

 private:
  Library library_;  // declared first: destroyed last, after destroy() ran
  RunnelFunctionV1 fn_;
  void* instance_;
  std::string function_name_;
};

}  // namespace

std::vector<PluginFunctionInfo> InspectPlugin(const std::string& path) {
  const Loaded loaded = Load(path);
  std::vector<PluginFunctionInfo> out;
  for (std::size_t i = 0; i < loaded.plugin->function_count; ++i) {
    const auto& f = loaded.plugin->functions[i];
    out.push_back({f.name, f.description ? f.description : ""});
  }
  return out;
}

std::unique_ptr<Function> LoadPluginFunction(const std::string& path, const std::string& name,
                                             const nlohmann::json& params, const std::string& function_name) {
  Loaded loaded = Load(path);
  const RunnelPluginV1& plugin = *loaded.plugin;
  const RunnelFunctionV1* chosen = nullptr;
  if (name.empty()) {
    if (plugin.function_count != 1) {
      Refuse(path, fmt::format("it provides {} functions ({}): pick one with plugin:{}#NAME", plugin.function_count,
                               Names(plugin), path));
    }
    chosen = &plugin.functions[0];
  } else {
    for (std::size_t i = 0; i < plugin.function_count; ++i) {
      if (name == plugin.functions[i].name) chosen = &plugin.functions[i];
    }
    if (chosen == nullptr) Refuse(path, fmt::format("it has no function '{}' (it has: {})", name, Names(plugin)));
  }
  const std::string params_json = params.is_null() ? "{}" : params.dump();
  char error[1024] = {0};
  void* instance = chosen->create(params_json.c_str(), error, sizeof error);
  if (instance == nullptr) {
    error[sizeof error - 1] = '\0';
    throw FunctionError(Errc::kBadConfig, fmt::format("{}: {}", chosen->name, error[0] ? error : "create() failed"));
  }
  return std::make_unique<PluginFunction>(std::move(loaded.library), *chosen, instance, function_name);
}

}  // namespace runnel::functions
