// The stack's topics: every function's input, dead-letter and results topic.
#pragma once

#include "runnel/core/config.hpp"
#include "runnel/kafka/embedded_broker.hpp"
#include "runnel/kafka/kafka.hpp"

namespace runnel::stack {

// Creates every function's topics on the embedded broker (when `embedded` is given), else on the
// Kafka `kafka` names (an existing topic is used as it is). Warns when a dead-letter or results
// topic has fewer replicas than the function's input topic.
void CreateTopics(const StackConfig& config, kafka::EmbeddedBroker* embedded,
                  const kafka::KafkaOptions& kafka);

}  // namespace runnel::stack
