// A running stack, as `runnel up` starts it: the embedded broker (unless a real Kafka is given),
// topics, the results feed (an XSUB/XPUB proxy every dispatcher publishes into), one dispatcher
// per function, and the autoscaler that runs their workers (its own thread; its socket, `status` in
// endpoints.json, answers `runnel status`; the scheduler's, `control`, answers `runnel job`). It
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
#include "runnel/scheduler/scheduler.hpp"

namespace runnel::cli {

// Checks what `runnel up` checks before starting anything: every function's handler can be built
// with its params (a builtin created, a plugin loaded and its ABI checked, an exec program found),
// its max_payload fits the producer's message.max.bytes (kafka::CheckRecordLimits), and every
// schedule's cron and time zone parse. Throws ConfigError naming the
// file (and line, for schedules and `batch`). Settles each function's batch (functions::
// EffectiveBatch: the config's, else the function's own), so `config` says what workers will run.
// Returns the compiled schedules.
std::vector<scheduler::CompiledSchedule> CheckConfig(StackConfig& config);

class Stack {
 public:
  // Starts everything; throws with one clear line when something cannot start.
  Stack(StackConfig config, StateDir state, std::filesystem::path runnel_binary);
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

  std::string Summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::cli
