// Everything a stack reports about itself, in one place for `runnel up`: the Prometheus registry
// and endpoint, one EventJournal per dispatcher, the TraceStore, and the answers to the control
// requests `trace <event id>` and `outcome <event id>` (docs/protocol.md §4.4).
// Thread-safety: construct, JournalFor and Serve from one thread before the stack runs; Answer and
// the metrics endpoint are then safe from any thread.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "runnel/broker/event_observer.hpp"
#include "runnel/core/control_messages.hpp"
#include "runnel/telemetry/event_journal.hpp"
#include "runnel/telemetry/trace_store.hpp"

namespace prometheus {
class Registry;
}

namespace runnel::telemetry {

struct EventMetrics;
class MetricsServer;

class StackTelemetry {
 public:
  explicit StackTelemetry(std::size_t max_traces = TraceStore::kDefaultMaxEvents);
  ~StackTelemetry();
  StackTelemetry(const StackTelemetry&) = delete;
  StackTelemetry& operator=(const StackTelemetry&) = delete;

  // Where the journals created after this call hand the outcomes of job items (the scheduler's
  // job counter); without it they are not collected.
  void CountJobs(JobSink sink) { job_sink_ = std::move(sink); }
  // Where the journals created after this call hand the outcomes of events with a reply-to, as
  // the dispatcher finishes them (the HTTP gateway's waiting calls).
  void ObserveCalls(CallSink sink) { call_sink_ = std::move(sink); }
  // The observer to give the function's dispatcher (Dispatcher::Options::observer).
  std::shared_ptr<broker::EventObserver> JournalFor(const std::string& function);
  // Serves /metrics on `listen` (HOST:PORT); `status` is the autoscaler's status JSON. Throws
  // ConfigError when the address cannot be bound.
  void Serve(const std::string& listen, std::function<nlohmann::json()> status);
  // http://HOST:PORT/metrics once serving, else empty.
  std::string MetricsUrl() const;
  // The control socket's reply (docs/protocol.md §4.3) to `trace` ({"ok", "id", "traces": [...]})
  // or `outcome` ({"ok", "id", "outcomes": [...]}); {"ok": false, "error"} when no trace of the
  // event is kept, or for any other op. Thread-safe.
  std::string Answer(const ControlRequest& request) const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<EventMetrics> event_metrics_;
  std::shared_ptr<TraceStore> traces_;
  std::unique_ptr<MetricsServer> server_;
  JobSink job_sink_;
  CallSink call_sink_;
};

}  // namespace runnel::telemetry
