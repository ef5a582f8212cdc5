#include "runnel/telemetry/stack_telemetry.hpp"

#include <fmt/format.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "runnel/core/control_messages.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/outcome.hpp"
#include "runnel/core/version.hpp"
#include "runnel/kafka/kafka.hpp"
#include "runnel/telemetry/event_journal.hpp"
#include "runnel/telemetry/metrics_server.hpp"

namespace runnel::telemetry {

StackTelemetry::StackTelemetry(std::size_t max_traces)
    : registry_(std::make_shared<prometheus::Registry>()),
      event_metrics_(std::make_shared<EventMetrics>(registry_)),
      traces_(std::make_shared<TraceStore>(max_traces)) {
  // The usual build-info gauge: always 1, the versions in its labels (join on it in PromQL).
  prometheus::BuildGauge()
      .Name("runnel_build_info")
      .Help("Always 1; the labels say which Runnel (version) and librdkafka (librdkafka) this stack runs")
      .Register(*registry_)
      .Add({{"version", std::string(Version())}, {"librdkafka", kafka::LibrdkafkaVersion()}})
      .Set(1);
}

StackTelemetry::~StackTelemetry() = default;

std::shared_ptr<broker::EventObserver> StackTelemetry::JournalFor(const std::string& function) {
  return std::make_shared<EventJournal>(function, traces_, event_metrics_, job_sink_, call_sink_);
}

void StackTelemetry::Serve(const std::string& listen, std::function<nlohmann::json()> status) {
  server_ = std::make_unique<MetricsServer>(listen, registry_, std::move(status));
}

std::string StackTelemetry::MetricsUrl() const { return server_ ? server_->Url() : std::string(); }

namespace {

// One function's part of the reply to `outcome <id>` (docs/protocol.md §4.4).
nlohmann::json OutcomeJson(const EventTrace& t, const std::optional<KeptOutcome>& kept) {
  nlohmann::json j = {{"function", t.function}, {"status", t.status}};
  if (t.status == "in progress") return j;
  j["attempts"] = t.attempts.size();
  if (!t.error_kind.empty()) j["error_kind"] = t.error_kind;
  if (!t.error.empty()) j["error"] = t.error;
  if (!t.dead_letter_topic.empty()) j["dead_letter_topic"] = t.dead_letter_topic;
  if (t.finished_ms >= 0) j["finished_ms"] = t.finished_ms;
  if (!kept) return j;
  auto meta = nlohmann::json::parse(kept->meta, nullptr, false);
  if (!meta.is_object()) return j;  // cannot happen: MetaJson writes an object
  j["meta"] = std::move(meta);
  j["output_kept"] = kept->output_kept;
  j["output_bytes"] = kept->output_bytes;
  if (kept->output_kept) {
    if (IsPrintableUtf8(kept->output)) {
      j["output"] = kept->output;
    } else {
      j["output_base64"] = Base64Encode(kept->output);
    }
  }
  return j;
}

}  // namespace

std::string StackTelemetry::Answer(const ControlRequest& request) const {
  if (request.op != ControlRequest::Op::kTrace && request.op != ControlRequest::Op::kOutcome) {
    return ControlErrorReply(fmt::format("'{}' is not a question about an event", OpName(request.op)));
  }
  const std::string& id = request.event;
  const auto found = traces_->Find(id);
  if (found.empty()) {
    return ControlErrorReply(
        fmt::format("no trace of event '{}': this stack has not consumed it, or it is older than the {} most "
                    "recent events it keeps",
                    id, traces_->MaxEvents()));
  }
  if (request.op == ControlRequest::Op::kOutcome) {
    nlohmann::json outcomes = nlohmann::json::array();
    for (const auto& t : found) outcomes.push_back(OutcomeJson(t, traces_->Kept(t.function, id)));
    return ControlOkReply({{"id", id}, {"outcomes", std::move(outcomes)}});
  }
  nlohmann::json traces = nlohmann::json::array();
  for (const auto& t : found) traces.push_back(t.ToJson());
  return ControlOkReply({{"id", id}, {"traces", std::move(traces)}});
}

}  // namespace runnel::telemetry
