#include "iot/ingest_result.hpp"

#include <fmt/format.h>

#include <iterator>

#include "iot/json_text.hpp"

namespace runnel::functions::iot {
namespace {

using json_text::AppendInt;
using json_text::AppendNumber;
using json_text::AppendString;

std::string_view PositionKey(PositionKind kind) {
  return kind == PositionKind::kLine ? "\"line\":" : "\"index\":";
}

// Writes the fields shared by alerts and anomalies, without braces.
void AppendReadingFields(std::string& out, const ReadingStore& store, const Reading& reading,
                         std::uint32_t metric, double value) {
  out += "\"device\":";
  AppendString(out, store.devices.Name(reading.device));
  out += ",\"metric\":";
  AppendString(out, store.metrics.Name(metric));
  out += ",\"ts\":";
  AppendInt(out, reading.ts);
  out += ",\"value\":";
  AppendNumber(out, value);
}

void AppendAlert(std::string& out, const ReadingStore& store, PositionKind kind,
                 const ThresholdAlert& alert) {
  const Reading& reading = store.readings[alert.reading];
  AppendReadingFields(out, store, reading, alert.metric, alert.value);
  out += alert.above ? ",\"condition\":\"above\",\"threshold\":" : ",\"condition\":\"below\",\"threshold\":";
  AppendNumber(out, alert.threshold);
  out += reading.late ? ",\"late\":true," : ",\"late\":false,";
  out += PositionKey(kind);
  AppendInt(out, reading.position);
}

void AppendAnomaly(std::string& out, const ReadingStore& store, PositionKind kind, const Anomaly& anomaly) {
  const Reading& reading = store.readings[anomaly.reading];
  AppendReadingFields(out, store, reading, anomaly.metric, anomaly.value);
  out += ",\"z\":";
  AppendNumber(out, anomaly.z);
  out += ",\"window_start_ms\":";
  AppendInt(out, anomaly.window_start_ms);
  out += ",\"baseline\":{\"count\":";
  AppendInt(out, static_cast<std::int64_t>(anomaly.baseline_count));
  out += ",\"mean\":";
  AppendNumber(out, anomaly.baseline_mean);
  out += ",\"stddev\":";
  AppendNumber(out, anomaly.baseline_stddev);
  out += "},";
  out += PositionKey(kind);
  AppendInt(out, reading.position);
}

template <typename T, typename Append>
void AppendList(std::string& out, std::string_view name, std::span<const T> items, std::size_t cap,
                Append append) {
  fmt::format_to(std::back_inserter(out), ",\"{}\":[", name);
  const std::size_t listed = std::min(items.size(), cap);
  for (std::size_t i = 0; i < listed; ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('{');
    append(items[i]);
    out.push_back('}');
  }
  fmt::format_to(std::back_inserter(out), "],\"{}_omitted\":{}", name, items.size() - listed);
}

}  // namespace

std::string RenderResult(const ReadingStore& store, const Analysis& analysis, const IngestParams& params,
                         const EventResult& event) {
  const EventReport& report = event.report;
  std::string out;
  out.reserve(256 + (event.with_aggregates ? analysis.aggregates.size() * 128 : 0) +
              report.errors.size() * 96 + std::min(event.alerts.size(), kMaxListed) * 128);
  fmt::format_to(std::back_inserter(out),
                 "{{\"readings\":{{\"accepted\":{},\"rejected\":{},\"late\":{}}},\"window_ms\":{}",
                 report.reading_count - report.late, report.rejected, report.late, params.window_ms);

  out += ",\"errors\":[";
  for (std::size_t i = 0; i < report.errors.size(); ++i) {
    const ReadingError& error = report.errors[i];
    out += i > 0 ? ",{" : "{";
    out += PositionKey(report.kind);
    AppendInt(out, error.position);
    if (!error.field.empty()) {
      out += ",\"field\":";
      AppendString(out, error.field);
    }
    out += ",\"reason\":";
    AppendString(out, error.reason);
    out.push_back('}');
  }
  fmt::format_to(std::back_inserter(out), "],\"errors_omitted\":{}", report.rejected - report.errors.size());

  out += ",\"aggregates\":[";
  if (event.with_aggregates) {
    bool first = true;
    for (const WindowAggregate& a : analysis.aggregates) {
      out += first ? "{\"device\":" : ",{\"device\":";
      first = false;
      AppendString(out, store.devices.Name(a.device));
      out += ",\"metric\":";
      AppendString(out, store.metrics.Name(a.metric));
      out += ",\"window_start_ms\":";
      AppendInt(out, a.window_start_ms);
      out += ",\"count\":";
      AppendInt(out, static_cast<std::int64_t>(a.count));
      out += ",\"min\":";
      AppendNumber(out, a.min);
      out += ",\"max\":";
      AppendNumber(out, a.max);
      out += ",\"mean\":";
      AppendNumber(out, a.mean);
      out.push_back('}');
    }
  }
  out.push_back(']');

  AppendList(out, "alerts", event.alerts, kMaxListed,
             [&](const ThresholdAlert& alert) { AppendAlert(out, store, report.kind, alert); });
  AppendList(out, "anomalies", event.anomalies, kMaxListed,
             [&](const Anomaly& anomaly) { AppendAnomaly(out, store, report.kind, anomaly); });

  if (event.batch.events > 1) {
    fmt::format_to(std::back_inserter(out),
                   ",\"batch\":{{\"events\":{},\"index\":{},\"aggregates_in\":", event.batch.events,
                   event.batch.index);
    AppendString(out, event.batch.aggregates_in);
    out.push_back('}');
  }
  out.push_back('}');
  return out;
}

std::string RenderAlertEvent(const ReadingStore& store, PositionKind kind, const ThresholdAlert& alert,
                             std::string_view event_id) {
  std::string out = "{\"type\":\"threshold\",";
  AppendAlert(out, store, kind, alert);
  out += ",\"event\":";
  AppendString(out, event_id);
  out.push_back('}');
  return out;
}

std::string RenderAnomalyEvent(const ReadingStore& store, PositionKind kind, const Anomaly& anomaly,
                               std::string_view event_id) {
  std::string out = "{\"type\":\"anomaly\",";
  AppendAnomaly(out, store, kind, anomaly);
  out += ",\"event\":";
  AppendString(out, event_id);
  out.push_back('}');
  return out;
}

}  // namespace runnel::functions::iot
