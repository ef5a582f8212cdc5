// Test harness for iot.ingest: a fake Context that records emitted events, a fixed clock, and
// helpers that run one event or a batch and parse the result JSON.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "iot/ingest.hpp"
#include "runnel/functions/function.hpp"

namespace runnel::functions::iot::testing {

// 2023-11-14T22:13:20Z; a multiple of 60000 ms, so it starts a one-minute window.
inline constexpr std::int64_t kNow = 1'699'999'980'000;
static_assert(kNow % 60'000 == 0);

struct Emitted {
  std::string topic;
  std::string key;
  std::string payload;
  Headers headers;
};

class FakeContext final : public Context {
 public:
  explicit FakeContext(nlohmann::json params = nlohmann::json::object())
      : params_(std::move(params)), logger_("iot-test"), outputs_(std::filesystem::temp_directory_path()) {}
  const nlohmann::json& Params() const override { return params_; }
  std::chrono::steady_clock::time_point Deadline() const override {
    return std::chrono::steady_clock::time_point::max();
  }
  spdlog::logger& Log() override { return logger_; }
  OutputStore& Outputs() override { return outputs_; }
  void Emit(std::string_view topic, std::string_view key, std::string payload, Headers headers) override {
    emitted.push_back({std::string(topic), std::string(key), std::move(payload), std::move(headers)});
  }

  std::vector<Emitted> emitted;

 private:
  nlohmann::json params_;
  spdlog::logger logger_;
  OutputStore outputs_;
};

inline Event MakeEvent(std::string payload, std::string id = "ev-1") {
  Event event;
  event.envelope.id = std::move(id);
  event.envelope.content_type = "application/x-ndjson";
  event.payload = std::move(payload);
  return event;
}

// One reading line in the nested form.
inline std::string Line(std::string_view device, std::int64_t ts, const nlohmann::json& metrics) {
  return nlohmann::json{{"device", device}, {"ts", ts}, {"metrics", metrics}}.dump() + "\n";
}

class Harness {
 public:
  explicit Harness(const nlohmann::json& params = nlohmann::json::object()) : Harness(kNow, params) {}
  Harness(std::int64_t now, const nlohmann::json& params)
      : function_(MakeIngestFunction(params, [now] { return now; })), ctx_(params) {}

  nlohmann::json Run(const std::string& payload) {
    const Result result = function_->Handle(MakeEvent(payload), ctx_);
    EXPECT_EQ(result.content_type, "application/json");
    return nlohmann::json::parse(result.output);
  }
  std::string RunRaw(const std::string& payload) {
    return function_->Handle(MakeEvent(payload), ctx_).output;
  }

  // The error Handle throws; fails the test when it succeeds.
  FunctionError Fail(const std::string& payload) {
    try {
      function_->Handle(MakeEvent(payload), ctx_);
    } catch (const FunctionError& e) {
      return e;
    }
    ADD_FAILURE() << "expected iot.ingest to fail on: " << payload.substr(0, 200);
    return FunctionError(Errc::kInternal, "did not fail");
  }

  std::vector<ResultOrError> Batch(const std::vector<Event>& events) {
    return function_->HandleBatch(events, ctx_);
  }

  Function& Fn() { return *function_; }
  FakeContext& Ctx() { return ctx_; }

 private:
  std::unique_ptr<Function> function_;
  FakeContext ctx_;
};

}  // namespace runnel::functions::iot::testing
