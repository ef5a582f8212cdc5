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

#include "runnel/broker/dispatcher_stats.hpp"
#include "runnel/broker/event_observer.hpp"
#include "runnel/core/config.hpp"
#include "runnel/core/protocol_errors.hpp"
#include "runnel/kafka/kafka.hpp"
#include "runnel/security/guard.hpp"

namespace zmq {
class context_t;
}

namespace runnel::broker {

class Dispatcher {
 public:
  struct Options {
    FunctionSpec spec;
    kafka::KafkaOptions kafka;
    zmq::context_t* zmq = nullptr;  // shared with the stack; must outlive the dispatcher
    std::string bind = "tcp://127.0.0.1:*";
    // Makes the ROUTER a CURVE server admitting only the keys it knows (socket "dispatcher/<name>");
    // null: a plain socket, for tests on loopback. Must outlive the dispatcher.
    security::Guard* guard = nullptr;
    // Also bound without CURVE (security::BindLocal): an ipc:// endpoint in a private directory for
    // the workers the stack starts on its host, who need no encryption; empty: none.
    std::string local_bind;
    std::string results_endpoint;  // the stack's results proxy to connect a PUB to; empty: none
    std::chrono::milliseconds heartbeat{1000};
    // fetch.wait.max.ms of its consumer: how long the broker may hold a fetch that finds nothing.
    // A real broker answers a held fetch as soon as data arrives, so a long wait costs no latency
    // there and spares the broker empty fetches; the embedded (mock) broker holds it for the full
    // wait even when data arrives, so the stack sets 2 ms there. kafka.options overrides both.
    std::chrono::milliseconds fetch_wait_max{100};
    std::size_t max_buffered = 20'000;  // consumed but not done, before partitions are paused
    std::string output_dir;
    // The stack's id (StateDir::StackId): every commit names it (broker/group_lease.hpp), and
    // the dispatcher refuses to start while another stack's lease on the group is fresh. Empty: no
    // lease (a dispatcher run on its own, as in tests).
    std::string stack_id;
    // runnel.yaml's `outputs`: sent in WELCOME, so workers PUT their output files there; absent:
    // they leave them in output_dir.
    std::optional<OutputTarget> outputs;
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
  // Options::local_bind once bound, else Endpoint(): where a worker on this host connects.
  const std::string& LocalEndpoint() const;
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
