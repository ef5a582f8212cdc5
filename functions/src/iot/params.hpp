// iot.ingest's configuration: a typed struct with defaults, parsed and validated once when the
// function is created. Every bad or unknown key is a FunctionError(kBadConfig) that names it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace runnel::functions::iot {

enum class MetricType { kNumber, kInteger, kBool };

// params.schema.metrics.<name>: what a declared metric's values must look like.
struct MetricRule {
  std::string name;
  MetricType type = MetricType::kNumber;
  std::optional<double> min;
  std::optional<double> max;
};

// params.thresholds.<name>: a reading alerts when its value is strictly above / below.
struct Threshold {
  std::string metric;
  std::optional<double> above;
  std::optional<double> below;
};

struct IngestParams {
  std::int64_t window_ms = 60'000;
  std::int64_t max_lateness_ms = 300'000;
  std::int64_t max_future_ms = 300'000;
  std::size_t max_line_bytes = std::size_t{64} * 1024;
  std::size_t max_event_bytes = std::size_t{16} * 1024 * 1024;
  std::size_t max_errors = 100;

  std::vector<MetricRule> metrics;    // schema.metrics, sorted by name
  std::vector<std::string> required;  // schema.required, metric names only
  bool allow_unknown_metrics = true;  // schema.allow_unknown_metrics
  std::vector<Threshold> thresholds;  // sorted by metric name

  bool anomaly_enabled = true;
  double anomaly_z = 3.0;
  std::size_t anomaly_min_samples = 10;

  std::string alerts_topic;  // empty: alerts are only listed in the result
};

// Throws FunctionError(kBadConfig) with a message such as
// "iot.ingest: params.window_ms must be an integer in 1..604800000, got -5".
IngestParams ParseIngestParams(const nlohmann::json& params);

}  // namespace runnel::functions::iot
