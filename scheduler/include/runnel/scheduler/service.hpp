// The scheduler inside `runnel up`: fires schedules on time (Scheduler), publishes each firing's
// events tagged with a job id, follows the stack's results feed to track every job's completion
// (JobTracker), and answers `runnel job ...` on a ZeroMQ REP control socket (docs/protocol.md §4).
// Thread-safety: construct, Tick and destroy from one thread. A background thread only reads the
// results feed; the destructor stops it and writes every job record.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runnel/core/protocol_errors.hpp"
#include "runnel/scheduler/scheduler.hpp"

namespace zmq {
class context_t;
}

namespace runnel::scheduler {

class SchedulerService {
 public:
  struct Options {
    std::vector<CompiledSchedule> schedules;
    std::map<std::string, std::string> topics;  // function -> its input topic
    std::map<std::string, std::string> groups;  // topic -> consumer group (for the retention guard)
    std::string kafka_bootstrap;
    std::map<std::string, std::string> kafka_options;  // librdkafka passthrough, as the stack uses
    bool embedded = true;  // guard publishing against the embedded broker's log cap
    std::filesystem::path state_dir;
    zmq::context_t* zmq = nullptr;  // shared with the stack; must outlive the service
    std::string results_endpoint;   // the stack's results feed (XPUB) to subscribe to
    std::function<TimePoint()> clock = [] { return std::chrono::system_clock::now(); };
    // Where control requests that do not decode are counted (socket "control"); null: its own.
    std::shared_ptr<ProtocolErrors> protocol_errors = nullptr;
    // Called on the results thread, once, when a fault ends it (the reason as text); the stack is
    // expected to stop (runnel up exits).
    std::function<void(const std::string& reason)> on_failure;
  };

  explicit SchedulerService(Options options);
  ~SchedulerService();
  SchedulerService(const SchedulerService&) = delete;
  SchedulerService& operator=(const SchedulerService&) = delete;

  // tcp://127.0.0.1:PORT of the REP control socket (endpoints.json "control").
  const std::string& ControlEndpoint() const;
  // Fires what is due, answers control requests, counts outcomes, writes job records. Never blocks
  // long: call it every ~100 ms. An exception from it is a fault of the scheduler, not of one job.
  void Tick();
  // Fires `schedule` now; returns {"job", "items", "function"}. Throws ConfigError for an unknown
  // schedule.
  nlohmann::json RunNow(const std::string& schedule);
  // Next fire time per schedule, for the stack's start-up summary.
  std::string Summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::scheduler
