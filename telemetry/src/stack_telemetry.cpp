#include "runnel/telemetry/stack_telemetry.hpp"

#include <fmt/format.h>
#include <prometheus/registry.h>

#include "runnel/core/control_messages.hpp"
#include "runnel/core/json.hpp"
#include "runnel/telemetry/event_journal.hpp"
#include "runnel/telemetry/metrics_server.hpp"

namespace runnel::telemetry {

StackTelemetry::StackTelemetry(std::size_t max_traces)
    : registry_(std::make_shared<prometheus::Registry>()),
      event_metrics_(std::make_shared<EventMetrics>(registry_)),
      traces_(std::make_shared<TraceStore>(max_traces)) {}

StackTelemetry::~StackTelemetry() = default;

std::shared_ptr<broker::EventObserver> StackTelemetry::JournalFor(const std::string& function) {
  return std::make_shared<EventJournal>(function, traces_, event_metrics_);
}

void StackTelemetry::Serve(const std::string& listen, std::function<nlohmann::json()> status) {
  server_ = std::make_unique<MetricsServer>(listen, registry_, std::move(status));
}

std::string StackTelemetry::MetricsUrl() const { return server_ ? server_->Url() : std::string(); }

std::optional<std::string> StackTelemetry::Answer(std::string_view request) const {
  const auto decoded = DecodeStatusRequest(request);
  if (!decoded || decoded->kind != StatusRequest::Kind::kTrace) return std::nullopt;
  const std::string& id = decoded->event_id;
  const auto found = traces_->Find(id);
  if (found.empty()) {
    return JsonText({{"error", fmt::format("no trace of event '{}': this stack has not consumed it, or it is older "
                                           "than the {} most recent events it keeps",
                                           id, traces_->MaxEvents())}});
  }
  nlohmann::json traces = nlohmann::json::array();
  for (const auto& t : found) traces.push_back(t.ToJson());
  return JsonText({{"id", id}, {"traces", std::move(traces)}});
}

}  // namespace runnel::telemetry
