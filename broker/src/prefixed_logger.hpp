// The dispatcher's logger: a subsystem's spdlog logger (log::kBroker) whose lines all start with one
// prefix, "dispatcher <function>: ". The logger itself is shared and keeps its name, so RUNNEL_LOG's
// per-logger levels, the human and JSON formats and the JSON "logger" field are as for any line of
// the subsystem; only the message gets the prefix.
#pragma once

#include <fmt/format.h>
#include <spdlog/logger.h>

#include <iterator>
#include <memory>
#include <string>
#include <utility>

namespace runnel::broker {

class PrefixedLogger {
 public:
  PrefixedLogger(std::shared_ptr<spdlog::logger> logger, std::string prefix)
      : logger_(std::move(logger)), prefix_(std::move(prefix)) {}

  template <typename... Args>
  void debug(fmt::format_string<Args...> format, Args&&... args) {
    Log(spdlog::level::debug, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> format, Args&&... args) {
    Log(spdlog::level::info, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) {
    Log(spdlog::level::warn, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void error(fmt::format_string<Args...> format, Args&&... args) {
    Log(spdlog::level::err, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void critical(fmt::format_string<Args...> format, Args&&... args) {
    Log(spdlog::level::critical, format, std::forward<Args>(args)...);
  }
  bool should_log(spdlog::level::level_enum level) const { return logger_->should_log(level); }
  // The logger without the prefix, for what writes lines of its own (ProtocolErrors::Report).
  spdlog::logger& Unprefixed() const { return *logger_; }

 private:
  template <typename... Args>
  void Log(spdlog::level::level_enum level, fmt::format_string<Args...> format, Args&&... args) {
    if (!logger_->should_log(level)) return;
    fmt::memory_buffer line;
    line.append(prefix_.data(), prefix_.data() + prefix_.size());
    fmt::format_to(std::back_inserter(line), format, std::forward<Args>(args)...);
    logger_->log(level, spdlog::string_view_t(line.data(), line.size()));
  }

  std::shared_ptr<spdlog::logger> logger_;
  std::string prefix_;
};

}  // namespace runnel::broker
