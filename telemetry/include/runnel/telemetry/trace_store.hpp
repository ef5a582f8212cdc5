// Where events went, as the stack recorded it: per event and function, the record it came from
// (topic, partition, offset), every attempt (worker, start, duration, how it ended), the retries
// and their backoff, the final outcome and, for a failure, the dead-letter topic and reason.
// `runnel trace EVENT_ID` reads it through the stack's control socket.
//
// It lives in the stack's memory and is bounded: it keeps the most recent `max_events` traces
// (docs/metrics.md says why this store and this bound). Thread-safety: every method may be called
// from any thread; one mutex, taken once per dispatcher flush (EventJournal) and per query.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace runnel::telemetry {

struct TraceAttempt {
  int attempt = 1;
  std::string worker;
  std::int64_t start_ms = 0;     // epoch ms, when the dispatcher handed it to the worker
  std::int64_t duration_us = -1; // as the worker reported it; -1: no answer
  std::string result = "running";  // ok, error, worker-lost, timeout, running
  std::string error_kind;
  std::string error;
  std::int64_t retry_in_ms = -1;  // backoff before the next attempt; -1: none scheduled
};

struct EventTrace {
  std::string id;
  std::string function;
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::optional<std::string> key;
  std::int64_t record_ms = -1;    // the record's timestamp
  std::int64_t received_ms = 0;   // when the dispatcher consumed it
  int deliveries = 1;             // times it was consumed (more than 1 after a restart or replay)
  std::vector<TraceAttempt> attempts;
  std::string status = "in progress";  // then ok, error, dead-letter
  std::string error_kind;
  std::string error;
  std::string dead_letter_topic;
  std::int64_t finished_ms = -1;
  std::int64_t latency_ms = -1;   // record timestamp to final outcome

  nlohmann::json ToJson() const;
};

class TraceStore {
 public:
  static constexpr std::size_t kDefaultMaxEvents = 100'000;
  explicit TraceStore(std::size_t max_events = kDefaultMaxEvents);

  // Changes to traces, applied under the store's one lock: `fn(Batch&)`.
  // Inside Update: the trace of (function, id), created if new (evicting the oldest event's traces
  // beyond the bound). A trace is shared: the journal keeps it while the event is open and changes
  // it only inside Update, so an evicted trace is simply no longer found.
  class Batch {
   public:
    std::shared_ptr<EventTrace> Get(const std::string& function, const std::string& id);

   private:
    friend class TraceStore;
    explicit Batch(TraceStore& store) : store_(store) {}
    TraceStore& store_;
  };
  template <typename Fn>
  void Update(Fn&& fn) {
    std::lock_guard lock(mu_);
    Batch batch(*this);
    fn(batch);
  }

  // Every function's trace of event `id` (usually one), oldest first.
  std::vector<EventTrace> Find(const std::string& id) const;
  std::size_t Size() const;
  std::size_t MaxEvents() const { return max_events_; }

 private:
  std::size_t max_events_;
  mutable std::mutex mu_;
  // id -> one trace per function that consumed it.
  std::unordered_map<std::string, std::vector<std::shared_ptr<EventTrace>>> traces_;
  std::deque<const std::string*> order_;  // the map's keys (nodes are stable), oldest first, for eviction
};

}  // namespace runnel::telemetry
