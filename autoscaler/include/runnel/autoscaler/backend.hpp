// How workers are started and stopped. A backend knows nothing of lag or policy: it starts a
// worker for a function, stops one, and lists what runs. The first backend runs local processes;
// an orchestrator backend (e.g. scaling a Kubernetes Deployment) implements the same interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
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
  // Resources, as the backend measures them (0 when it cannot): CPU seconds (user + system) and
  // wall seconds of the current process, its resident and peak resident memory.
  double cpu_s = 0;
  double wall_s = 0;
  std::int64_t rss_kb = 0;
  std::int64_t peak_rss_kb = 0;
  bool from_standby = false;  // started by waking a process loaded ahead of need, not by exec
};

// A process a backend keeps loaded for a function, ahead of need, so that a start skips the
// program's start-up (see LocalProcessBackend). Counters only grow.
struct StandbyInfo {
  std::string state;             // "ready"; "replacing" (none now: the next starts exec); "off"
  int pid = 0;                   // the process standing by, 0 when none
  std::int64_t rss_kb = 0;       // what it costs while idle
  std::int64_t used = 0;         // worker starts it served
  std::int64_t exec_starts = 0;  // starts that found none ready and ran the program instead
  std::int64_t ended = 0;        // standby processes that ended before they were used
  std::string last_exit;         // how the last of those ended, e.g. "signal 9"
};

// What a function's workers used since the backend started, exited processes included: the
// serverless bill. Counters only grow.
struct Usage {
  std::int64_t workers_started = 0;  // processes started (first starts and restarts)
  std::int64_t restarts = 0;         // restarts after an exit nobody asked for
  double wall_s = 0;                 // worker-seconds: the sum of every process's lifetime
  double cpu_s = 0;                  // CPU seconds (user + system) of every process
  std::int64_t peak_rss_kb = 0;      // the highest peak resident memory of any one process
};

// What a backend that hands workers to an orchestrator (KubernetesBackend) reports of a function,
// for status: what it scales, what it asked for and what the orchestrator last said.
struct OrchestratorInfo {
  std::string kind;           // "kubernetes"
  std::string target;         // what it scales, e.g. "deployments/runnel-worker-echo in namespace runnel"
  int replicas_set = 0;       // the replicas the backend wants now (Start and Stop move it)
  int spec_replicas = -1;     // the orchestrator's desired replicas as last read (-1: not read yet)
  int replicas = -1;          // the orchestrator's current replicas (pods) as last read (-1: not read yet)
  bool applied = false;       // the orchestrator has the replicas_set (the last write succeeded)
  std::string error;          // why the last request failed; empty once one succeeds
  std::int64_t failures = 0;  // requests that failed, ever
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
  // The function's usage so far; a backend that cannot measure returns zeros.
  virtual Usage UsageOf(const std::string& /*function*/) const { return {}; }
  // The loop will start workers for `function` at `dispatcher`: a backend may get ready for it
  // (keep a standby process). Called once per function, on the loop's thread, before any Start.
  virtual void Prepare(const std::string& /*function*/, const std::string& /*dispatcher*/) {}
  // The function's standby process, for status; nullopt when the backend keeps none.
  virtual std::optional<StandbyInfo> StandbyOf(const std::string& /*function*/) const { return std::nullopt; }
  // What the orchestrator runs for `function`, for status; nullopt for a backend of local processes.
  virtual std::optional<OrchestratorInfo> OrchestratorOf(const std::string& /*function*/) const {
    return std::nullopt;
  }
};

}  // namespace runnel::autoscaler
