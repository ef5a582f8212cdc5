// The stack's state as Prometheus metric families, built from the autoscaler's status JSON (the
// same snapshot `runnel status --json` prints) at scrape time: nothing on the dispatchers' hot path
// is locked or counted twice. docs/metrics.md lists every family, its type, labels and meaning.
#pragma once

#include <prometheus/metric_family.h>

#include <nlohmann/json.hpp>
#include <vector>

namespace runnel::telemetry {

std::vector<prometheus::MetricFamily> StatusMetrics(const nlohmann::json& status);

}  // namespace runnel::telemetry
