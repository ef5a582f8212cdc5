// The embedded Kafka broker: librdkafka's mock cluster, a Kafka-protocol broker that keeps topics in
// memory and listens on 127.0.0.1 (an ephemeral port), so any Kafka client can use it.
//
// What it keeps and drops (librdkafka 2.0.2): nothing survives a restart. Each partition keeps at
// most kMockMaxBatches record batches or kMockMaxBytes bytes (retention_guard.hpp); past that the
// oldest batches are dropped, consumed or not. Topics a client creates implicitly (producing to an
// unknown topic) get 4 partitions; CreateTopics is not implemented, so use CreateTopic here.
//
// Thread-safety: all methods may be called from any thread; the broker runs on its own thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runnel/broker/kafka.hpp"

// The raw mock handle, for tests that inject faults with rdkafka_mock.h.
typedef struct rd_kafka_mock_cluster_s rd_kafka_mock_cluster_t;

namespace runnel::broker {

class EmbeddedBroker {
 public:
  struct Options {
    int brokers = 1;
  };

  explicit EmbeddedBroker(Options options);
  EmbeddedBroker() : EmbeddedBroker(Options{}) {}
  ~EmbeddedBroker();
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  // host:port[,host:port...] for bootstrap.servers.
  const std::string& Bootstrap() const { return bootstrap_; }
  KafkaConfig ClientConfig() const { return KafkaConfig{bootstrap_, "runnel", {}}; }

  // Creates a topic with `partitions` partitions; an existing topic is left as it is.
  void CreateTopic(const std::string& topic, int partitions);

  // Fault injection.
  void SetBrokerDown(int broker_id);
  void SetBrokerUp(int broker_id);
  // The next requests of this API key (e.g. 8 OffsetCommit, 1 Fetch) fail with these codes, in order.
  void PushRequestErrors(int api_key, const std::vector<int>& errors);
  rd_kafka_mock_cluster_t* Mock() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string bootstrap_;
};

}  // namespace runnel::broker
