#include "iot/ingest.hpp"

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <string>

#include "iot/analysis.hpp"
#include "iot/ingest_result.hpp"
#include "iot/reading_parser.hpp"
#include "iot/readings.hpp"

namespace runnel::functions::iot {
namespace {

// The event's bytes without copying an inline payload; a file reference is read into `owned`.
std::string_view Input(const Event& event, std::size_t max_bytes,
                       std::chrono::steady_clock::time_point deadline, std::string& owned) {
  if (event.envelope.file) {
    owned = Context::ReadInput(event, max_bytes, deadline);
    return owned;
  }
  if (event.payload.size() > max_bytes) {
    throw FunctionError(Errc::kLimitExceeded,
                        fmt::format("iot.ingest: payload is {} bytes, over max_event_bytes {}",
                                    event.payload.size(), max_bytes));
  }
  return event.payload;
}

// Items of `items` (sorted by reading) whose reading belongs to [first, first + count).
template <typename T>
std::span<const T> ForReadings(const std::vector<T>& items, std::size_t& cursor, std::uint32_t first,
                               std::uint32_t count) {
  while (cursor < items.size() && items[cursor].reading < first) ++cursor;
  const std::size_t begin = cursor;
  while (cursor < items.size() && items[cursor].reading < first + count) ++cursor;
  return std::span<const T>(items.data() + begin, cursor - begin);
}

}  // namespace

std::int64_t SystemClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct IngestFunction::Scratch {
  explicit Scratch(const IngestParams& params) : parser(params, store) {}
  ReadingStore store;
  ReadingParser parser;
  Analyzer analyzer;
};

IngestFunction::IngestFunction(IngestParams params, Clock clock)
    : params_(std::move(params)), clock_(std::move(clock)) {}
IngestFunction::~IngestFunction() = default;

std::unique_ptr<IngestFunction::Scratch> IngestFunction::Borrow() {
  {
    std::lock_guard lock(idle_mutex_);
    if (!idle_.empty()) {
      std::unique_ptr<Scratch> scratch = std::move(idle_.back());
      idle_.pop_back();
      return scratch;
    }
  }
  return std::make_unique<Scratch>(params_);
}

void IngestFunction::Return(std::unique_ptr<Scratch> scratch) {
  std::lock_guard lock(idle_mutex_);
  idle_.push_back(std::move(scratch));
}

// Lambda's Kafka trigger defaults; the stack config's `batch` key overrides them.
BatchSpec IngestFunction::Batch() const { return {100, std::chrono::milliseconds(500)}; }

Result IngestFunction::Handle(const Event& event, Context& ctx) {
  std::vector<ResultOrError> outcomes = HandleBatch(std::span<const Event>(&event, 1), ctx);
  if (outcomes.front().error) throw *outcomes.front().error;
  return std::move(*outcomes.front().result);
}

std::vector<ResultOrError> IngestFunction::HandleBatch(std::span<const Event> events, Context& ctx) {
  std::vector<ResultOrError> outcomes(events.size());
  const std::int64_t now_ms = clock_();
  std::unique_ptr<Scratch> scratch;
  std::vector<std::optional<EventReport>> reports(events.size());
  const Analysis* analysis = nullptr;
  try {
    scratch = Borrow();
    scratch->parser.Reset();
    std::string owned;
    for (std::size_t i = 0; i < events.size(); ++i) {
      try {
        reports[i] = scratch->parser.Parse(Input(events[i], params_.max_event_bytes, ctx.Deadline(), owned),
                                           static_cast<std::uint32_t>(i), now_ms);
      } catch (const FunctionError& e) {
        outcomes[i].error = e;
      }
    }
    analysis = &scratch->analyzer.Run(scratch->store, params_);
  } catch (const std::exception& e) {
    // Only resource exhaustion gets here; no event can be judged, so all are retried.
    for (ResultOrError& outcome : outcomes) {
      outcome.result.reset();
      outcome.error = FunctionError(Errc::kInternal, fmt::format("iot.ingest: {}", e.what()));
    }
    return outcomes;
  }
  const ReadingStore& store = scratch->store;

  std::optional<std::size_t> holder;
  for (std::size_t i = 0; i < events.size() && !holder; ++i) {
    if (reports[i]) holder = i;
  }
  std::size_t alert_cursor = 0, anomaly_cursor = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (!reports[i]) continue;
    EventReport& report = *reports[i];
    for (std::uint32_t r = report.first_reading; r < report.first_reading + report.reading_count; ++r) {
      report.late += store.readings[r].late ? 1 : 0;
    }
    const auto alerts =
        ForReadings(analysis->alerts, alert_cursor, report.first_reading, report.reading_count);
    const auto anomalies =
        ForReadings(analysis->anomalies, anomaly_cursor, report.first_reading, report.reading_count);
    try {
      const EventResult view{report, alerts, anomalies, holder == i,
                             BatchPosition{events.size(), i, events[*holder].envelope.id}};
      Result result{RenderResult(store, *analysis, params_, view), "application/json", {}};
      if (!params_.alerts_topic.empty()) {
        const Headers headers{{std::string(header::kContentType), "application/json"}};
        for (const ThresholdAlert& alert : alerts) {
          const std::string_view device = store.devices.Name(store.readings[alert.reading].device);
          ctx.Emit(params_.alerts_topic, device,
                   RenderAlertEvent(store, report.kind, alert, events[i].envelope.id), headers);
        }
        for (const Anomaly& anomaly : anomalies) {
          const std::string_view device = store.devices.Name(store.readings[anomaly.reading].device);
          ctx.Emit(params_.alerts_topic, device,
                   RenderAnomalyEvent(store, report.kind, anomaly, events[i].envelope.id), headers);
        }
      }
      outcomes[i].result = std::move(result);
    } catch (const FunctionError& e) {
      outcomes[i].error = e;
    } catch (const std::exception& e) {
      outcomes[i].error = FunctionError(Errc::kInternal, fmt::format("iot.ingest: {}", e.what()));
    }
  }
  Return(std::move(scratch));
  return outcomes;
}

std::unique_ptr<Function> MakeIngestFunction(const nlohmann::json& params, Clock clock) {
  return std::make_unique<IngestFunction>(ParseIngestParams(params), std::move(clock));
}

}  // namespace runnel::functions::iot
