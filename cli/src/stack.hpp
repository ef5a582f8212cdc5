// A running stack, as `runnel up` starts it: the embedded broker (unless a real Kafka is given),
// topics, the results feed (an XSUB/XPUB proxy every dispatcher publishes into), one dispatcher
// per function, and the autoscaler that runs their workers (its own thread; `control` in
// endpoints.json answers `runnel status`). It writes endpoints.json and removes its keys when it
// stops. Thread-safety: construct and destroy from one thread.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "runnel/core/config.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/scheduler/scheduler.hpp"

namespace runnel::cli {

// Checks what `runnel up` checks before starting anything: every function's handler can be built
// with its params (a builtin created, a plugin loaded and its ABI checked, an exec program found),
// its max_payload fits the producer's message.max.bytes (broker::CheckRecordLimits), and every
// schedule's cron and time zone parse. Throws ConfigError naming the
// file (and line, for schedules and `batch`). Settles each function's batch (functions::
// EffectiveBatch: the config's, else the function's own), so `config` says what workers will run.
// Returns the compiled schedules.
std::vector<scheduler::CompiledSchedule> CheckConfig(StackConfig& config);

class Stack {
 public:
  // Starts everything; throws with one clear line when something cannot start.
  Stack(StackConfig config, StateDir state, std::filesystem::path runnel_binary);
  // Stops in order: dispatchers drain, workers drain and exit, the results feed, the broker.
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // Fires schedules that are due; call regularly (every 100 ms or so). Workers are the
  // autoscaler's business, on its own thread.
  void Supervise();

  std::string Summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::cli
