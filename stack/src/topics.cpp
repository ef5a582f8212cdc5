#include "topics.hpp"

#include <optional>
#include <string>

#include "runnel/core/log.hpp"
#include "runnel/kafka/admin.hpp"

namespace runnel::stack {
namespace {

// A topic on an external Kafka: used as it is when it exists (created beforehand, e.g. where Runnel
// may not create topics, or on a broker without the CreateTopics API), else created through
// CreateTopics. A partition count other than the config's is used as it is, with a warning.
void EnsureTopic(const kafka::KafkaOptions& kafka, const std::string& topic, int partitions,
                 std::optional<int> replication_factor) {
  kafka::Admin admin(kafka);
  if (const auto existing = admin.ExistingPartitionCount(topic)) {
    if (*existing != partitions) {
      log::kCli->warn("topic {} exists with {} partition(s), not {}: using it as it is", topic, *existing,
                      partitions);
    }
    return;
  }
  admin.CreateTopic(topic, partitions, replication_factor.value_or(-1));
  // -1 is the broker's default.replication.factor, 1 on a stock Kafka of any size: say so.
  if (const auto r = admin.Replication(topic); r && !replication_factor && r->replicas < r->brokers) {
    log::kCli->warn(
        "topic {} was created with {} replica(s) (the broker's default) on a cluster of {} brokers; set "
        "replication_factor in runnel.yaml for more",
        topic, r->replicas, r->brokers);
  }
}

}  // namespace

void CreateTopics(const StackConfig& config, kafka::EmbeddedBroker* embedded,
                  const kafka::KafkaOptions& kafka) {
  for (const auto& f : config.functions) {
    for (const auto& topic : {f.topic, f.dead_letter_topic, f.results_topic}) {
      if (topic.empty()) continue;
      if (embedded) {
        embedded->CreateTopic(topic, f.partitions, f.replication_factor.value_or(1));
      } else {
        EnsureTopic(kafka, topic, f.partitions, f.replication_factor);
      }
    }
    for (const auto& warning :
         kafka::Admin(kafka).FewerReplicasThanInput(f.topic, {f.dead_letter_topic, f.results_topic})) {
      log::kCli->warn("function {}: {}", f.name, warning);
    }
  }
}

}  // namespace runnel::stack
