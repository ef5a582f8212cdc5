// The embedded Kafka broker: librdkafka's mock cluster, a Kafka-protocol broker that keeps topics in
// memory and listens on 127.0.0.1 (an ephemeral port), so any Kafka client can use it.
//
// What it keeps and drops (librdkafka 2.0.2): nothing survives a restart. Each partition keeps at
// most kMockMaxBatches record batches or kMockMaxBytes bytes (retention_guard.hpp); past that the
// oldest batches are dropped, consumed or not. Topics a client creates implicitly (producing to an
// unknown topic) get 4 partitions. CreateTopics is not implemented (the mock's Metadata names
// controller 0, which is no broker, so an admin client waits for a controller until it times out):
// in this process use CreateTopic; clients elsewhere ask through kTopicRequestsTopic when the
// broker serves it (ServeTopicRequests, what `runnel kafka` does), which Admin::CreateTopic does.
//
// Thread-safety: all methods may be called from any thread; the broker runs on its own thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runnel/kafka/kafka.hpp"

// The raw mock handle, for tests that inject faults with rdkafka_mock.h.
typedef struct rd_kafka_mock_cluster_s rd_kafka_mock_cluster_t;

namespace runnel::kafka {

// The topic through which clients in other processes ask the embedded broker for a topic: a record
// whose value is {"topic": NAME, "partitions": N} and optionally "replication_factor": R
// (docs/protocol.md §5). One partition.
inline constexpr const char* kTopicRequestsTopic = "_runnel.create-topics";

// The cluster id prefix of librdkafka's mock cluster ("mockCluster<hex>"), how a client knows it
// talks to one.
inline constexpr const char* kMockClusterIdPrefix = "mockCluster";

// The most replicas runnel.yaml and a topic request may ask for.
inline constexpr int kMaxReplicationFactor = 32;

// True for a topic name Kafka accepts: 1..249 of [A-Za-z0-9._-], not "." or "..".
bool IsValidTopicName(const std::string& name);

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
  KafkaOptions ClientConfig() const { return KafkaOptions{bootstrap_, "runnel", {}}; }

  // Creates a topic with `partitions` partitions of `replication_factor` replicas (at most the
  // broker count); an existing topic is left as it is.
  void CreateTopic(const std::string& topic, int partitions, int replication_factor = 1);

  // Creates kTopicRequestsTopic and, on a thread of its own until the broker is destroyed, every
  // topic asked for on it (an existing topic is left as it is; a malformed request is logged and
  // skipped). For `runnel kafka`, whose clients live in other processes.
  void ServeTopicRequests();

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

}  // namespace runnel::kafka
