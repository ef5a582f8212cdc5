// How workers are started and stopped. A backend knows nothing of lag or policy: it starts a
// worker for a function, stops one, and lists what runs. The first backend runs local processes;
// an orchestrator backend (e.g. scaling a Kubernetes Deployment) implements the same interface.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace runnel::autoscaler {

enum class WorkerState { kStarting, kRunning, kStopping, kBackoff, kCrashLoop };
std::string_view WorkerStateName(WorkerState s);

struct WorkerInfo {
  std::string id;  // unique per backend, e.g. echo-3
  std::string function;
  int pid = 0;
  WorkerState state = WorkerState::kStarting;
  int restarts = 0;
  std::string last_exit;  // e.g. "exit 1", "signal 9"
  std::string log_file;
};

class WorkerBackend {
 public:
  virtual ~WorkerBackend() = default;
  // Starts one worker for `function` connected to `dispatcher`; returns its id.
  virtual std::string Start(const std::string& function, const std::string& dispatcher) = 0;
  // Asks a worker to stop (it drains); forces it after `grace`.
  virtual void Stop(const std::string& id, std::chrono::milliseconds grace) = 0;
  virtual std::vector<WorkerInfo> List(const std::string& function) const = 0;
  // Reaps exits and restarts crashed workers; call regularly.
  virtual void Tick() = 0;
  // Stops every worker (drain, then force after `grace`) and waits for them.
  virtual void StopAll(std::chrono::milliseconds grace) = 0;
};

}  // namespace runnel::autoscaler
