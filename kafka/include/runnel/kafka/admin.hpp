// Topic administration and the lag query: partitions of a topic, and per partition the log start,
// end and committed offsets of a consumer group.
// Thread-safety: every method may be called from any thread (each call has its own result queue).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runnel/kafka/kafka.hpp"

namespace runnel::kafka {

struct PartitionOffsets {
  std::int32_t partition = -1;
  std::int64_t log_start = 0;             // the oldest offset the broker still has
  std::int64_t end = 0;                   // the offset the next record will get (high watermark)
  std::optional<std::int64_t> committed;  // the group's committed offset, if it has one
  std::string committed_metadata;         // the metadata sent with that commit (Runnel's: a lease)

  // Events waiting: from the committed offset (or the log start when there is none, or when the
  // broker dropped records past it) to the end. Never negative.
  std::int64_t Lag() const;
  // Records the group never saw because the log start moved past its committed offset.
  std::int64_t Lost() const;
};

// How a topic is replicated, from metadata: the fewest replicas any of its partitions has, and how
// many brokers the cluster has.
struct TopicReplication {
  int replicas = 0;
  int brokers = 0;
};

// The warning for `topic` (a function's dead-letter or results topic) when it has fewer replicas
// than `input`, the function's input topic; nullopt when it has as many or more.
std::optional<std::string> FewerReplicasWarning(const std::string& topic, int replicas,
                                                const std::string& input, int input_replicas);

class Admin {
 public:
  explicit Admin(const KafkaOptions& config);
  ~Admin();
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  // Creates a topic through the CreateTopics API (real Kafka, Redpanda). Already existing is fine.
  // On librdkafka's mock cluster, which has no CreateTopics, it asks the broker on
  // kTopicRequestsTopic (served by `runnel kafka`, embedded_broker.hpp) and waits until the topic
  // shows in metadata; a mock cluster that takes no requests is a non-retriable KafkaError saying
  // so. In the broker's own process, EmbeddedBroker::CreateTopic is simpler. A replication_factor of
  // -1 is the broker's default (default.replication.factor: 1 on a stock Kafka, whatever its size).
  void CreateTopic(const std::string& topic, int partitions, int replication_factor = -1,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The partition count of an existing topic, nullopt when there is none. Asks for the metadata of
  // all topics, so that a broker with auto.create.topics.enable does not create it by being asked.
  std::optional<int> ExistingPartitionCount(const std::string& topic,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // The replication of an existing topic from metadata; nullopt when there is no such topic.
  std::optional<TopicReplication> Replication(const std::string& topic,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // FewerReplicasWarning for each of `others` (a function's dead-letter and results topics), with the
  // counts metadata shows: a broker lost could then lose dead letters or results of events the input
  // still holds. Topics not found are skipped.
  std::vector<std::string> FewerReplicasThanInput(
      const std::string& input, const std::vector<std::string>& others,
      std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // True when the broker is librdkafka's mock cluster (its cluster id says so), such as `runnel
  // kafka`: an in-memory log with a per-partition cap (RetentionGuard). False when the cluster id
  // does not come within `timeout`.
  bool IsMockCluster(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Partition ids of a topic; throws KafkaError (UNKNOWN_TOPIC_OR_PART) when it does not exist.
  std::vector<std::int32_t> Partitions(const std::string& topic,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Offsets of every partition of `topic` for `group`; an empty group leaves `committed` unset.
  std::vector<PartitionOffsets> Offsets(const std::string& topic, const std::string& group,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  void CreateTopicOnEmbeddedBroker(const std::string& topic, int partitions, int replication_factor,
                                   std::chrono::milliseconds timeout);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::kafka
