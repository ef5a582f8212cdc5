#include "runnel/core/log.hpp"

#include <fmt/chrono.h>
#include <spdlog/cfg/helpers.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>

#include "runnel/core/error.hpp"

namespace runnel::log {
namespace {

constexpr const char* kHumanPattern = "%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v";

thread_local std::string_view current_event;
thread_local std::string_view current_trace;
std::atomic<EventIdSource> event_source{nullptr};

std::string_view CurrentEvent() {
  if (!current_event.empty()) return current_event;
  const EventIdSource source = event_source.load(std::memory_order_relaxed);
  return source != nullptr ? source() : std::string_view();
}

std::mutex& Mutex() {
  static std::mutex mu;
  return mu;
}

Format& CurrentFormat() {
  static Format format = Format::kHuman;
  return format;
}

// One JSON object per line, keys in a fixed order (ts, level, logger, message, event); nlohmann
// escapes the message, and invalid UTF-8 becomes U+FFFD (as JsonText does) instead of an
// exception in the middle of logging.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    nlohmann::ordered_json line = {
        {"ts", fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", tm, ms % 1000)},
        {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                              spdlog::level::to_string_view(msg.level).size())},
        {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
        {"message", std::string(msg.payload.data(), msg.payload.size())},
    };
    if (const auto event = CurrentEvent(); !event.empty()) line["event"] = std::string(event);
    if (!current_trace.empty()) line["trace"] = std::string(current_trace);
    const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

void ApplyFormat(spdlog::logger& logger, Format format) {
  if (format == Format::kJson) {
    logger.set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger.set_formatter(std::make_unique<spdlog::pattern_formatter>(kHumanPattern));
  }
}

}  // namespace

std::shared_ptr<spdlog::logger> Get(const std::string& subsystem) {
  std::lock_guard lock(Mutex());
  if (auto existing = spdlog::get(subsystem)) return existing;
  // Logs go to stderr so that commands keep stdout for data (JSON lines, ids). Colours only when
  // stderr is a terminal (spdlog's color_mode::automatic).
  auto logger = spdlog::stderr_color_mt(subsystem);
  ApplyFormat(*logger, CurrentFormat());
  // spdlog applies RUNNEL_LOG's per-logger levels to loggers registered after ConfigureFromEnv.
  return logger;
}

Format ParseFormat(std::string_view text) {
  if (text == "human") return Format::kHuman;
  if (text == "json") return Format::kJson;
  throw ConfigError(fmt::format("log format '{}' is not one of: human, json", text));
}

void SetFormat(Format format) {
  std::lock_guard lock(Mutex());
  CurrentFormat() = format;
  ::setenv("RUNNEL_LOG_FORMAT", format == Format::kJson ? "json" : "human", 1);
  spdlog::apply_all([format](const std::shared_ptr<spdlog::logger>& l) { ApplyFormat(*l, format); });
}

void ConfigureFromEnv() {
  // Default level info; RUNNEL_LOG overrides globally and per logger.
  spdlog::set_level(spdlog::level::info);
  if (const char* levels = std::getenv("RUNNEL_LOG"); levels != nullptr && *levels != '\0') {
    spdlog::cfg::helpers::load_levels(levels);
  }
  if (const char* format = std::getenv("RUNNEL_LOG_FORMAT"); format != nullptr && *format != '\0') {
    try {
      SetFormat(ParseFormat(format));
    } catch (const ConfigError& e) {
      kCli->warn("RUNNEL_LOG_FORMAT: {}; logging in the human format", e.what());
    }
  }
}

void SetEventIdSource(EventIdSource source) { event_source.store(source); }

EventScope::EventScope(std::string_view id, std::string_view trace_id)
    : previous_(current_event), previous_trace_(current_trace) {
  current_event = id;
  current_trace = trace_id;
}
EventScope::~EventScope() {
  current_event = previous_;
  current_trace = previous_trace_;
}

}  // namespace runnel::log
