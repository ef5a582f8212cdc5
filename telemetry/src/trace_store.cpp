#include "runnel/telemetry/trace_store.hpp"

namespace runnel::telemetry {

nlohmann::json EventTrace::ToJson() const {
  nlohmann::json attempts_json = nlohmann::json::array();
  for (const auto& a : attempts) {
    nlohmann::json j = {{"attempt", a.attempt}, {"worker", a.worker}, {"start_ms", a.start_ms}, {"result", a.result}};
    if (a.duration_us >= 0) j["duration_ms"] = static_cast<double>(a.duration_us) / 1000.0;
    if (!a.error_kind.empty()) j["error_kind"] = a.error_kind;
    if (!a.error.empty()) j["error"] = a.error;
    if (a.retry_in_ms >= 0) j["retry_in_ms"] = a.retry_in_ms;
    attempts_json.push_back(std::move(j));
  }
  nlohmann::json j = {{"id", id},
                      {"function", function},
                      {"topic", topic},
                      {"partition", partition},
                      {"offset", offset},
                      {"received_ms", received_ms},
                      {"deliveries", deliveries},
                      {"attempts", std::move(attempts_json)},
                      {"retries", attempts.empty() ? 0 : static_cast<int>(attempts.size()) - 1},
                      {"status", status}};
  if (key) j["key"] = *key;
  if (record_ms >= 0) j["record_ms"] = record_ms;
  if (!error_kind.empty()) j["error_kind"] = error_kind;
  if (!error.empty()) j["error"] = error;
  if (!dead_letter_topic.empty()) j["dead_letter_topic"] = dead_letter_topic;
  if (finished_ms >= 0) j["finished_ms"] = finished_ms;
  if (latency_ms >= 0) j["latency_ms"] = latency_ms;
  return j;
}

TraceStore::TraceStore(std::size_t max_events) : max_events_(max_events == 0 ? 1 : max_events) {}

std::shared_ptr<EventTrace> TraceStore::Batch::Get(const std::string& function, const std::string& id) {
  auto& s = store_;
  auto [it, inserted] = s.traces_.try_emplace(id);
  if (inserted) {
    s.order_.push_back(&it->first);
    while (s.order_.size() > s.max_events_) {
      const std::string* oldest = s.order_.front();
      s.order_.pop_front();
      s.traces_.erase(*oldest);
    }
  }
  for (auto& t : it->second) {
    if (t->function == function) return t;
  }
  auto t = std::make_shared<EventTrace>();
  t->id = id;
  t->function = function;
  it->second.push_back(t);
  return t;
}

std::vector<EventTrace> TraceStore::Find(const std::string& id) const {
  std::lock_guard lock(mu_);
  std::vector<EventTrace> out;
  if (auto it = traces_.find(id); it != traces_.end()) {
    for (const auto& t : it->second) out.push_back(*t);
  }
  return out;
}

std::size_t TraceStore::Size() const {
  std::lock_guard lock(mu_);
  return traces_.size();
}

}  // namespace runnel::telemetry
