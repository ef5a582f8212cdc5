#include "publisher.hpp"

#include "runnel/kafka/producer.hpp"
#include "runnel/kafka/retention_guard.hpp"

namespace runnel::gateway {

Publisher::Publisher(const kafka::KafkaOptions& kafka, bool in_memory,
                     std::map<std::string, std::string> groups) {
  kafka::KafkaOptions config = kafka;
  config.client_id = "runnel-gateway";
  kafka::Producer::Options po;
  const auto topics = groups;
  if (in_memory) {
    po.retention_guard = std::make_shared<kafka::RetentionGuard>(
        config, [groups = std::move(groups)](const std::string& topic) {
          std::vector<std::string> out;
          if (auto it = groups.find(topic); it != groups.end()) out.push_back(it->second);
          return out;
        });
  }
  producer_ = std::make_unique<kafka::Producer>(config, po);
  for (const auto& [topic, group] : topics) producer_->Prepare(topic);
}

Publisher::~Publisher() = default;

std::optional<Publisher::Failure> Publisher::Publish(const std::string& topic,
                                                     const std::optional<std::string>& key,
                                                     std::string payload, const Envelope& envelope,
                                                     std::chrono::milliseconds timeout) {
  try {
    producer_->ProduceSync({topic, kafka::kAnyPartition, key, std::move(payload), envelope.Encode()},
                           std::max(timeout, std::chrono::milliseconds(1)));
    return std::nullopt;
  } catch (const kafka::KafkaError& e) {
    return Failure{kafka::IsRecordTooLarge(e.Code()), e.what()};
  } catch (const std::exception& e) {
    return Failure{false, e.what()};
  }
}

}  // namespace runnel::gateway
