#include "runnel/telemetry/status_metrics.hpp"

#include <map>
#include <set>
#include <string>

namespace runnel::telemetry {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Families by name, in the order first used, so each is emitted once with all its samples.
class Families {
 public:
  // The family, created (with no samples yet) if new: a counter family is served from the start,
  // so its TYPE is known before its first sample.
  std::size_t Declare(const std::string& name, MetricType type, const std::string& help) {
    auto it = index_.find(name);
    if (it == index_.end()) {
      it = index_.emplace(name, families_.size()).first;
      families_.push_back(MetricFamily{name, help, type, {}});
    }
    return it->second;
  }
  void Add(const std::string& name, MetricType type, const std::string& help,
           std::vector<ClientMetric::Label> labels, double value) {
    const std::size_t index = Declare(name, type, help);
    ClientMetric m;
    m.label = std::move(labels);
    if (type == MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    families_[index].metric.push_back(std::move(m));
  }
  std::vector<MetricFamily> Take() { return std::move(families_); }

 private:
  std::map<std::string, std::size_t> index_;
  std::vector<MetricFamily> families_;
};

double Num(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

// A counter family by socket and reason from the status array `parent[key]` of {"socket", "reason",
// "count"} (nothing when it is not an array); declared, with no samples, for an empty array.
void AddSocketCounts(Families& out, const nlohmann::json& parent, const char* key, const std::string& name,
                     const std::string& help) {
  const auto it = parent.find(key);
  if (it == parent.end() || !it->is_array()) return;
  out.Declare(name, MetricType::Counter, help);
  for (const auto& e : *it) {
    if (!e.is_object()) continue;
    const auto socket = e.find("socket");
    const auto reason = e.find("reason");
    if (socket == e.end() || !socket->is_string() || reason == e.end() || !reason->is_string()) continue;
    out.Add(name, MetricType::Counter, help,
            {{"socket", socket->get<std::string>()}, {"reason", reason->get<std::string>()}},
            Num(e, "count"));
  }
}

}  // namespace

std::vector<std::size_t> WorkerSlots::Assign(const std::string& function,
                                             const std::vector<std::string>& ids) {
  const std::lock_guard lock(mutex_);
  auto& slots = slots_[function];
  const std::set<std::string> present(ids.begin(), ids.end());
  std::erase_if(slots, [&](const auto& entry) { return !present.contains(entry.first); });
  std::set<std::size_t> used;
  for (const auto& [id, slot] : slots) used.insert(slot);
  std::vector<std::size_t> out;
  out.reserve(ids.size());
  for (const auto& id : ids) {
    auto it = slots.find(id);
    if (it == slots.end()) {
      std::size_t slot = 0;
      while (used.contains(slot)) ++slot;
      used.insert(slot);
      it = slots.emplace(id, slot).first;
    }
    out.push_back(it->second);
  }
  return out;
}

void WorkerSlots::Retain(const std::vector<std::string>& functions) {
  const std::lock_guard lock(mutex_);
  const std::set<std::string> keep(functions.begin(), functions.end());
  std::erase_if(slots_, [&](const auto& entry) { return !keep.contains(entry.first); });
}

std::vector<MetricFamily> StatusMetrics(const nlohmann::json& status, WorkerSlots* slots) {
  WorkerSlots fresh;
  if (slots == nullptr) slots = &fresh;
  Families out;
  constexpr auto kCounter = MetricType::Counter;
  constexpr auto kGauge = MetricType::Gauge;
  // Health first: it is read at each scrape, so it holds even when the rest is an old snapshot.
  if (const auto components = status.find("components");
      components != status.end() && components->is_array()) {
    for (const auto& c : *components) {
      if (!c.is_object()) continue;
      out.Add("runnel_component_up", kGauge,
              "1 while the stack's component runs, 0 once a fault stopped it (runnel up then exits)",
              {{"component", c.value("name", "")}}, c.value("up", false) ? 1 : 0);
    }
  }
  if (const auto age = status.find("age_ms"); age != status.end() && age->is_number()) {
    out.Add("runnel_status_age_seconds", kGauge,
            "age of the status snapshot the other gauges come from (refreshed every autoscaler tick)", {},
            age->get<double>() / 1000.0);
  }
  const auto functions = status.find("functions");
  if (functions == status.end() || !functions->is_array()) return out.Take();
  std::vector<std::string> names;
  for (const auto& f : *functions) {
    if (!f.is_object()) continue;
    const std::string name = f.value("name", "");
    names.push_back(name);
    const std::vector<ClientMetric::Label> fn = {{"function", name}};
    auto with = [&](const char* label, const std::string& value) {
      auto labels = fn;
      labels.push_back({label, value});
      return labels;
    };
    // Lag and backlog.
    out.Add(
        "runnel_dispatcher_lag_events", kGauge,
        "Kafka consumer lag of the function's group: end offset minus committed offset, over its partitions",
        fn, Num(f, "lag"));
    out.Add("runnel_dispatcher_backlog_events", kGauge,
            "Events waiting for a worker: not yet consumed past the dispatcher's position, plus consumed and "
            "queued",
            fn, Num(f, "backlog"));
    out.Add("runnel_dispatcher_lag_seconds", kGauge,
            "Age of the oldest event the dispatcher holds that has no final outcome yet (0: none)", fn,
            Num(f, "oldest_age_ms") / 1000.0);
    out.Add("runnel_dispatcher_queued_events", kGauge,
            "Consumed events waiting for a worker, their key, or a retry", fn, Num(f, "queued"));
    out.Add("runnel_dispatcher_in_flight_events", kGauge, "Events at a worker now", fn, Num(f, "in_flight"));
    // Flow.
    out.Add("runnel_dispatcher_received_events_total", kCounter, "Records consumed from the function's topic",
            fn, Num(f, "received"));
    out.Add("runnel_dispatcher_completed_events_total", kCounter,
            "Events with a final outcome, by outcome (ok, error, dead-letter)", with("outcome", "ok"),
            Num(f, "succeeded"));
    out.Add("runnel_dispatcher_completed_events_total", kCounter, "", with("outcome", "error"),
            Num(f, "errors"));
    out.Add("runnel_dispatcher_completed_events_total", kCounter, "", with("outcome", "dead-letter"),
            Num(f, "dead_lettered"));
    out.Add("runnel_dispatcher_dead_letters_total", kCounter,
            "Dead-letter records written (every error and dead-letter outcome gets one)", fn,
            Num(f, "errors") + Num(f, "dead_lettered"));
    out.Add("runnel_dispatcher_retries_total", kCounter, "Attempts scheduled again after a retriable failure",
            fn, Num(f, "retries"));
    out.Add("runnel_dispatcher_redispatched_events_total", kCounter,
            "Events taken from a lost worker and dispatched again", fn, Num(f, "redispatched"));
    out.Add("runnel_filtered_total", kCounter,
            "Events the function's filter turned away: committed without a call and without an outcome", fn,
            Num(f, "filtered"));
    out.Add("runnel_dispatcher_retention_lost_events_total", kCounter,
            "Records the broker's retention dropped before the function processed them", fn,
            Num(f, "retention_lost"));
    out.Add("runnel_function_blocked", kGauge,
            "1 while the function cannot go on: its dead-letter topic refuses records (status blocked_reason "
            "says "
            "why); its partitions are paused",
            fn, f.value("blocked", false) ? 1.0 : 0.0);
    out.Add("runnel_dispatcher_records_refused_total", kCounter,
            "Record writes Kafka refused (dead letters, results, pipeline events), every attempt counted", fn,
            Num(f, "records_refused"));
    // Workers.
    out.Add("runnel_autoscaler_workers_desired", kGauge, "Workers the autoscaler wants for the function now",
            fn, Num(f, "desired"));
    out.Add("runnel_autoscaler_workers_running", kGauge, "Worker processes alive and not stopping", fn,
            Num(f, "running"));
    out.Add("runnel_autoscaler_workers_joined", kGauge, "Workers connected to the function's dispatcher", fn,
            Num(f, "joined"));
    out.Add("runnel_autoscaler_scale_changes_total", kCounter, "Times the desired worker count changed", fn,
            Num(f, "scale_changes"));
    out.Add("runnel_dispatcher_workers_lost_total", kCounter,
            "Workers that left the dispatcher (drained, exited, silent, killed)", fn, Num(f, "workers_lost"));
    // Usage: the serverless bill.
    const auto usage = f.value("usage", nlohmann::json::object());
    out.Add("runnel_usage_invocations_total", kCounter, "Attempts handed to a worker (every retry counts)",
            fn, Num(usage, "invocations"));
    out.Add("runnel_usage_worker_seconds_total", kCounter,
            "Worker-seconds: the summed lifetime of the function's worker processes", fn,
            Num(usage, "worker_seconds"));
    out.Add("runnel_usage_cpu_seconds_total", kCounter,
            "CPU seconds (user + system) used by the function's worker processes", fn,
            Num(usage, "cpu_seconds"));
    out.Add("runnel_usage_peak_memory_bytes", kGauge,
            "Highest peak resident memory of any one of the function's worker processes", fn,
            Num(usage, "peak_rss_kb") * 1024);
    out.Add("runnel_usage_workers_started_total", kCounter, "Worker processes started (restarts included)",
            fn, Num(usage, "workers_started"));
    out.Add("runnel_autoscaler_worker_restarts_total", kCounter,
            "Worker processes restarted after exiting unasked (crashes, kills)", fn, Num(usage, "restarts"));
    // Per worker, labelled by its slot (WorkerSlots): bounded series however many workers come and go.
    std::vector<const nlohmann::json*> workers;
    std::vector<std::string> ids;
    if (const auto list = f.find("workers"); list != f.end() && list->is_array()) {
      for (const auto& w : *list) {
        if (!w.is_object()) continue;
        workers.push_back(&w);
        ids.push_back(w.value("id", ""));
      }
    }
    const auto worker_slots = slots->Assign(name, ids);
    for (std::size_t i = 0; i < workers.size(); ++i) {
      const auto& w = *workers[i];
      auto labels = with("slot", std::to_string(worker_slots[i]));
      out.Add("runnel_worker_resident_memory_bytes", kGauge, "Resident memory of the worker in this slot",
              labels, Num(w, "rss_kb") * 1024);
      out.Add("runnel_worker_cpu_seconds_total", kCounter,
              "CPU seconds (user + system) of the worker in this slot (resets when another worker takes the "
              "slot)",
              labels, Num(w, "cpu_s"));
      out.Add("runnel_worker_in_flight_events", kGauge, "Events the worker in this slot holds now", labels,
              Num(w, "in_flight"));
    }
  }
  slots->Retain(names);
  // Messages from peers the stack could not use, per socket and reason (docs/protocol.md §3.4).
  AddSocketCounts(
      out, status, "protocol_errors", "runnel_protocol_errors_total",
      "Messages received that could not be used (malformed, wrong-typed, oversized, not UTF-8, unknown, "
      "out of order, a result from a connection that does not hold the task), by socket and reason");
  // Clients the guard refused, per socket and reason (docs/protocol.md §6).
  if (const auto security = status.find("security"); security != status.end() && security->is_object()) {
    AddSocketCounts(
        out, *security, "refused", "runnel_connections_refused_total",
        "Clients refused before they could send anything (no-curve: a plain client; hung-up; unknown-key: a "
        "key the stack does not admit; token-refused: a revoked or expired join token; bad-handshake), by "
        "socket and reason");
  }
  return out.Take();
}

}  // namespace runnel::telemetry
