// The arithmetic of iot.ingest over one call's readings: lateness, per-device tumbling-window
// aggregates, threshold alerts and z-score anomalies. A function of the store and params only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "iot/params.hpp"
#include "iot/readings.hpp"

namespace runnel::functions::iot {

struct WindowAggregate {
  std::uint32_t device;
  std::uint32_t metric;
  std::int64_t window_start_ms;  // a multiple of window_ms since the epoch
  std::uint64_t count;
  double min;
  double max;
  double mean;
  double m2;  // sum of squared deviations from the mean
};

struct ThresholdAlert {
  std::uint32_t reading;  // index into store.readings
  std::uint32_t metric;
  double value;
  bool above;  // false: below
  double threshold;
};

// A reading far from the other readings of its device, metric and window in this call.
struct Anomaly {
  std::uint32_t reading;
  std::uint32_t metric;
  double value;
  double z;  // NaN when the baseline has zero variance (every other reading equal)
  std::int64_t window_start_ms;
  std::uint64_t baseline_count;
  double baseline_mean;
  double baseline_stddev;
};

struct Analysis {
  std::vector<WindowAggregate> aggregates;  // by device name, metric name, window
  std::vector<ThresholdAlert> alerts;       // in reading order
  std::vector<Anomaly> anomalies;           // in reading order
};

// Window start of `ts`: floor(ts / window_ms) * window_ms.
std::int64_t WindowStart(std::int64_t ts, std::int64_t window_ms);

// Marks late readings in the store (older than max_lateness_ms behind the newest reading of the
// same device), then aggregates the rest. Thresholds see every reading, late ones too; aggregates
// and anomalies see only readings that are not late. Bool samples are aggregated (mean = share
// true) but never alert or count as anomalies. Keeps its working memory between calls; one call at
// a time.
class Analyzer {
 public:
  Analyzer();
  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  // The result stays valid until the next Run.
  const Analysis& Run(ReadingStore& store, const IngestParams& params);

 private:
  struct Scratch;
  std::unique_ptr<Scratch> scratch_;
  Analysis out_;
};

}  // namespace runnel::functions::iot
