// Where events went, as the stack recorded it: per event and function, the record it came from
// (topic, partition, offset), every attempt (worker, start, duration, how it ended), the retries
// and their backoff, the final outcome and, for a failure, the dead-letter topic and reason.
// `runnel trace EVENT_ID` reads it through the stack's control socket.
//
// It lives in the stack's memory and is bounded: it keeps the most recent `max_events` events'
// traces (docs/metrics.md says why this store and this bound) in a ring of reused slots with an
// open-addressing index by id, so recording an event costs few allocations and few cache misses.
// Beside the traces it keeps the final outcomes of synchronous calls (events with a reply-to, as
// `runnel invoke` sends), output included, so a caller whose results-feed message was dropped can
// still read its answer (`outcome <event id>`, docs/protocol.md §4.4). That store has its own
// bounds: outputs up to kKeptOutputMax bytes each, kKeptBytesMax bytes and max_events outcomes in
// all, the oldest forgotten first.
// Thread-safety: every method may be called from any thread; one mutex, taken once per
// dispatcher flush (EventJournal) and per query.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace runnel::telemetry {

struct TraceAttempt {
  int attempt = 1;
  std::string worker;
  std::int64_t start_ms = 0;       // epoch ms, when the dispatcher handed it to the worker
  std::int64_t duration_us = -1;   // as the worker reported it; -1: no answer
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
  std::int64_t record_ms = -1;   // the record's timestamp
  std::int64_t received_ms = 0;  // when the dispatcher consumed it
  int deliveries = 1;            // times it was consumed (more than 1 after a restart or replay)
  std::vector<TraceAttempt> attempts;
  std::string status = "in progress";  // then ok, error, dead-letter; or handed off (to another stack)
  std::string error_kind;
  std::string error;
  std::string dead_letter_topic;
  std::int64_t finished_ms = -1;
  std::int64_t latency_ms = -1;  // record timestamp to final outcome

  nlohmann::json ToJson() const;
};

// The final outcome of a synchronous call as the store keeps it: Outcome::MetaJson and the output.
struct KeptOutcome {
  std::string meta;
  std::string output;
  bool output_kept = true;       // false: the output was over kKeptOutputMax (then empty here)
  std::size_t output_bytes = 0;  // the output's size, kept or not
};

// A trace in the store as a writer holds it between batches: which slot, which trace in it, and the
// slot's generation, so a trace evicted meanwhile is recognised instead of overwritten.
struct TraceRef {
  std::uint32_t slot = 0;
  std::uint32_t index = 0;
  std::uint64_t generation = 0;
};

class TraceStore {
 public:
  static constexpr std::size_t kDefaultMaxEvents = 100'000;
  // Bounds of the kept outcomes: a larger output is not kept (its meta is); the oldest outcomes go
  // once the kept bytes (meta and output) pass the total.
  static constexpr std::size_t kKeptOutputMax = 1 << 20;
  static constexpr std::size_t kKeptBytesMax = 64u << 20;
  explicit TraceStore(std::size_t max_events = kDefaultMaxEvents);

  // Changes to traces, applied under the store's one lock: `fn(Batch&)`.
  class Batch {
   public:
    // The trace of (function, id), created if the id is new (evicting the oldest event's traces
    // beyond the bound). Hold the ref across batches; read it back with At.
    TraceRef Open(const std::string& function, const std::string& id);
    // The trace `ref` names, or null when its event has been evicted since.
    EventTrace* At(const TraceRef& ref);
    // Keeps the final outcome of (function, id), replacing an earlier one (a redelivered event).
    void Keep(const std::string& function, const std::string& id, KeptOutcome outcome);

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

  // Every function's trace of event `id` (usually one), in the order they were opened.
  std::vector<EventTrace> Find(const std::string& id) const;
  // The kept outcome of (function, id), or nullopt when none is kept (not a synchronous call, not
  // finished, or forgotten beyond the bounds).
  std::optional<KeptOutcome> Kept(const std::string& function, const std::string& id) const;
  std::size_t KeptBytes() const;
  std::size_t Size() const;
  std::size_t MaxEvents() const { return max_events_; }

 private:
  // One event: its id and one trace per function that consumed it. A slot is reused in place for
  // a newer event once the ring is full, keeping its strings' and vectors' capacity, so a steady
  // stream of events allocates (almost) nothing here.
  struct Slot {
    std::uint32_t hash = 0;
    std::uint64_t generation = 0;
    std::size_t used = 0;          // traces [0, used) belong to this event
    EventTrace first;              // trace 0 (its id is the slot's id): nearly every event has only one
    std::vector<EventTrace> more;  // traces 1, 2, ...; beyond `used`: kept for their capacity
    EventTrace& Trace(std::size_t i) { return i == 0 ? first : more[i - 1]; }
    const EventTrace& Trace(std::size_t i) const { return i == 0 ? first : more[i - 1]; }
  };
  // The index: open addressing with linear probing over a power-of-two table at most half full;
  // an entry is the slot number + 1 (0: empty) and the id's hash, so most probes never touch a slot.
  struct IndexEntry {
    std::uint32_t slot_plus_1 = 0;
    std::uint32_t hash = 0;
  };

  std::size_t Lookup(const std::string& id, std::uint32_t hash) const;  // index position, or npos
  void IndexInsert(std::uint32_t slot, std::uint32_t hash);
  void IndexErase(std::uint32_t slot);
  void IndexGrow();  // doubles the table

  std::size_t max_events_;
  mutable std::mutex mu_;
  std::vector<Slot> ring_;  // grows to max_events_, then the oldest slot is reused
  std::size_t next_ = 0;    // once full: the oldest slot, the next one reused
  std::uint64_t generation_ = 0;
  std::vector<IndexEntry> index_;
  std::size_t mask_ = 0;
  // Kept outcomes by "<function>\n<id>", and their keys oldest first (one per Keep, so a key may
  // appear again after a replacement: only its last position counts, by sequence number).
  struct KeptEntry {
    KeptOutcome outcome;
    std::uint64_t sequence = 0;
  };
  std::unordered_map<std::string, KeptEntry> kept_;
  std::deque<std::pair<std::string, std::uint64_t>> kept_order_;
  std::uint64_t kept_sequence_ = 0;
  std::size_t kept_bytes_ = 0;
};

}  // namespace runnel::telemetry
