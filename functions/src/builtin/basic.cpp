// echo and sleep: the smallest real functions, used by the quick start, tests and benchmarks.
#include <fmt/format.h>

#include <boost/fiber/operations.hpp>

#include "builtins.hpp"

namespace runnel::functions {
namespace {

class Echo final : public Function {
 public:
  Result Handle(const Event& event, Context&) override {
    return Result{
        event.payload,
        event.envelope.content_type.empty() ? "application/octet-stream" : event.envelope.content_type,
        {}};
  }
};

// Waits `ms` (params; a JSON payload {"ms": N} overrides it) without blocking the worker's thread,
// then returns its payload. A payload {"fail": "reason"} fails the call with that reason, so tests
// can mix poison events into a stream; {"fail": "...", "permanent": true} fails as bad input;
// {"fail": "...", "fail_attempts": N} fails only attempts 1..N, so a retry succeeds.
class Sleep final : public Function {
 public:
  explicit Sleep(std::int64_t ms) : ms_(ms) {}

  Result Handle(const Event& event, Context&) override {
    std::int64_t ms = ms_;
    const auto body = nlohmann::json::parse(event.payload, nullptr, /*allow_exceptions=*/false);
    if (body.is_object()) {
      if (auto it = body.find("ms"); it != body.end() && it->is_number_integer())
        ms = it->get<std::int64_t>();
      const auto fail_attempts = body.value("fail_attempts", std::int64_t{-1});
      if (auto it = body.find("fail");
          it != body.end() && (fail_attempts < 0 || event.envelope.attempt <= fail_attempts)) {
        const bool permanent = body.value("permanent", false);
        throw FunctionError(permanent ? Errc::kBadInput : Errc::kTransient,
                            it->is_string() ? it->get<std::string>() : it->dump());
      }
    }
    if (ms < 0 || ms > 3'600'000)
      throw FunctionError(Errc::kBadInput, fmt::format("sleep ms {} is outside 0..3600000", ms));
    boost::this_fiber::sleep_for(std::chrono::milliseconds(ms));
    return Result{event.payload, "application/octet-stream", {}};
  }

 private:
  std::int64_t ms_;
};

}  // namespace

void RegisterBasicFunctions(Registry& registry) {
  registry.Register("echo", "returns its payload unchanged",
                    [](const nlohmann::json&) { return std::make_unique<Echo>(); });
  registry.Register(
      "sleep", "waits params.ms (or the payload's \"ms\") without blocking its thread; for tests",
      [](const nlohmann::json& params) {
        const auto ms = params.value("ms", std::int64_t{0});
        if (ms < 0 || ms > 3'600'000) {
          throw FunctionError(Errc::kBadConfig, fmt::format("sleep: params.ms {} is outside 0..3600000", ms));
        }
        return std::make_unique<Sleep>(ms);
      });
}

}  // namespace runnel::functions
