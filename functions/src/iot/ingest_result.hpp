// Renders iot.ingest's result body for one event, and the alert events sent to alerts_topic.
// IOT.md documents the shape; tests read it back with nlohmann::json.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "iot/analysis.hpp"
#include "iot/params.hpp"
#include "iot/readings.hpp"

namespace runnel::functions::iot {

// Alerts and anomalies beyond this many per event are counted, not listed.
inline constexpr std::size_t kMaxListed = 1000;

struct BatchPosition {
  std::size_t events = 1;
  std::size_t index = 0;
  std::string_view aggregates_in;  // id of the event whose result lists the batch's aggregates
};

struct EventResult {
  const EventReport& report;
  std::span<const ThresholdAlert> alerts;
  std::span<const Anomaly> anomalies;
  bool with_aggregates;
  BatchPosition batch;
};

std::string RenderResult(const ReadingStore& store, const Analysis& analysis, const IngestParams& params,
                         const EventResult& event);

// One alert or anomaly as a standalone event: the listed object plus "type" and the source "event".
std::string RenderAlertEvent(const ReadingStore& store, PositionKind kind, const ThresholdAlert& alert,
                             std::string_view event_id);
std::string RenderAnomalyEvent(const ReadingStore& store, PositionKind kind, const Anomaly& anomaly,
                               std::string_view event_id);

}  // namespace runnel::functions::iot
