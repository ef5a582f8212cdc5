// The scaling loop: per function, measures (dispatcher stats every tick, Kafka offsets every
// lag interval, rates as moving averages), asks the policy for a worker count, and starts or stops
// workers through a backend to match it. Status() is its view as JSON for other threads (the
// stack's control socket, the metrics endpoint), refreshed every tick; FreshStatus() asks for one
// made now.
//
// Wake from zero: a dispatcher calls the function's wake callback (Waker) the moment an event
// arrives with no worker connected; that wakes the loop at once through an eventfd, so the first
// worker is starting within milliseconds instead of on the next tick.
//
// Thread-safety: Add/Connect before Start, from one thread. The Waker may be called from any
// thread at any time while the Autoscaler lives. Between Start and Stop the loop's thread owns the
// backend; the caller may use it again after Stop (e.g. StopAll). The destructor stops the loop
// (it does not stop workers).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "runnel/autoscaler/backend.hpp"
#include "runnel/broker/dispatcher_stats.hpp"
#include "runnel/core/config.hpp"
#include "runnel/core/protocol_errors.hpp"
#include "runnel/kafka/kafka.hpp"

namespace runnel::autoscaler {

class Autoscaler {
 public:
  struct Options {
    WorkerBackend* backend = nullptr;  // must outlive the autoscaler
    kafka::KafkaOptions kafka;         // where the lag is read
    // This stack's id in the leases its dispatchers commit (StateDir::StackId): the status's
    // `stacks` marks its own entry `self` (broker/group_lease.hpp).
    std::string stack_id = {};
    std::chrono::milliseconds tick{100};
    std::chrono::milliseconds lag_interval{1000};
    // Every socket's bad messages: the status lists their counts (`protocol_errors`), read when
    // it is asked for. Null: an empty count of its own.
    std::shared_ptr<ProtocolErrors> protocol_errors = nullptr;
    // Called on the loop's thread, once, when a fault ends the loop (the reason as text). The
    // loop starts and stops no worker after it and its status ages; the stack is expected to
    // stop (runnel up exits).
    std::function<void(const std::string& reason)> on_failure = nullptr;
    // The health of the stack's components, added to every status as "components" (a JSON array
    // of {"name", "up", "reason"}); optional, thread-safe.
    std::function<nlohmann::json()> components = nullptr;
    // The sockets' security, added to every status as "security" ({"curve": bool, "refused":
    // [{"socket", "reason", "count"}]}); optional, thread-safe.
    std::function<nlohmann::json()> security = nullptr;
  };
  using Waker = std::function<void()>;

  explicit Autoscaler(Options options);
  ~Autoscaler();
  Autoscaler(const Autoscaler&) = delete;
  Autoscaler& operator=(const Autoscaler&) = delete;

  // Registers a function; the returned callback wakes the loop for it (give it to the dispatcher
  // as Options::on_event_without_workers).
  Waker Add(const FunctionSpec& spec);
  // Where the function's workers connect, and how to read its dispatcher's stats.
  void Connect(const std::string& function, std::string dispatcher_endpoint,
               std::function<broker::DispatcherStats()> stats);
  // The status JSON as of the last tick; {"functions": []} before the first. "age_ms" says how old
  // it is; "protocol_errors", "components" and "security" are read now. Thread-safe.
  nlohmann::json Status() const;
  // A status made now by the loop (age 0), or, when the loop does not make one within `within` (it
  // is reading the lag from Kafka, or it failed), Status() with its age. Thread-safe; blocks at
  // most `within`.
  nlohmann::json FreshStatus(std::chrono::milliseconds within);
  void Start();
  void Stop();

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace runnel::autoscaler
