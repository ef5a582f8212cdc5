// One function's dispatcher: the long-lived Kafka consumer that hands events to worker processes
// over ZeroMQ, so that workers are never consumer-group members (docs/protocol.md §3).
//
// It consumes the function's topic by assigning its partitions directly (no group join: it starts
// at once, and a restart does not wait out a session timeout) and commits to spec.Group()
// (runnel.<function> unless `group`): one dispatcher per function and group.
//
// Guarantees: an offset is committed only when every event below it has a final outcome (a result
// handed to the results feed, or a dead-letter record acknowledged with acks=all); events with
// the same key run one at a time in offset order; a worker silent for three heartbeats loses its
// events to other workers at once; a poison event goes to the dead-letter topic after its retries
// without blocking its partition; records the broker dropped before they were processed are
// counted and logged as lost, never passed off as done. A record Kafka refuses (too large, an
// unwritable topic) becomes a clear outcome after bounded retries; only a dead-letter topic that
// refuses records stops the function (DispatcherStats::blocked), never silently.
//
// Thread-safety: the dispatcher runs on its own thread (Start/Stop); Stats() and Endpoint() may be
// called from any thread. The destructor stops it (see Stop).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runnel/broker/event_observer.hpp"
#include "runnel/broker/kafka.hpp"
#include "runnel/core/config.hpp"
#include "runnel/core/protocol_errors.hpp"

namespace zmq {
class context_t;
}

namespace runnel::broker {

struct WorkerStats {
  std::string id;
  int pid = 0;
  int capacity = 0;  // its credit now: what it may hold (concurrency, more with prefetch)
  int in_flight = 0;
  bool draining = false;
  std::int64_t completed = 0;
  std::int64_t service_us = 0;  // sum of the durations its results reported
  std::int64_t rss_kb = 0;
};

struct DispatcherStats {
  std::int64_t received = 0;       // records consumed
  std::int64_t succeeded = 0;      // final outcome ok
  std::int64_t failed = 0;         // final outcome error (permanent failure, dead-lettered)
  std::int64_t dead_lettered = 0;  // final outcome dead-letter (retries exhausted, recursion, worker lost)
  std::int64_t retries = 0;        // attempts scheduled after a failure
  std::int64_t attempts = 0;       // events handed to a worker, every attempt counted (invocations)
  std::int64_t redispatched = 0;   // events taken from a lost worker
  std::int64_t late_results = 0;   // answers for events already given to another worker
  // Messages from workers (or anything else on the ROUTER) that could not be used: malformed,
  // wrong-typed, unknown, out of order, or a result for a task another connection holds
  // (docs/protocol.md §3.4). By reason, as in runnel_protocol_errors_total.
  std::map<std::string, std::int64_t> protocol_errors;
  std::int64_t retention_lost = 0;  // records the broker dropped before Runnel processed them
  std::int64_t workers_lost = 0;
  std::size_t queued = 0;     // consumed, waiting for a worker (or for their key, or a retry)
  std::size_t in_flight = 0;  // at a worker
  std::size_t pending = 0;    // consumed and not yet done (queued + in flight + finishing)
  bool paused = false;        // consumption paused: the buffer is full, or blocked
  // The function cannot go on: its dead-letter topic refuses records (blocked_reason says why and
  // the log what to fix). Its partitions are paused and nothing is committed past the event.
  bool blocked = false;
  std::string blocked_reason;
  std::int64_t records_refused =
      0;  // record writes Kafka refused (dead letters, results, pipeline), every attempt
  std::int64_t no_worker_waits = 0;  // times an event arrived while no worker was connected
  std::int64_t filtered = 0;         // events the function's filter turned away: committed without a call
  // For the autoscaler: results from workers (ok or error) and the sum of their reported durations,
  // the record timestamp (epoch ms) of the oldest event not yet done (-1: none, or no timestamps),
  // and per partition the next offset the dispatcher will consume.
  std::int64_t results = 0;
  std::int64_t service_us = 0;
  std::int64_t oldest_pending_ms = -1;
  std::map<std::int32_t, std::int64_t> positions;
  std::map<std::string, WorkerStats> workers;
};

class Dispatcher {
 public:
  struct Options {
    FunctionSpec spec;
    KafkaConfig kafka;
    zmq::context_t* zmq = nullptr;  // shared with the stack; must outlive the dispatcher
    std::string bind = "tcp://127.0.0.1:*";
    std::string results_endpoint;  // the stack's results proxy to connect a PUB to; empty: none
    std::chrono::milliseconds heartbeat{1000};
    // fetch.wait.max.ms of its consumer: how long the broker may hold a fetch that finds nothing.
    // A real broker answers a held fetch as soon as data arrives, so a long wait costs no latency
    // there and spares the broker empty fetches; the embedded (mock) broker holds it for the full
    // wait even when data arrives, so the stack sets 2 ms there. kafka.options overrides both.
    std::chrono::milliseconds fetch_wait_max{100};
    std::size_t max_buffered = 20'000;  // consumed but not done, before partitions are paused
    std::string output_dir;
    // Topics of the functions this one feeds (config `next`): each ok outcome becomes an event
    // there, one per output file (by reference) or, without files, the output itself.
    std::vector<std::string> next_topics;
    // Called on the dispatcher's thread when an event arrives while no worker is connected, so an
    // autoscaler can start one at once instead of on its next poll. Must not block.
    std::function<void()> on_event_without_workers;
    // Told about every event's way through the dispatcher (traces, duration histograms); optional.
    std::shared_ptr<EventObserver> observer;
    // Where protocol errors of its ROUTER are counted (socket "dispatcher/<function>"), shared with
    // the stack's other sockets for /metrics; null: the dispatcher keeps its own.
    std::shared_ptr<ProtocolErrors> protocol_errors = nullptr;
    // Called on the dispatcher's thread, once, when a fault ends its loop (the reason as text):
    // a Kafka error retrying cannot fix (authentication, an unknown topic), a bug. The dispatcher
    // consumes nothing more; its stack is expected to stop (runnel up exits, docs/config.md).
    std::function<void(const std::string& reason)> on_failure;
  };

  // Assigns the partitions and binds the ROUTER socket; throws KafkaError or ConfigError.
  explicit Dispatcher(Options options);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // The ROUTER endpoint workers connect to, e.g. tcp://127.0.0.1:40211.
  const std::string& Endpoint() const;
  void Start();
  // Begins a stop without waiting: no new event is consumed or dispatched; the loop runs on until
  // the events at workers are done and their outcomes written (or `drain` passed), commits, and
  // ends. The first request's `drain` holds.
  void RequestStop(std::chrono::milliseconds drain);
  // RequestStop, then waits for the loop to end. Events not finished by then are not committed
  // and will be consumed again after a restart.
  void Stop(std::chrono::milliseconds drain = std::chrono::seconds(10));
  DispatcherStats Stats() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace runnel::broker
