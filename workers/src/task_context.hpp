// The Context a function call sees inside a worker: params, deadline, logger, output store. Emit is
// not wired to a producer yet and fails with an internal error saying so.
//
// Thread-safety: one TaskContext per call, used by the fiber running that call only. The params,
// logger and store it refers to are shared by all calls and must outlive it.
#pragma once

#include <chrono>

#include "runnel/functions/function.hpp"

namespace runnel::workers {

class TaskContext final : public functions::Context {
 public:
  TaskContext(const nlohmann::json& params, std::chrono::steady_clock::time_point deadline,
              spdlog::logger& log, functions::OutputStore& outputs)
      : params_(params), deadline_(deadline), log_(log), outputs_(outputs) {}

  const nlohmann::json& Params() const override { return params_; }
  std::chrono::steady_clock::time_point Deadline() const override { return deadline_; }
  spdlog::logger& Log() override { return log_; }
  functions::OutputStore& Outputs() override { return outputs_; }
  void Emit(std::string_view topic, std::string_view key, std::string payload, Headers headers) override;

 private:
  const nlohmann::json& params_;
  std::chrono::steady_clock::time_point deadline_;
  spdlog::logger& log_;
  functions::OutputStore& outputs_;
};

}  // namespace runnel::workers
