// echo and sleep: the smallest real functions, used by the quick start, tests and benchmarks.
#include <fmt/format.h>

#include <boost/fiber/operations.hpp>

#include "builtins.hpp"

namespace runnel::functions {
namespace {

// The input's bytes: the inline payload, or those of an input that travels by reference (a
// file:// path or an http(s) URL), read within max_bytes. A built-in that answers with "its input"
// never answers with a reference's empty body (`runnel invoke echo --file F` printed nothing).
std::string InputBytes(const Event& event, std::size_t max_bytes, Context& ctx) {
  if (event.envelope.file) return Context::ReadInput(event, max_bytes, ctx.Deadline());
  return event.payload;
}

// params.max_bytes of `function`: the cap on a by-reference input (an inline payload is the
// dispatcher's to bound, max_payload); default 16 MiB, at most 1 GiB.
std::size_t MaxBytesParam(const nlohmann::json& params, std::string_view function) {
  constexpr std::int64_t kDefault = std::int64_t{16} << 20;
  constexpr std::int64_t kCeiling = std::int64_t{1} << 30;
  const auto it = params.find("max_bytes");
  if (it == params.end()) return static_cast<std::size_t>(kDefault);
  if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > kCeiling) {
    throw FunctionError(Errc::kBadConfig, fmt::format("{}: params.max_bytes {} is not an integer in 1..{}",
                                                      function, it->dump(), kCeiling));
  }
  return static_cast<std::size_t>(it->get<std::int64_t>());
}

// Returns its input unchanged (InputBytes), with its content type.
class Echo final : public Function {
 public:
  explicit Echo(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  Result Handle(const Event& event, Context& ctx) override {
    std::string content_type =
        event.envelope.content_type.empty() ? "application/octet-stream" : event.envelope.content_type;
    return Result{InputBytes(event, max_bytes_, ctx), std::move(content_type), {}};
  }

 private:
  std::size_t max_bytes_;
};

// Waits `ms` (params; a JSON input {"ms": N} overrides it) without blocking the worker's thread,
// then returns its input (InputBytes: a by-reference input is read too). An input
// {"fail": "reason"} fails the call with that reason, so tests can mix poison events into a stream;
// {"fail": "...", "permanent": true} fails as bad input; {"fail": "...", "fail_attempts": N} fails
// only attempts 1..N, so a retry succeeds.
class Sleep final : public Function {
 public:
  Sleep(std::int64_t ms, std::size_t max_bytes) : ms_(ms), max_bytes_(max_bytes) {}

  Result Handle(const Event& event, Context& ctx) override {
    std::int64_t ms = ms_;
    std::string input = InputBytes(event, max_bytes_, ctx);
    const auto body = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
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
    return Result{std::move(input), "application/octet-stream", {}};
  }

 private:
  std::int64_t ms_;
  std::size_t max_bytes_;
};

}  // namespace

void RegisterBasicFunctions(Registry& registry) {
  registry.Register(
      "echo",
      "returns its input unchanged (a by-reference input read within params.max_bytes, default 16 MiB)",
      [](const nlohmann::json& params) { return std::make_unique<Echo>(MaxBytesParam(params, "echo")); });
  registry.Register(
      "sleep",
      "waits params.ms (or the input's \"ms\") without blocking its thread, then returns its input (a "
      "by-reference input read within params.max_bytes, default 16 MiB); for tests",
      [](const nlohmann::json& params) {
        const auto ms = params.value("ms", std::int64_t{0});
        if (ms < 0 || ms > 3'600'000) {
          throw FunctionError(Errc::kBadConfig, fmt::format("sleep: params.ms {} is outside 0..3600000", ms));
        }
        return std::make_unique<Sleep>(ms, MaxBytesParam(params, "sleep"));
      });
}

}  // namespace runnel::functions
