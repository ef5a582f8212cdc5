// What a dispatcher tells an observer about each event's way through it: consumed, handed to a
// worker, answered, lost with a worker or timed out, retried, finished. The stack's telemetry
// (event traces, duration histograms, errors by kind) hangs off this; the dispatcher knows nothing
// of Prometheus or trace stores.
//
// Thread-safety: every call comes from the dispatcher's own thread, on its hot path, so an
// implementation must not block: buffer what it records and hand it on in Flush, which the
// dispatcher calls with its stats (every 100 ms) and when it stops. `slot` identifies an event
// while the dispatcher holds it; Received says which event id it stands for.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "runnel/core/outcome.hpp"
#include "runnel/kafka/consumer.hpp"

namespace runnel::broker {

class EventObserver {
 public:
  virtual ~EventObserver() = default;
  // The record was consumed; `id` is the envelope's id (or <topic>-<partition>-<offset>).
  virtual void Received(std::uint64_t slot, const std::string& id, const kafka::Message& msg) = 0;
  // Attempt `attempt` went to worker `worker` (the worker's own id).
  virtual void Dispatched(std::uint64_t slot, int attempt, const std::string& worker) = 0;
  // The worker answered: ok, or an error with its kind (ErrcName) and message.
  virtual void Answered(std::uint64_t slot, const std::string& worker, std::int64_t duration_us, bool ok,
                        std::string_view error_kind, std::string_view error) = 0;
  // The attempt ended without an answer: the worker was lost, or overran the timeout.
  virtual void Abandoned(std::uint64_t slot, const std::string& worker, std::string_view kind,
                         std::string_view reason) = 0;
  // Another attempt is due after `backoff`.
  virtual void RetryScheduled(std::uint64_t slot, int next_attempt, std::chrono::milliseconds backoff) = 0;
  // The final outcome is published (and, for a failure, its dead-letter record acknowledged to
  // `dead_letter_topic`); the slot is gone after this.
  virtual void Finished(std::uint64_t slot, const Outcome& outcome, std::string_view dead_letter_topic) = 0;
  // The event's partition went to another stack of a shared function before it finished: that
  // stack runs it from the group's committed offset. The slot is gone after this.
  virtual void HandedOff(std::uint64_t slot, std::string_view reason) = 0;
  virtual void Flush() = 0;
};

}  // namespace runnel::broker
