// The dispatcher's bookkeeping types: an event it holds (Slot) and a connected worker.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runnel/broker/worker_credit.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/core/outcome.hpp"
#include "runnel/core/wire.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/kafka/producer.hpp"

namespace runnel::broker {

using Clock = std::chrono::steady_clock;

// The records an event may need before its outcome is final (docs/protocol.md §4): pipeline events
// (several at once) then the results record for an ok outcome; the dead-letter copy then the
// results record for a failure.
enum class RecordStage { kDeadLetter, kResult, kPipeline };

// An event's outcome as the dispatcher decides it (Loop::Decide): what its Outcome says beyond the
// event itself, and the records an ok call emitted. A failure is made with Failure and given the
// worker whose call it was, if any; an answer fills in what the worker sent.
struct Decision {
  OutcomeStatus status = OutcomeStatus::kOk;
  std::string error_kind;  // empty when ok
  std::string error;
  std::string output;
  std::string content_type;
  std::string files_json;
  std::int64_t duration_us = 0;
  std::string worker;  // the worker's own id, of the call that decided it; empty if none did
  std::vector<wire::EmitRecord> emitted;

  static Decision Failure(OutcomeStatus status, std::string error_kind, std::string error) {
    Decision d;
    d.status = status;
    d.error_kind = std::move(error_kind);
    d.error = std::move(error);
    return d;
  }
};

// One consumed event, from the moment it is read until it is done.
struct Slot {
  // An event's life: queued (waiting for its key and a worker), in flight at a worker, in backoff
  // before its next attempt; once its outcome is decided, writing the records it needs (pipeline
  // events, the dead-letter copy, the results record), then done (published, its offset done).
  enum class State {
    kQueued,
    kInFlight,
    kBackoff,
    kWritingPipeline,
    kWritingDeadLetter,
    kWritingResult,
    kDone,
  };
  // The state of an event writing a record of `stage`.
  static constexpr State Writing(RecordStage stage) {
    switch (stage) {
      case RecordStage::kDeadLetter:
        return State::kWritingDeadLetter;
      case RecordStage::kResult:
        return State::kWritingResult;
      case RecordStage::kPipeline:
        return State::kWritingPipeline;
    }
    return State::kWritingResult;
  }
  // Its outcome is decided and the records it needs are not all acknowledged yet.
  bool WritingRecords() const {
    return state == State::kWritingPipeline || state == State::kWritingDeadLetter ||
           state == State::kWritingResult;
  }

  kafka::Message msg;
  std::string id;  // the envelope's id, or <topic>-<partition>-<offset>
  Envelope envelope;
  // This dispatcher's span for the event's current attempt (a child of envelope.span_id, 16 hex):
  // the worker, the outcome's records and the events it leads to carry it in their `traceparent`.
  std::string span_id;
  int attempt = 1;
  State state = State::kQueued;
  std::uint64_t token = 0;  // of the current dispatch
  // While in flight: the ROUTER routing identity of the connection holding it (a key of the
  // Loop's workers_; the worker's own id is Worker::id).
  std::string connection;
  Clock::time_point deadline{};
  // Set once the outcome is decided: what gets published when the records it needs are acknowledged.
  std::optional<Outcome> outcome;
  bool needs_dead_letter = false;
  // Events this one leads to (Emit, `next`): produced before the outcome is final.
  std::vector<kafka::Record> pipeline;
  std::size_t pipeline_pending = 0;
  // Records Kafka refused: failed writes per record (stage, pipeline index), for bounded retries.
  std::map<std::pair<RecordStage, std::size_t>, int> write_failures;
  // Why the pipeline could not be written: the outcome the event gets once every record is settled.
  // Rare, and a Decision is a few hundred bytes: held apart so every Slot stays small (the
  // dispatcher holds tens of thousands of them and walks them all when it publishes its stats).
  std::unique_ptr<Decision> pipeline_failure;
  bool skip_result = false;  // the results topic refused its record: feed and dead letter only
  // Its partition went to another stack (a shared function's rebalance): a queued event waits in
  // the queue only to be dropped when it comes up (Dispatch); no other state keeps the slot.
  bool handed_off = false;
  std::size_t dead_letter_max =
      0;  // 0: the producer's limit; lower once the broker refused the copy as too large
};

// A connected worker: its session and the events it holds; its credit is WorkerCredit's
// (runnel/broker/worker_credit.hpp).
struct Worker : WorkerCredit {
  std::string identity;  // the ROUTER routing id
  std::string id;        // what the worker calls itself
  std::string user;      // its connection's ZMQ User-Id (the key it was admitted by); empty: plain
  int pid = 0;
  Clock::time_point last_heard{};
  std::set<std::uint64_t> slots;  // events it holds
  std::int64_t completed = 0;
  std::int64_t total_service_us = 0;
  std::int64_t rss_kb = 0;

  // What it may be handed now: its credit less what it holds (0 while draining).
  int Free() const { return WorkerCredit::Free(slots.size()); }
};

}  // namespace runnel::broker
