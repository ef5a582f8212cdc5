// A Context for calling functions directly in unit tests: params, an optional deadline, outputs in
// a temporary directory.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runnel/functions/function.hpp"

namespace runnel::functions::testing {

class TestContext final : public Context {
 public:
  explicit TestContext(std::chrono::milliseconds timeout = std::chrono::milliseconds(0))
      : deadline_(timeout.count() > 0 ? std::chrono::steady_clock::now() + timeout
                                      : std::chrono::steady_clock::time_point::max()),
        logger_("sdk-test"),
        outputs_(std::filesystem::temp_directory_path() / "runnel-sdk-test") {}
  const nlohmann::json& Params() const override { return params_; }
  std::chrono::steady_clock::time_point Deadline() const override { return deadline_; }
  spdlog::logger& Log() override { return logger_; }
  OutputStore& Outputs() override { return outputs_; }
  void Emit(std::string_view topic, std::string_view key, std::string payload, Headers headers) override {
    emitted.push_back({std::string(topic), std::string(key), std::move(payload), std::move(headers)});
  }

  struct Emitted {
    std::string topic;
    std::string key;
    std::string payload;
    Headers headers;
  };
  std::vector<Emitted> emitted;  // what the function emitted, in order

 private:
  nlohmann::json params_ = nlohmann::json::object();
  std::chrono::steady_clock::time_point deadline_;
  spdlog::logger logger_;
  OutputStore outputs_;
};

inline Event MakeEvent(std::string payload, std::string id = "ev-1") {
  Event e;
  e.envelope.id = std::move(id);
  e.payload = std::move(payload);
  e.topic.assign(1, 't');
  e.partition = 0;
  e.offset = 7;
  return e;
}

// The FunctionError a call throws (fails the test when it returns).
template <typename Call>
FunctionError ErrorOf(Call&& call) {
  try {
    call();
  } catch (const FunctionError& e) {
    return e;
  }
  ADD_FAILURE() << "expected a FunctionError";
  return FunctionError(Errc::kInternal, "no error");
}

}  // namespace runnel::functions::testing
