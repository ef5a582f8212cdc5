// The function SDK: what a processing function implements and what the worker hands it.
// A function is stateless between events; everything it needs arrives in the Event and Context.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runnel/core/batch_spec.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/core/errc.hpp"
#include "runnel/core/error.hpp"
#include "runnel/functions/output_store.hpp"

namespace runnel::functions {

// Error kinds live in core (workers and dispatchers use them too); functions name them here.
using runnel::Errc;
using runnel::ErrcName;
using runnel::ErrorCategory;
using runnel::IsRetriable;

class FunctionError : public Error {
 public:
  FunctionError(Errc code, std::string message) : Error(std::move(message), IsRetriable(code)), code_(code) {}
  Errc Code() const { return code_; }

 private:
  Errc code_;
};

// One event as a function sees it.
struct Event {
  Envelope envelope;  // decoded headers; envelope.id is always set here
  std::string key;
  std::string payload;  // inline bytes; empty when envelope.file references the input
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
};

// What a successful call returns. `output` is the result body (JSON text for structured results).
struct Result {
  std::string output;
  std::string content_type = "application/json";
  std::vector<OutputFile> files;
};

// The worker's side of a call: config params, deadline, logger, output store, and Emit for pipelines.
class Context {
 public:
  virtual ~Context() = default;
  virtual const nlohmann::json& Params() const = 0;
  virtual std::chrono::steady_clock::time_point Deadline() const = 0;
  virtual spdlog::logger& Log() = 0;
  virtual OutputStore& Outputs() = 0;
  // Publishes a new event to `topic`; its hop count is the current event's plus one.
  virtual void Emit(std::string_view topic, std::string_view key, std::string payload, Headers headers) = 0;

  // The event's input bytes: the inline payload, the referenced file read in one call, or the
  // referenced http(s) URL fetched (docs/protocol.md §1.2). Throws kLimitExceeded past max_bytes
  // (checked before reading a file; for a URL on its Content-Length and while the body streams),
  // kBadInput when the file is missing (naming this host) or the server answers 4xx ("GET
  // https://host/path: HTTP 404"; never the query), kTransient for a 5xx, a connection failure or
  // a fetch that runs out of time. A fetch takes at most kUrlFetchTimeout and, with a deadline
  // (the function's timeout: pass ctx.Deadline()), never runs past it; it follows at most
  // kUrlMaxRedirects redirects, and only to http or https.
  static std::string ReadInput(const Event& event, std::size_t max_bytes);
  static std::string ReadInput(const Event& event, std::size_t max_bytes,
                               std::chrono::steady_clock::time_point deadline);
  static constexpr std::chrono::milliseconds kUrlFetchTimeout{60'000};
  static constexpr long kUrlMaxRedirects = 5;
};

// One outcome of a batch call: a Result, or the error for that event alone.
struct ResultOrError {
  std::optional<Result> result;
  std::optional<FunctionError> error;
};

class Function {
 public:
  virtual ~Function() = default;
  // Handles one event. Throws FunctionError on failure; any other exception counts as kInternal.
  virtual Result Handle(const Event& event, Context& ctx) = 0;
  // The batch the function asks for when the stack config's `batch` key says nothing: one event
  // per call unless it overrides this. What a worker runs is EffectiveBatch() below.
  virtual BatchSpec Batch() const { return {}; }
  // Whether a call may get several events (`batch.size` above 1 in the config). A function that
  // gains nothing from batches leaves this false, so such a config is an error, not a slow no-op.
  virtual bool TakesBatches() const { return Batch().size > 1; }
  // Handles several events; one outcome per event, in order. The default calls Handle for each.
  virtual std::vector<ResultOrError> HandleBatch(std::span<const Event> events, Context& ctx);
};

// The batch a function runs with, the one rule for `runnel up` (at start) and the worker (at
// WELCOME): the config's `batch` when given, else the function's own Batch(). Throws
// FunctionError(kBadConfig) when the config asks for more than one event per call from a
// function that does not TakesBatches().
BatchSpec EffectiveBatch(const Function& function, const std::optional<BatchSpec>& configured);

// Builds a function from its params (config). Throws FunctionError(kBadConfig) naming the bad param.
using Factory = std::function<std::unique_ptr<Function>(const nlohmann::json& params)>;

// Functions by name. Built-ins are registered explicitly (no static initialisers, which static
// libraries drop). Thread-safe for reads after registration.
class Registry {
 public:
  void Register(std::string name, std::string summary, Factory factory);
  // Throws FunctionError(kUnknownFunction) listing the known names.
  std::unique_ptr<Function> Create(const std::string& name, const nlohmann::json& params) const;
  bool Contains(const std::string& name) const;
  std::vector<std::string> Names() const;
  std::string Summary(const std::string& name) const;

 private:
  struct Entry {
    std::string summary;
    Factory factory;
  };
  std::map<std::string, Entry, std::less<>> entries_;
};

// A registry holding every built-in function (echo, sleep, image.*, video.*, iot.*).
const Registry& Builtins();

}  // namespace runnel::functions
