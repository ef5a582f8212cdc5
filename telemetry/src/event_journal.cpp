#include "runnel/telemetry/event_journal.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>

namespace runnel::telemetry {
namespace {

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// From 1 ms to about 10 min: a thumbnail takes milliseconds, a video job minutes.
const prometheus::Histogram::BucketBoundaries& Buckets() {
  static const prometheus::Histogram::BucketBoundaries kBounds = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 600};
  return kBounds;
}

}  // namespace

EventMetrics::EventMetrics(std::shared_ptr<prometheus::Registry> owner)
    : registry(std::move(owner)),
      duration(prometheus::BuildHistogram()
                   .Name("runnel_function_duration_seconds")
                   .Help("How long one attempt ran in the worker, as the worker measured it, by function and "
                         "outcome (ok, error)")
                   .Register(*registry)),
      latency(
          prometheus::BuildHistogram()
              .Name("runnel_dispatcher_event_latency_seconds")
              .Help(
                  "From the record's timestamp to the event's final outcome (retries and waiting included), "
                  "by function and outcome (ok, error, dead-letter)")
              .Register(*registry)),
      errors(
          prometheus::BuildCounter()
              .Name("runnel_dispatcher_errors_total")
              .Help("Failed attempts by function and kind (timeout, transient, bad-input, worker-lost, ...), "
                    "plus events refused before any attempt (malformed-envelope, recursion, limit-exceeded)")
              .Register(*registry)) {}

EventJournal::EventJournal(std::string function, std::shared_ptr<TraceStore> store,
                           std::shared_ptr<EventMetrics> metrics, JobSink job_sink, CallSink call_sink)
    : function_(std::move(function)),
      store_(std::move(store)),
      metrics_(std::move(metrics)),
      job_sink_(std::move(job_sink)),
      call_sink_(std::move(call_sink)),
      duration_ok_(&metrics_->duration.Add({{"function", function_}, {"outcome", "ok"}}, Buckets())),
      duration_error_(&metrics_->duration.Add({{"function", function_}, {"outcome", "error"}}, Buckets())) {
  buffer_.reserve(1024);
}

prometheus::Histogram& EventJournal::Latency(const std::string& outcome) {
  auto [it, inserted] = latency_.try_emplace(outcome, nullptr);
  if (inserted)
    it->second = &metrics_->latency.Add({{"function", function_}, {"outcome", outcome}}, Buckets());
  return *it->second;
}

prometheus::Counter& EventJournal::Errors(const std::string& kind) {
  auto [it, inserted] = errors_.try_emplace(kind, nullptr);
  if (inserted) it->second = &metrics_->errors.Add({{"function", function_}, {"kind", kind}});
  return *it->second;
}

void EventJournal::Received(std::uint64_t slot, const std::string& id, const kafka::Message& msg) {
  Entry e{Kind::kReceived, slot, NowMs()};
  e.worker = id;
  e.topic = msg.topic;
  e.partition = msg.partition;
  e.number = msg.offset;
  e.record_ms = msg.timestamp_ms;
  e.key = msg.key;
  buffer_.push_back(std::move(e));
}

void EventJournal::Dispatched(std::uint64_t slot, int attempt, const std::string& worker) {
  Entry e{Kind::kDispatched, slot, NowMs()};
  e.attempt = attempt;
  e.worker = worker;
  buffer_.push_back(std::move(e));
}

void EventJournal::Answered(std::uint64_t slot, const std::string& worker, std::int64_t duration_us, bool ok,
                            std::string_view error_kind, std::string_view error) {
  Entry e{Kind::kAnswered, slot, NowMs()};
  e.worker = worker;
  e.number = duration_us;
  e.ok = ok;
  if (!ok) {
    e.error_kind = error_kind;
    e.error = error;
  }
  buffer_.push_back(std::move(e));
}

void EventJournal::Abandoned(std::uint64_t slot, const std::string& worker, std::string_view kind,
                             std::string_view reason) {
  Entry e{Kind::kAbandoned, slot, NowMs()};
  e.worker = worker;
  e.error_kind = kind;
  e.error = reason;
  buffer_.push_back(std::move(e));
}

void EventJournal::HandedOff(std::uint64_t slot, std::string_view reason) {
  Entry e{Kind::kHandedOff, slot, NowMs()};
  e.error = reason;
  buffer_.push_back(std::move(e));
}

void EventJournal::RetryScheduled(std::uint64_t slot, int next_attempt, std::chrono::milliseconds backoff) {
  Entry e{Kind::kRetry, slot, NowMs()};
  e.attempt = next_attempt;
  e.number = backoff.count();
  buffer_.push_back(std::move(e));
}

void EventJournal::Finished(std::uint64_t slot, const Outcome& outcome, std::string_view dead_letter_topic) {
  Entry e{Kind::kFinished, slot, NowMs()};
  e.worker = std::string(StatusName(outcome.status));
  e.ok = outcome.status == OutcomeStatus::kOk;
  e.attempt = outcome.attempts;
  if (!e.ok) {
    e.error_kind = outcome.error_kind;
    e.error = outcome.error;
    e.topic = dead_letter_topic;
  }
  if (!outcome.reply_to.empty()) {
    // A synchronous call: its caller may have missed the feed's message (TraceStore's bounds).
    auto& keep = e.keep.emplace();
    keep.id = outcome.id;
    keep.outcome.meta = outcome.MetaJson();
    keep.outcome.output_bytes = outcome.output.size();
    keep.outcome.output_kept = outcome.output.size() <= TraceStore::kKeptOutputMax;
    if (keep.outcome.output_kept) keep.outcome.output = outcome.output;
  }
  buffer_.push_back(std::move(e));
  if (call_sink_ && !outcome.reply_to.empty()) call_sink_(outcome);
  if (!outcome.job_id.empty() && job_sink_) {
    Outcome& o = job_outcomes_.emplace_back();
    o.id = outcome.id;
    o.function = outcome.function;
    o.status = outcome.status;
    o.attempts = outcome.attempts;
    o.error = outcome.error;
    o.error_kind = outcome.error_kind;
    o.job_id = outcome.job_id;
  }
}

void EventJournal::Flush() {
  if (!job_outcomes_.empty()) {
    job_sink_(job_outcomes_);
    job_outcomes_.clear();
  }
  if (buffer_.empty()) return;
  // Metrics first (their own locks), then the traces under the store's one lock.
  for (const Entry& e : buffer_) {
    switch (e.kind) {
      case Kind::kAnswered:
        (e.ok ? duration_ok_ : duration_error_)->Observe(static_cast<double>(e.number) / 1e6);
        if (!e.ok) Errors(e.error_kind).Increment();
        break;
      case Kind::kAbandoned:
        Errors(e.error_kind).Increment();
        break;
      default:
        break;
    }
  }
  store_->Update([&](TraceStore::Batch& batch) {
    for (Entry& e : buffer_) {
      if (e.kind == Kind::kReceived) {
        Open& o = open_[e.slot];
        o.record_ms = e.record_ms;
        o.trace = batch.Open(function_, e.worker);
        EventTrace& t = *batch.At(o.trace);
        if (t.received_ms != 0) ++t.deliveries;  // consumed again (restart, replay): attempts continue
        if (t.received_ms == 0 || t.finished_ms >= 0) t.status = "in progress";
        t.topic = e.topic;
        t.partition = e.partition;
        t.offset = e.number;
        t.key = e.key;
        t.record_ms = e.record_ms;
        t.received_ms = e.at_ms;
        continue;
      }
      auto it = open_.find(e.slot);
      if (it == open_.end()) continue;  // cannot happen: every slot starts with Received
      // Null when more than the store's bound of newer events evicted it while it was open: the
      // metrics below still count it.
      EventTrace* t = batch.At(it->second.trace);
      switch (e.kind) {
        case Kind::kDispatched: {
          if (t == nullptr) break;
          TraceAttempt& a = t->attempts.emplace_back();
          a.attempt = e.attempt;
          a.worker = e.worker;
          a.start_ms = e.at_ms;
          break;
        }
        case Kind::kAnswered:
        case Kind::kAbandoned:
          if (t != nullptr && !t->attempts.empty()) {
            TraceAttempt& a = t->attempts.back();
            a.result = e.kind == Kind::kAbandoned ? e.error_kind : (e.ok ? "ok" : "error");
            if (e.kind == Kind::kAnswered) a.duration_us = e.number;
            a.error_kind = e.error_kind;
            a.error = e.error;
          }
          if (e.kind == Kind::kAbandoned || !e.ok) it->second.attempt_failed = true;
          break;
        case Kind::kRetry:
          if (t != nullptr && !t->attempts.empty()) t->attempts.back().retry_in_ms = e.number;
          break;
        case Kind::kFinished: {
          const std::int64_t record_ms = it->second.record_ms;
          const std::int64_t latency_ms =
              record_ms >= 0 ? std::max<std::int64_t>(0, e.at_ms - record_ms) : -1;
          if (t != nullptr) {
            t->status = e.worker;
            t->error_kind = e.error_kind;
            t->error = e.error;
            t->dead_letter_topic = e.topic;
            t->finished_ms = e.at_ms;
            if (latency_ms >= 0) t->latency_ms = latency_ms;
          }
          if (e.keep) batch.Keep(function_, e.keep->id, std::move(e.keep->outcome));
          if (!e.ok && !it->second.attempt_failed) {
            // Refused before any attempt failed (malformed, recursion, too large, expired): an error too.
            Errors(e.error_kind).Increment();
          }
          if (latency_ms >= 0) {
            Latency(e.worker).Observe(static_cast<double>(latency_ms) / 1000.0);
          }
          open_.erase(it);
          break;
        }
        case Kind::kHandedOff:
          if (t != nullptr) {
            t->status = "handed off";
            t->error = e.error;
          }
          open_.erase(it);
          break;
        case Kind::kReceived:
          break;
      }
    }
  });
  buffer_.clear();
}

}  // namespace runnel::telemetry
