// One named logger per subsystem (the Subsystem symbols below: kBroker, kWorker, kAutoscaler, ...).
// Levels come from RUNNEL_LOG, e.g. RUNNEL_LOG=info,broker=debug (spdlog's env syntax).
//
// Two formats, chosen once per process: human lines (coloured on a terminal), or JSON lines
// (`runnel --log-format json`, or RUNNEL_LOG_FORMAT=json, which worker processes inherit):
//   {"ts":"2026-11-22T12:00:00.123Z","level":"warn","logger":"broker","message":"...","event":"01J..."}
// A line about one event carries its id: log it inside an EventScope, which adds "event" to the
// JSON object (the human text says the id in its message).
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <string_view>

namespace runnel::log {

enum class Format { kHuman, kJson };

// The logger for a subsystem, created on first use with the configured format and level.
// Thread-safe.
std::shared_ptr<spdlog::logger> Get(const std::string& subsystem);

// A subsystem's logger, named once: `log::kBroker->warn(...)`. The name is what RUNNEL_LOG's
// per-logger levels and the JSON "logger" field use. Each use looks the logger up (as Get does), so
// a symbol may be used before ConfigureFromEnv or SetFormat and still follows them.
class Subsystem {
 public:
  constexpr explicit Subsystem(const char* name) : name_(name) {}
  std::shared_ptr<spdlog::logger> operator->() const { return Get(name_); }
  std::shared_ptr<spdlog::logger> Logger() const { return Get(name_); }
  const char* Name() const { return name_; }

 private:
  const char* name_;
};

// Every subsystem Runnel logs as.
inline constexpr Subsystem kAutoscaler{"autoscaler"};
inline constexpr Subsystem kBroker{"broker"};  // the dispatcher and the Kafka client layer's own lines
inline constexpr Subsystem kCli{"cli"};
inline constexpr Subsystem kGateway{"gateway"};    // the HTTP gateway (gateway/)
inline constexpr Subsystem kFunction{"function"};  // what a function itself logs (handlers, plugins)
inline constexpr Subsystem kKafka{"kafka"};        // librdkafka's own log lines
inline constexpr Subsystem kScheduler{"scheduler"};
inline constexpr Subsystem kSecurity{"security"};  // CURVE keys, the ZAP handler, refused connections
inline constexpr Subsystem kTelemetry{"telemetry"};
inline constexpr Subsystem kWorker{"worker"};

// Reads RUNNEL_LOG and RUNNEL_LOG_FORMAT once; later Get() calls honour them. Call at program start.
// An unknown RUNNEL_LOG_FORMAT is reported (one warning) and the human format kept.
void ConfigureFromEnv();

// Parses "human" or "json"; throws ConfigError naming the value otherwise.
Format ParseFormat(std::string_view text);
// Switches every logger (existing and future) to `format` and exports it as RUNNEL_LOG_FORMAT, so
// child processes (workers) log the same way.
void SetFormat(Format format);

// Where a line finds its event when no EventScope is set on its thread: the worker installs one
// that reads the running fiber's event, since fibers share threads. Must be cheap; may return "".
using EventIdSource = std::string_view (*)();
void SetEventIdSource(EventIdSource source);

// While alive, log lines written by this thread are about event `id` (the "event" JSON field).
// Scope it tightly around the log call: a fiber that yields inside would lend its id to another.
class EventScope {
 public:
  // `trace_id`, when given, is the event's trace (the "trace" JSON field).
  explicit EventScope(std::string_view id, std::string_view trace_id = {});
  ~EventScope();
  EventScope(const EventScope&) = delete;
  EventScope& operator=(const EventScope&) = delete;

 private:
  std::string_view previous_;
  std::string_view previous_trace_ = {};
};

}  // namespace runnel::log
