// The plugin loader: dlopen, the versioned entry points (v2, then v1), and the C ABI wrapped into a
// Function: events in, results, output files, emitted records and batches out.
#include "runnel/functions/plugin_function.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "runnel/core/trace_context.hpp"
#include "runnel/plugin.h"

namespace runnel::functions {
namespace {

using Library = std::shared_ptr<void>;  // dlclose when the last function built from it is gone

// One function of a plugin, of either ABI version: exactly one of v1 and v2 is set.
struct Entry {
  const RunnelFunctionV1* v1 = nullptr;
  const RunnelFunctionV2* v2 = nullptr;
  const char* Name() const { return v2 ? v2->name : v1->name; }
  const char* Description() const { return v2 ? v2->description : v1->description; }
};

struct Loaded {
  Library library;
  std::uint32_t version = 0;
  std::vector<Entry> functions;
};

[[noreturn]] void Refuse(const std::string& path, const std::string& why) {
  throw FunctionError(Errc::kBadConfig, fmt::format("plugin '{}': {}", path, why));
}

// Checks what an entry point returned: its version, its size, and that each function is complete.
template <typename Plugin>
void CheckPlugin(const std::string& path, const Plugin* plugin, std::uint32_t version,
                 const char* entry_point) {
  if (plugin == nullptr) Refuse(path, fmt::format("{}() returned NULL", entry_point));
  if (plugin->abi_version != version) {
    Refuse(path, fmt::format(
                     "it was built for plugin ABI version {}, but {}() is version {}'s entry point; this "
                     "runnel loads versions {} and {} (rebuild it against this runnel's runnel/plugin.h)",
                     plugin->abi_version, entry_point, version, RUNNEL_PLUGIN_ABI_V1, RUNNEL_PLUGIN_ABI_V2));
  }
  if (plugin->struct_size < sizeof(Plugin)) {
    Refuse(path, fmt::format("its plugin struct (version {}) is {} bytes, expected at least {}", version,
                             plugin->struct_size, sizeof(Plugin)));
  }
  if (plugin->function_count == 0 || plugin->functions == nullptr) Refuse(path, "it provides no functions");
  for (std::size_t i = 0; i < plugin->function_count; ++i) {
    const auto& f = plugin->functions[i];
    if (f.name == nullptr || f.create == nullptr || f.handle == nullptr) {
      Refuse(path, fmt::format("function #{} lacks a name, create() or handle()", i));
    }
  }
}

Loaded Load(const std::string& path) {
  ::dlerror();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    Refuse(path, fmt::format("cannot load it: {}", err ? err : "unknown dlopen error"));
  }
  Loaded loaded;
  loaded.library = Library(handle, [](void* h) { ::dlclose(h); });
  if (void* v2 = ::dlsym(handle, RUNNEL_PLUGIN_ENTRY_POINT_V2)) {
    const RunnelPluginV2* plugin = reinterpret_cast<RunnelPluginEntryV2>(v2)();
    CheckPlugin(path, plugin, RUNNEL_PLUGIN_ABI_V2, RUNNEL_PLUGIN_ENTRY_POINT_V2);
    loaded.version = RUNNEL_PLUGIN_ABI_V2;
    for (std::size_t i = 0; i < plugin->function_count; ++i)
      loaded.functions.push_back({nullptr, &plugin->functions[i]});
    return loaded;
  }
  if (void* v1 = ::dlsym(handle, RUNNEL_PLUGIN_ENTRY_POINT_V1)) {
    const RunnelPluginV1* plugin = reinterpret_cast<RunnelPluginEntryV1>(v1)();
    CheckPlugin(path, plugin, RUNNEL_PLUGIN_ABI_V1, RUNNEL_PLUGIN_ENTRY_POINT_V1);
    loaded.version = RUNNEL_PLUGIN_ABI_V1;
    for (std::size_t i = 0; i < plugin->function_count; ++i)
      loaded.functions.push_back({&plugin->functions[i], nullptr});
    return loaded;
  }
  Refuse(path,
         fmt::format("it exports neither {}() nor {}() (not a Runnel plugin, or one built for another ABI; "
                     "this runnel loads ABI versions {} and {})",
                     RUNNEL_PLUGIN_ENTRY_POINT_V2, RUNNEL_PLUGIN_ENTRY_POINT_V1, RUNNEL_PLUGIN_ABI_V1,
                     RUNNEL_PLUGIN_ABI_V2));
}

std::string Names(const Loaded& loaded) {
  std::string out;
  for (const Entry& f : loaded.functions) {
    if (!out.empty()) out += ", ";
    out += f.Name();
  }
  return out;
}

// The ABI's statuses are Runnel's error codes (static_asserts below), but it has no number for
// unknown-function: a 4 from a plugin is internal, and so is an unknown-function raised inside one.
static_assert(RUNNEL_E_BAD_INPUT == static_cast<int>(Errc::kBadInput));
static_assert(RUNNEL_E_LIMIT_EXCEEDED == static_cast<int>(Errc::kLimitExceeded));
static_assert(RUNNEL_E_BAD_CONFIG == static_cast<int>(Errc::kBadConfig));
static_assert(RUNNEL_E_TIMEOUT == static_cast<int>(Errc::kTimeout));
static_assert(RUNNEL_E_TRANSIENT == static_cast<int>(Errc::kTransient));
static_assert(RUNNEL_E_INTERNAL == static_cast<int>(Errc::kInternal));
static_assert(RUNNEL_OK == 0 && RUNNEL_E_INTERNAL == kErrcMax);

Errc StatusToErrc(int status) {
  const Errc code = ErrcFromCode(status);
  return code == Errc::kUnknownFunction ? Errc::kInternal : code;
}

int ErrcToStatus(Errc code) {
  return code == Errc::kUnknownFunction ? RUNNEL_E_INTERNAL : static_cast<int>(code);
}

std::string_view Text(const char* s) { return s ? std::string_view(s) : std::string_view(); }

// An output name is one plain path segment inside the event's output directory.
bool PlainSegment(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos;
}

// The host side of a call's result (RunnelResultV1 or RunnelResultV2): collects what the plugin
// hands back. One per event and call; the callbacks run on the calling thread.
class ResultSink {
 public:
  ResultSink(Context& ctx, const Event& event, std::string function)
      : ctx_(&ctx), event_(&event), function_(std::move(function)) {
    v1_.struct_size = sizeof(RunnelResultV1);
    v1_.host = this;
    v1_.write = [](RunnelResultV1* r, const void* data, size_t size) { Of(r).Write(data, size); };
    v1_.set_content_type = [](RunnelResultV1* r, const char* type) { Of(r).content_type_ = Text(type); };
    v1_.set_error = [](RunnelResultV1* r, const char* message) { Of(r).error_ = Text(message); };
    v1_.log = [](RunnelResultV1* r, RunnelLogLevel level, const char* message) { Of(r).Log(level, message); };
    v2_.struct_size = sizeof(RunnelResultV2);
    v2_.host = this;
    v2_.write = [](RunnelResultV2* r, const void* data, size_t size) { Of(r).Write(data, size); };
    v2_.set_content_type = [](RunnelResultV2* r, const char* type) { Of(r).content_type_ = Text(type); };
    v2_.set_error = [](RunnelResultV2* r, const char* message) { Of(r).error_ = Text(message); };
    v2_.log = [](RunnelResultV2* r, RunnelLogLevel level, const char* message) { Of(r).Log(level, message); };
    v2_.write_output = [](RunnelResultV2* r, const char* name, const void* data, size_t size,
                          const char* facts) { return Of(r).WriteOutput(Text(name), data, size, facts); };
    v2_.add_output = [](RunnelResultV2* r, const char* name, const char* facts) {
      return Of(r).AddOutput(Text(name), facts);
    };
    v2_.emit = [](RunnelResultV2* r, const char* topic, const void* key, size_t key_size, const void* payload,
                  size_t payload_size, const RunnelHeaderV1* headers, size_t header_count) {
      return Of(r).Emit(Text(topic), key, key_size, payload, payload_size, headers, header_count);
    };
  }
  ~ResultSink() = default;
  ResultSink(const ResultSink&) = delete;
  ResultSink& operator=(const ResultSink&) = delete;

  RunnelResultV1* V1() { return &v1_; }
  RunnelResultV2* V2() { return &v2_; }

  // The outcome for `status`; `name` is the plugin function's, for a message without a reason.
  Result Finish(int status, const char* name) {
    if (status != RUNNEL_OK) {
      throw FunctionError(StatusToErrc(status),
                          error_.empty() ? fmt::format("{} failed with status {}", name, status) : error_);
    }
    return Result{std::move(output_), std::move(content_type_), std::move(files_)};
  }

 private:
  template <typename C>
  static ResultSink& Of(C* r) {
    return *static_cast<ResultSink*>(r->host);
  }

  void Write(const void* data, size_t size) {
    if (data != nullptr && size > 0) output_.append(static_cast<const char*>(data), size);
  }

  void Log(RunnelLogLevel level, const char* message) {
    auto& log = ctx_->Log();
    const std::string_view text = Text(message);
    switch (level) {
      case RUNNEL_LOG_DEBUG:
        log.debug("{}", text);
        break;
      case RUNNEL_LOG_INFO:
        log.info("{}", text);
        break;
      case RUNNEL_LOG_WARN:
        log.warn("{}", text);
        break;
      default:
        log.error("{}", text);
        break;
    }
  }

  // Parses facts_json; logs and returns false when it is not a JSON object.
  bool Facts(const char* facts_json, nlohmann::json& facts) {
    facts = nlohmann::json::object();
    if (facts_json == nullptr || *facts_json == '\0') return true;
    facts = nlohmann::json::parse(facts_json, nullptr, false);
    if (facts.is_object()) return true;
    ctx_->Log().warn("{}: output facts must be a JSON object, got: {}", function_,
                     Text(facts_json).substr(0, 200));
    return false;
  }

  int WriteOutput(std::string_view name, const void* data, size_t size, const char* facts_json) {
    nlohmann::json facts;
    if (!PlainSegment(name)) {
      ctx_->Log().warn("{}: output name '{}' is not a plain file name", function_, name);
      return RUNNEL_E_BAD_INPUT;
    }
    if (!Facts(facts_json, facts)) return RUNNEL_E_BAD_INPUT;
    try {
      const std::string_view bytes(static_cast<const char*>(data), data ? size : 0);
      files_.push_back(ctx_->Outputs().Write(function_, event_->envelope.id, name, bytes, std::move(facts)));
      return RUNNEL_OK;
    } catch (const FunctionError& e) {
      ctx_->Log().warn("{}: {}", function_, e.what());
      return ErrcToStatus(e.Code());
    }
  }

  int AddOutput(std::string_view name, const char* facts_json) {
    nlohmann::json facts;
    if (!PlainSegment(name)) {
      ctx_->Log().warn("{}: output name '{}' is not a plain file name", function_, name);
      return RUNNEL_E_BAD_INPUT;
    }
    if (!Facts(facts_json, facts)) return RUNNEL_E_BAD_INPUT;
    const auto path = ctx_->Outputs().Root() / function_ / event_->envelope.id / std::string(name);
    std::error_code ec;
    const bool present = std::filesystem::is_regular_file(path, ec);
    const std::uint64_t bytes = present ? std::filesystem::file_size(path, ec) : 0;
    if (!present || ec) {
      ctx_->Log().warn("{}: add_output: {} is not a file the plugin wrote", function_, path.string());
      return RUNNEL_E_BAD_INPUT;
    }
    files_.push_back(OutputFile{path.string(), bytes, std::move(facts)});
    return RUNNEL_OK;
  }

  int Emit(std::string_view topic, const void* key, size_t key_size, const void* payload, size_t payload_size,
           const RunnelHeaderV1* headers, size_t header_count) {
    if (topic.empty()) {
      ctx_->Log().warn("{}: emit needs a topic", function_);
      return RUNNEL_E_BAD_INPUT;
    }
    Headers copied;
    for (size_t i = 0; headers != nullptr && i < header_count; ++i) {
      copied.push_back(
          {std::string(Text(headers[i].name)), std::string(headers[i].value ? headers[i].value : "",
                                                           headers[i].value ? headers[i].value_size : 0)});
    }
    try {
      ctx_->Emit(topic, key ? std::string_view(static_cast<const char*>(key), key_size) : std::string_view(),
                 std::string(static_cast<const char*>(payload), payload ? payload_size : 0),
                 std::move(copied));
      return RUNNEL_OK;
    } catch (const FunctionError& e) {
      ctx_->Log().warn("{}: emit to {}: {}", function_, topic, e.what());
      return ErrcToStatus(e.Code());
    } catch (const std::exception& e) {
      ctx_->Log().warn("{}: emit to {}: {}", function_, topic, e.what());
      return RUNNEL_E_TRANSIENT;
    }
  }

  RunnelResultV1 v1_{};
  RunnelResultV2 v2_{};
  Context* ctx_;
  const Event* event_;
  std::string function_;
  std::string output_;
  std::string content_type_ = "application/octet-stream";
  std::string error_;
  std::vector<OutputFile> files_;
};

// An event in the C ABI's shape, with the storage its pointers refer to. Not movable once built.
class CEvent {
 public:
  CEvent(const Event& event, Context& ctx, const std::string& function) {
    headers_.reserve(event.envelope.extra.size() + 1);
    for (const auto& h : event.envelope.extra)
      headers_.push_back({h.name.c_str(), h.value.c_str(), h.value.size()});
    // The envelope reads `traceparent` into its trace fields: a plugin still sees it as a header.
    if (!event.envelope.trace_id.empty() && !event.envelope.span_id.empty()) {
      traceparent_ =
          FormatTraceparent({event.envelope.trace_id, event.envelope.span_id,
                             event.envelope.trace_flags.empty() ? "00" : event.envelope.trace_flags});
      headers_.push_back({"traceparent", traceparent_.c_str(), traceparent_.size()});
    }
    if (event.envelope.file && event.envelope.file->IsUrl()) {
      // The C ABI has a file path or the payload; a URL is not fetched on a plugin's behalf.
      throw FunctionError(
          Errc::kBadInput,
          fmt::format("plugin functions take a file:// reference or an inline payload, not a URL "
                      "({})",
                      UrlForLogs(event.envelope.file->url)));
    }
    file_path_ = event.envelope.file ? event.envelope.file->path : std::string();
    output_dir_ = (ctx.Outputs().Root() / function / event.envelope.id).string();
    c_.struct_size = sizeof(RunnelEventV1);
    c_.id = event.envelope.id.c_str();
    c_.key = event.key.c_str();
    c_.key_size = event.key.size();
    c_.has_key = event.key.empty() ? 0 : 1;
    c_.payload = event.payload.c_str();
    c_.payload_size = event.payload.size();
    c_.file_path = file_path_.c_str();
    c_.content_type = event.envelope.content_type.c_str();
    c_.topic = event.topic.c_str();
    c_.partition = event.partition;
    c_.offset = event.offset;
    c_.attempt = static_cast<std::uint32_t>(event.envelope.attempt);
    const auto deadline = ctx.Deadline();
    c_.timeout_ms = deadline == std::chrono::steady_clock::time_point::max()
                        ? -1
                        : std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                        deadline - std::chrono::steady_clock::now())
                                                        .count());
    c_.output_dir = output_dir_.c_str();
    c_.headers = headers_.data();
    c_.header_count = headers_.size();
  }
  ~CEvent() = default;
  CEvent(const CEvent&) = delete;
  CEvent& operator=(const CEvent&) = delete;
  const RunnelEventV1& C() const { return c_; }

 private:
  std::string traceparent_;
  std::vector<RunnelHeaderV1> headers_;
  std::string file_path_;
  std::string output_dir_;
  RunnelEventV1 c_{};
};

class PluginFunction final : public Function {
 public:
  PluginFunction(Library library, Entry fn, void* instance, std::string function_name)
      : library_(std::move(library)), fn_(fn), instance_(instance), function_name_(std::move(function_name)) {
    if (function_name_.empty()) function_name_ = fn_.Name();
  }

  PluginFunction(const PluginFunction&) = delete;
  PluginFunction& operator=(const PluginFunction&) = delete;
  ~PluginFunction() override {
    void (*destroy)(void*) = fn_.v2 ? fn_.v2->destroy : fn_.v1->destroy;
    if (destroy != nullptr) destroy(instance_);
  }

  Result Handle(const Event& event, Context& ctx) override {
    const CEvent e(event, ctx, function_name_);
    ResultSink sink(ctx, event, function_name_);
    const int status =
        fn_.v2 ? fn_.v2->handle(instance_, &e.C(), sink.V2()) : fn_.v1->handle(instance_, &e.C(), sink.V1());
    return sink.Finish(status, fn_.Name());
  }

  // The descriptor's batch_max_events / batch_window_ms are the plugin's default; the config's
  // `batch` key overrides them. A plugin with handle_batch (or a default above 1) takes batches.
  BatchSpec Batch() const override {
    if (fn_.v2 == nullptr || fn_.v2->batch_max_events <= 1) return {};
    return {fn_.v2->batch_max_events, std::chrono::milliseconds(fn_.v2->batch_window_ms)};
  }
  bool TakesBatches() const override {
    return fn_.v2 != nullptr && (fn_.v2->handle_batch != nullptr || fn_.v2->batch_max_events > 1);
  }

  std::vector<ResultOrError> HandleBatch(std::span<const Event> events, Context& ctx) override {
    if (fn_.v2 == nullptr || fn_.v2->handle_batch == nullptr) return Function::HandleBatch(events, ctx);
    // C arrays for the plugin; the storage behind them is built in place and never moves.
    std::vector<std::unique_ptr<CEvent>> storage;
    std::vector<std::unique_ptr<ResultSink>> sinks;
    std::vector<RunnelEventV1> c_events;
    std::vector<RunnelResultV2> c_results;
    for (const Event& event : events) {
      storage.push_back(std::make_unique<CEvent>(event, ctx, function_name_));
      sinks.push_back(std::make_unique<ResultSink>(ctx, event, function_name_));
      c_events.push_back(storage.back()->C());
      c_results.push_back(*sinks.back()->V2());  // host points at the sink, so a copy works the same
    }
    std::vector<int> statuses(events.size(), RUNNEL_E_INTERNAL);
    fn_.v2->handle_batch(instance_, c_events.data(), c_events.size(), c_results.data(), statuses.data());
    std::vector<ResultOrError> outcomes(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      try {
        outcomes[i].result = sinks[i]->Finish(statuses[i], fn_.Name());
      } catch (const FunctionError& e) {
        outcomes[i].error = e;
      }
    }
    return outcomes;
  }

 private:
  Library library_;  // declared first: destroyed last, after destroy() ran
  Entry fn_;
  void* instance_;
  std::string function_name_;
};

}  // namespace

std::vector<PluginFunctionInfo> InspectPlugin(const std::string& path) {
  const Loaded loaded = Load(path);
  std::vector<PluginFunctionInfo> out;
  for (const Entry& f : loaded.functions)
    out.push_back({f.Name(), f.Description() ? f.Description() : "", loaded.version});
  return out;
}

std::unique_ptr<Function> LoadPluginFunction(const std::string& path, const std::string& name,
                                             const nlohmann::json& params, const std::string& function_name) {
  Loaded loaded = Load(path);
  const Entry* chosen = nullptr;
  if (name.empty()) {
    if (loaded.functions.size() != 1) {
      Refuse(path, fmt::format("it provides {} functions ({}): pick one with plugin:{}#NAME",
                               loaded.functions.size(), Names(loaded), path));
    }
    chosen = &loaded.functions[0];
  } else {
    for (const Entry& f : loaded.functions) {
      if (name == f.Name()) chosen = &f;
    }
    if (chosen == nullptr)
      Refuse(path, fmt::format("it has no function '{}' (it has: {})", name, Names(loaded)));
  }
  const std::string params_json = params.is_null() ? "{}" : params.dump();
  char error[1024] = {0};
  void* instance = chosen->v2 ? chosen->v2->create(params_json.c_str(), error, sizeof error)
                              : chosen->v1->create(params_json.c_str(), error, sizeof error);
  if (instance == nullptr) {
    error[sizeof error - 1] = '\0';
    throw FunctionError(Errc::kBadConfig,
                        fmt::format("{}: {}", chosen->Name(), error[0] ? error : "create() failed"));
  }
  return std::make_unique<PluginFunction>(std::move(loaded.library), *chosen, instance, function_name);
}

}  // namespace runnel::functions
