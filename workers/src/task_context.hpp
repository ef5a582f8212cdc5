// The Context a function call sees inside a worker: params, deadline, logger, output store, and
// Emit, which collects events for the dispatcher to publish when the call succeeds (docs/protocol.md
// §3: emitted events travel with the result; the dispatcher produces them before committing).
//
// Thread-safety: one TaskContext per call, used by the fiber running that call only. The params,
// logger and store it refers to are shared by all calls and must outlive it.
#pragma once

#include <chrono>

#include "runnel/core/wire.hpp"
#include "runnel/functions/function.hpp"

namespace runnel::workers {

class TaskContext final : public functions::Context {
 public:
  TaskContext(const nlohmann::json& params, std::chrono::steady_clock::time_point deadline,
              spdlog::logger& log, functions::OutputStore& outputs)
      : params_(params), deadline_(deadline), log_(log), outputs_(outputs) {}

  // At most this many events, and this many payload bytes in all, per call.
  static constexpr std::size_t kMaxEmits = 10'000;
  static constexpr std::size_t kMaxEmitBytes = 16 << 20;

  const nlohmann::json& Params() const override { return params_; }
  std::chrono::steady_clock::time_point Deadline() const override { return deadline_; }
  spdlog::logger& Log() override { return log_; }
  functions::OutputStore& Outputs() override { return outputs_; }
  void Emit(std::string_view topic, std::string_view key, std::string payload, Headers headers) override;
  // What Emit collected, for the result of a successful call.
  std::vector<wire::EmitRecord> TakeEmitted() { return std::move(emitted_); }

 private:
  const nlohmann::json& params_;
  std::chrono::steady_clock::time_point deadline_;
  spdlog::logger& log_;
  functions::OutputStore& outputs_;
  std::vector<wire::EmitRecord> emitted_;
  std::size_t emitted_bytes_ = 0;
};

}  // namespace runnel::workers
