// echo and sleep: the smallest real functions, used by the quick start, tests and benchmarks.
#include <fmt/format.h>

#include <boost/fiber/operations.hpp>

#include "builtins.hpp"

namespace runnel::functions {
namespace {

// Returns its input unchanged, with its content type: the inline payload, or the bytes of an
// input that travels by reference (a file:// path or an http(s) URL), read within
// params.max_bytes (default 16 MiB), so that `runnel invoke echo --file F` answers with F.
class Echo final : public Function {
 public:
  explicit Echo(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  Result Handle(const Event& event, Context& ctx) override {
    std::string content_type =
        event.envelope.content_type.empty() ? "application/octet-stream" : event.envelope.content_type;
    if (event.envelope.file) {
      return Result{Context::ReadInput(event, max_bytes_, ctx.Deadline()), std::move(content_type), {}};
    }
    return Result{event.payload, std::move(content_type), {}};
  }

 private:
  std::size_t max_bytes_;
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
  registry.Register(
      "echo",
      "returns its input unchanged (a by-reference input read within params.max_bytes, default 16 MiB)",
      [](const nlohmann::json& params) {
        constexpr std::int64_t kDefault = std::int64_t{16} << 20;
        constexpr std::int64_t kCeiling = std::int64_t{1} << 30;
        const auto it = params.find("max_bytes");
        if (it == params.end()) return std::make_unique<Echo>(static_cast<std::size_t>(kDefault));
        if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > kCeiling) {
          throw FunctionError(
              Errc::kBadConfig,
              fmt::format("echo: params.max_bytes {} is not an integer in 1..{}", it->dump(), kCeiling));
        }
        return std::make_unique<Echo>(static_cast<std::size_t>(it->get<std::int64_t>()));
      });
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
