// A running stack, as `runnel up` starts it: the embedded broker (unless a real Kafka is given),
// topics, the results feed (results_feed.hpp, which every dispatcher publishes into), one dispatcher
// per function, the autoscaler that runs their workers (its own thread), the scheduler, and the
// control socket (control_server.hpp, `control` in endpoints.json) that answers `runnel status`,
// `trace`, `invoke` and `job`. It
// writes endpoints.json and removes its keys when it stops. Every component reports into one
// ComponentHealth: a fault that stops one is Failure(), for `runnel up` to exit on; status and
// /metrics show each component (docs/metrics.md).
// Thread-safety: construct, Supervise, Failure and destroy from one thread.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runnel/core/component_health.hpp"
#include "runnel/core/config.hpp"
#include "runnel/core/state_dir.hpp"

namespace runnel::stack {

struct Options {
  StackConfig config;  // as loaded, with the command line's overrides (--kafka, --metrics, ...) applied
  StateDir state;      // endpoints.json, worker logs, job records, outputs unless the config says where
  std::filesystem::path runnel_binary;  // the running `runnel`: workers are started from next to it
};

// Where the running stack is reached, as endpoints.json has it.
struct StackEndpoints {
  std::string kafka;                     // bootstrap servers
  bool embedded = false;                 // the stack's own in-memory broker
  std::string results;                   // the results feed's subscriber side (tcp://...)
  std::string metrics;                   // the URL of /metrics
  std::string control;                   // the control socket (status, trace, outcome, jobs)
  std::string output_dir;                // absolute
  std::string gateway;                   // the HTTP gateway's URL; empty when gateway.enabled is false
  std::vector<std::string> dispatchers;  // one per function, in the config's order
};

class Stack {
 public:
  // Starts everything; throws with one clear line when something cannot start.
  explicit Stack(Options options);
  // Stop(), if it was not called.
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // Fires schedules that are due; call regularly (every 100 ms or so). Workers are the
  // autoscaler's business, on its own thread. A fault here is the scheduler's failure.
  void Supervise();
  // The first component that failed since the start (its name and the reason), if any.
  std::optional<ComponentHealth::Component> Failure() const;

  // Drains, then stops (once; later calls return at once): the autoscaler; dispatchers take no
  // new event while workers finish what they hold and exit, every outcome written and committed
  // (each wait bounded by the slowest function's timeout plus 5 s); the scheduler, the results
  // feed, the broker. Failure() still answers afterwards (a component may fail during the drain).
  void Stop();

  // The config it runs: output_dir absolute, every function's batch settled (CheckConfig).
  const StackConfig& Config() const;
  // As written to endpoints.json at the start (its keys are removed by Stop()).
  const StackEndpoints& Endpoints() const;
  // Next fire time per schedule (the scheduler's summary), for the start-up lines; before Stop().
  std::string ScheduleSummary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::stack
