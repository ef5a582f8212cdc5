// Workers that something else runs: the autoscaler computes each function's worker count as
// always and this backend only records it, for `runnel_autoscaler_workers_desired` on /metrics and
// `orchestrator` in status. A KEDA ScaledObject, an HPA on that metric or a script of the user's
// starts and stops the workers, which join like any remote worker (`runnel-worker --join`, or
// `--keys` on the stack's host).
//
// Start raises the count wanted by one and returns `external/<function>/<n>`; Stop lowers it by
// one (never below 0). List reports `wanted` entries with pid 0 in state running: they are what was
// asked for, not processes; whether workers joined is the dispatcher's `joined` count (status shows
// such an entry as `starting` until as many workers have joined). Nothing is started, signalled or
// measured, so StopAll leaves the workers to whoever runs them, and UsageOf is zero.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "runnel/autoscaler/backend.hpp"

namespace runnel::autoscaler {

class ExternalBackend final : public WorkerBackend {
 public:
  // The metric a scaler outside Runnel reads, with the function's label (docs/metrics.md).
  static constexpr const char* kMetric = "runnel_autoscaler_workers_desired";

  std::string Start(const std::string& function, const std::string& dispatcher) override;
  void Stop(const std::string& id, std::chrono::milliseconds grace) override;
  std::vector<WorkerInfo> List(const std::string& function) const override;
  void Tick() override {}
  void StopAll(std::chrono::milliseconds grace) override;
  std::optional<OrchestratorInfo> OrchestratorOf(const std::string& function) const override;
  void Prepare(const std::string& function, const std::string& dispatcher) override;

 private:
  mutable std::mutex mu_;
  std::map<std::string, int> wanted_;  // per function
};

}  // namespace runnel::autoscaler
