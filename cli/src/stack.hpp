// A running stack, as `runnel up` starts it: the embedded broker (unless a real Kafka is given),
// topics, the results feed (an XSUB/XPUB proxy every dispatcher publishes into), one dispatcher
// per function, and the autoscaler that runs their workers (its own thread; `control` in
// endpoints.json answers `runnel status`). It writes endpoints.json and removes its keys when it
// stops. Thread-safety: construct and destroy from one thread.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "runnel/core/config.hpp"
#include "runnel/core/state_dir.hpp"

namespace runnel::cli {

class Stack {
 public:
  // Starts everything; throws with one clear line when something cannot start.
  Stack(StackConfig config, StateDir state, std::filesystem::path runnel_binary);
  // Stops in order: dispatchers drain, workers drain and exit, the results feed, the broker.
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  std::string Summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::cli
