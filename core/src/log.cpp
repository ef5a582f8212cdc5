#include "runnel/core/log.hpp"

#include <spdlog/cfg/helpers.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <mutex>

namespace runnel::log {

std::shared_ptr<spdlog::logger> Get(const std::string& subsystem) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (auto existing = spdlog::get(subsystem)) return existing;
  // Logs go to stderr so that commands keep stdout for data (JSON lines, ids).
  auto logger = spdlog::stderr_color_mt(subsystem);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  // spdlog applies RUNNEL_LOG's per-logger levels to loggers registered after ConfigureFromEnv.
  return logger;
}

void ConfigureFromEnv() {
  // Default level info; RUNNEL_LOG overrides globally and per logger.
  spdlog::set_level(spdlog::level::info);
  if (const char* levels = std::getenv("RUNNEL_LOG"); levels != nullptr && *levels != '\0') {
    spdlog::cfg::helpers::load_levels(levels);
  }
}

}  // namespace runnel::log
