// What a dispatcher reports about itself (Dispatcher::Stats): counters since start, what it holds
// now, and per worker its credit and load. Read by the autoscaler (backlog, service time), by
// telemetry (/metrics) and by `runnel status`. Plain data: copying it is the snapshot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

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
  std::int64_t received = 0;   // records consumed
  std::int64_t succeeded = 0;  // final outcome ok
  std::int64_t errors =
      0;  // final outcome error (permanent failure, dead-lettered): status "errors", outcome="error"
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
  // Events whose `traceparent` was invalid (dropped, a fresh trace started: docs/protocol.md §1.4).
  std::int64_t traceparent_invalid = 0;
  // For the autoscaler: results from workers (ok or error) and the sum of their reported durations,
  // the record timestamp (epoch ms) of the oldest event not yet done (-1: none, or no timestamps),
  // and per partition the next offset the dispatcher will consume.
  std::int64_t results = 0;
  std::int64_t service_us = 0;
  std::int64_t oldest_pending_ms = -1;
  std::map<std::int32_t, std::int64_t> positions;
  // A shared function (scaling.shared): the partitions the group gives this stack now, how many
  // rebalances changed them, and the events left unfinished on partitions that moved away.
  bool shared = false;
  std::vector<std::int32_t> owned;
  std::int64_t rebalances = 0;
  std::int64_t handed_off = 0;
  std::map<std::string, WorkerStats> workers;
};

}  // namespace runnel::broker
