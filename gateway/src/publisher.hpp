// Publishes the gateway's events to their functions' topics: one Kafka producer for the gateway
// (with the retention guard on the embedded broker, as `runnel invoke` and the scheduler have), and
// a synchronous send, so a call is answered only once Kafka holds its event. Private to gateway/.
// Thread-safety: Publish from any thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "runnel/core/envelope.hpp"
#include "runnel/kafka/kafka.hpp"

namespace runnel::kafka {
class Producer;
}

namespace runnel::gateway {

class Publisher {
 public:
  // `groups`: topic -> the consumer group reading it (for the retention guard); `in_memory`: the
  // broker keeps its log in memory with a cap (the embedded one, or `runnel kafka`).
  Publisher(const kafka::KafkaOptions& kafka, bool in_memory, std::map<std::string, std::string> groups);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  struct Failure {
    bool too_large = false;  // the record is too large for Kafka: the caller's fault (413)
    std::string message;
  };
  // Produces one event and waits for Kafka's acknowledgement, at most `timeout`.
  std::optional<Failure> Publish(const std::string& topic, const std::optional<std::string>& key,
                                 std::string payload, const Envelope& envelope,
                                 std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<kafka::Producer> producer_;
};

}  // namespace runnel::gateway
