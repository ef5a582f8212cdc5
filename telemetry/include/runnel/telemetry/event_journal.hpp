// One dispatcher's EventObserver: records each event's way (for TraceStore) and feeds the
// per-event metrics (attempt durations and event latencies as histograms, errors by kind).
//
// The dispatcher calls it on its hot path, so a call only appends a small entry to a buffer the
// dispatcher's thread owns; Flush (every 100 ms, on the same thread) applies the buffer to the
// trace store under one lock and observes the histograms. A trace is therefore up to ~100 ms
// behind the event. Thread-safety: one dispatcher thread calls everything.
//
// Two more things hang off Finished, both only for the events that need them: a synchronous
// call's outcome (an event with a reply-to) is kept in the store with its output (TraceStore's
// kept outcomes), and the outcome of a job's item (an event with a job id) goes to the job sink in
// Flush, so the scheduler counts job progress from the dispatcher itself, not from the lossy
// results feed. A call sink, when given, gets the outcome of every event with a reply-to in
// Finished itself (not at the next Flush): the gateway answers a waiting HTTP request from it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "runnel/broker/event_observer.hpp"
#include "runnel/telemetry/trace_store.hpp"

namespace prometheus {
class Registry;
class Histogram;
class Counter;
template <typename T>
class Family;
}  // namespace prometheus

namespace runnel::telemetry {

// The families every journal of a stack shares (one registry, labels per function).
struct EventMetrics {
  explicit EventMetrics(std::shared_ptr<prometheus::Registry> registry);
  std::shared_ptr<prometheus::Registry> registry;       // owns the families below
  prometheus::Family<prometheus::Histogram>& duration;  // runnel_function_duration_seconds
  prometheus::Family<prometheus::Histogram>& latency;   // runnel_dispatcher_event_latency_seconds
  prometheus::Family<prometheus::Counter>& errors;      // runnel_dispatcher_errors_total
};

// Takes a flush's outcomes of job items (id, function, status, attempts, error, job id; no output)
// on the dispatcher's thread: it must not block (append under a short lock).
using JobSink = std::function<void(std::vector<Outcome>& outcomes)>;
// Takes the final outcome of every event with a reply-to, output included, the moment the
// dispatcher finishes it (the HTTP gateway's waiting calls, gateway/): on the dispatcher's thread,
// so it must not block (a short lock, a notify) and should copy only what it waits for.
using CallSink = std::function<void(const Outcome& outcome)>;

class EventJournal final : public broker::EventObserver {
 public:
  EventJournal(std::string function, std::shared_ptr<TraceStore> store, std::shared_ptr<EventMetrics> metrics,
               JobSink job_sink = {}, CallSink call_sink = {});

  void Received(std::uint64_t slot, const std::string& id, const kafka::Message& msg) override;
  void Dispatched(std::uint64_t slot, int attempt, const std::string& worker) override;
  void Answered(std::uint64_t slot, const std::string& worker, std::int64_t duration_us, bool ok,
                std::string_view error_kind, std::string_view error) override;
  void Abandoned(std::uint64_t slot, const std::string& worker, std::string_view kind,
                 std::string_view reason) override;
  void RetryScheduled(std::uint64_t slot, int next_attempt, std::chrono::milliseconds backoff) override;
  void Finished(std::uint64_t slot, const Outcome& outcome, std::string_view dead_letter_topic) override;
  void HandedOff(std::uint64_t slot, std::string_view reason) override;
  void Flush() override;

 private:
  enum class Kind { kReceived, kDispatched, kAnswered, kAbandoned, kRetry, kFinished, kHandedOff };
  struct Entry {
    Entry(Kind k, std::uint64_t s, std::int64_t at) : kind(k), slot(s), at_ms(at) {}
    Kind kind;
    std::uint64_t slot;
    std::int64_t at_ms;  // epoch ms
    int attempt = 0;
    std::int64_t number = 0;  // duration (us), offset, backoff (ms) or latency source, by kind
    bool ok = false;
    std::string worker;  // or the id for kReceived, the status for kFinished
    std::string error_kind;
    std::string error;
    std::string topic;  // kReceived: the topic; kFinished: the dead-letter topic
    std::int32_t partition = -1;
    std::int64_t record_ms = -1;
    std::optional<std::string> key;
    // kFinished of a synchronous call: its id and the outcome to keep (meta and output).
    struct Keep {
      std::string id;
      KeptOutcome outcome;
    };
    std::optional<Keep> keep;
  };
  struct Open {
    std::int64_t record_ms = -1;
    bool attempt_failed = false;
    TraceRef trace;  // the store's trace, changed only inside its Update (gone once evicted)
  };

  std::string function_;
  std::shared_ptr<TraceStore> store_;
  std::shared_ptr<EventMetrics> metrics_;
  std::vector<Entry> buffer_;
  std::unordered_map<std::uint64_t, Open> open_;  // slot -> event, from Received to Finished
  JobSink job_sink_;
  CallSink call_sink_;
  std::vector<Outcome> job_outcomes_;  // since the last Flush, for job_sink_
  prometheus::Histogram* duration_ok_;
  prometheus::Histogram* duration_error_;
  // Series looked up once per label value (Family::Add hashes the whole label set every call).
  std::unordered_map<std::string, prometheus::Histogram*> latency_;  // by outcome
  std::unordered_map<std::string, prometheus::Counter*> errors_;     // by kind
  prometheus::Histogram& Latency(const std::string& outcome);
  prometheus::Counter& Errors(const std::string& kind);
};

}  // namespace runnel::telemetry
