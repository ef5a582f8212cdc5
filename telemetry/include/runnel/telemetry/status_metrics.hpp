// The stack's state as Prometheus metric families, built from the autoscaler's status JSON (the
// same snapshot `runnel status --json` prints) at scrape time: nothing on the dispatchers' hot path
// is locked or counted twice. docs/metrics.md lists every family, its type, labels and meaning.
#pragma once

#include <prometheus/metric_family.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace runnel::telemetry {

// Worker ids only grow (`echo-1`, `echo-2`, ... each restart a new one), so a label per id would
// make new series forever. The per-worker families are labelled by slot instead: a small index per
// function, given to a worker the first time a snapshot lists it and freed when a snapshot no
// longer does, the lowest free slot going to the next worker. Series per function are then bounded
// by the most workers it ever ran at once (its `scaling.max`, plus the ones draining). Thread-safe.
class WorkerSlots {
 public:
  // The slots of `ids` (a function's workers in one snapshot), in their order; slots of workers
  // of `function` absent from `ids` are freed first.
  std::vector<std::size_t> Assign(const std::string& function, const std::vector<std::string>& ids);
  // Forgets every function not in `functions` (a snapshot's function names).
  void Retain(const std::vector<std::string>& functions);

 private:
  std::mutex mutex_;
  std::map<std::string, std::map<std::string, std::size_t>> slots_;  // function -> worker id -> slot
};

// `slots` keeps the per-worker slot labels stable from one scrape to the next; without it each
// call numbers the workers afresh from 0.
std::vector<prometheus::MetricFamily> StatusMetrics(const nlohmann::json& status,
                                                    WorkerSlots* slots = nullptr);

}  // namespace runnel::telemetry
