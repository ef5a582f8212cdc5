// The scheduler inside `runnel up`: fires schedules on time (Scheduler), publishes each firing's
// events tagged with a job id, counts every job's completion from the outcomes the stack's
// dispatchers hand it in-process (JobOutcomes; never from the lossy results feed), and answers
// `runnel job ...` through the stack's control socket (Handle; docs/protocol.md §4.3).
// Thread-safety: construct, Tick and destroy from one thread; Handle, RunNow and Summary from any
// thread while it lives; JobOutcomes::Add from any thread.
// The destructor counts what arrived and writes every job record.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runnel/core/control_messages.hpp"
#include "runnel/core/outcome.hpp"
#include "runnel/core/secret.hpp"
#include "runnel/scheduler/scheduler.hpp"

namespace runnel::scheduler {

// The final outcomes of job items on their way to the scheduler's job counter: the stack's
// dispatchers add them (through StackTelemetry::CountJobs, on their own threads, about every
// 100 ms), the scheduler takes them on each Tick. Nothing is dropped; it holds at most the
// outcomes of ~100 ms plus one Tick.
class JobOutcomes {
 public:
  // Moves `outcomes` in (leaves it empty).
  void Add(std::vector<Outcome>& outcomes);
  void Add(Outcome outcome);
  std::vector<Outcome> Take();

 private:
  std::mutex mu_;
  std::vector<Outcome> outcomes_;
};

class SchedulerService {
 public:
  struct Options {
    std::vector<CompiledSchedule> schedules;
    std::map<std::string, std::string> topics;  // function -> its input topic
    std::map<std::string, std::string> groups;  // topic -> consumer group (for the retention guard)
    std::string kafka_bootstrap;
    std::map<std::string, std::string> kafka_options;  // librdkafka passthrough, as the stack uses
    std::map<std::string, Secret> kafka_secrets;       // the same, values never printed
    bool embedded = true;  // guard publishing against the embedded broker's log cap
    std::filesystem::path state_dir;
    // Where the stack's dispatchers hand the outcomes of job items (one is made when null: then
    // only failed publishes are counted).
    std::shared_ptr<JobOutcomes> outcomes;
    std::function<TimePoint()> clock = [] { return std::chrono::system_clock::now(); };
  };

  explicit SchedulerService(Options options);
  ~SchedulerService();
  SchedulerService(const SchedulerService&) = delete;
  SchedulerService& operator=(const SchedulerService&) = delete;

  // Fires what is due, counts outcomes, writes job records. Never blocks long: call it every
  // ~100 ms. An exception from it is a fault of the scheduler, not of one job.
  void Tick();
  // The control socket's reply to a job op (job.run, job.status, job.list; docs/protocol.md §4.3):
  // {"ok": true, ...} or {"ok": false, "error"} (an unknown schedule or job, a bad job id).
  // Thread-safe: the stack's control socket calls it on its own thread, beside Tick.
  std::string Handle(const ControlRequest& request);
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
