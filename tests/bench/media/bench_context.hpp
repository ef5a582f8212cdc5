// The smallest Context a benchmark needs: outputs into a directory, no deadline, a silent logger.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "runnel/functions/function.hpp"

namespace runnel::functions::bench {

class BenchContext final : public Context {
 public:
  explicit BenchContext(const std::filesystem::path& root)
      : logger_(std::make_shared<spdlog::logger>("bench")), store_(root) {}
  const nlohmann::json& Params() const override { return params_; }
  std::chrono::steady_clock::time_point Deadline() const override {
    return std::chrono::steady_clock::now() + std::chrono::hours(1);
  }
  spdlog::logger& Log() override { return *logger_; }
  OutputStore& Outputs() override { return store_; }
  void Emit(std::string_view, std::string_view, std::string, Headers) override {}

 private:
  nlohmann::json params_ = nlohmann::json::object();
  std::shared_ptr<spdlog::logger> logger_;
  OutputStore store_;
};

inline Event FileEvent(const std::string& path, std::string id) {
  Event e;
  e.envelope.id = std::move(id);
  e.envelope.file = FileRef{path, std::nullopt, std::filesystem::path(path).filename().string()};
  return e;
}

inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace runnel::functions::bench
