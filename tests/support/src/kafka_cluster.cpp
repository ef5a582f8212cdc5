#include "runnel/testing/kafka_cluster.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>

namespace runnel::testing {

std::unique_ptr<kafka::EmbeddedBroker> KafkaCluster::broker_;

void KafkaCluster::SetUpTestSuite() { broker_ = std::make_unique<kafka::EmbeddedBroker>(); }

void KafkaCluster::TearDownTestSuite() { broker_.reset(); }

std::string KafkaCluster::MakeTopic(int partitions) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = fmt::format("{}.{}.{}", info->test_suite_name(), info->name(), topics_made_++);
  std::replace(name.begin(), name.end(), '/', '.');
  broker_->CreateTopic(name, partitions);
  return name;
}

void KafkaCluster::Produce(const std::vector<kafka::Record>& records) {
  kafka::Producer producer(Config());
  std::atomic<int> failed{0};
  for (const auto& record : records) {
    producer.Produce(record, [&failed](const kafka::Delivery& d) {
      if (!d.Ok()) failed.fetch_add(1);
    });
  }
  ASSERT_EQ(producer.Flush(std::chrono::seconds(30)), 0) << "records left undelivered";
  ASSERT_EQ(failed.load(), 0) << "records failed delivery";
}

std::vector<kafka::Message> KafkaCluster::ConsumeAll(const std::string& topic, std::size_t count,
                                                     std::chrono::milliseconds deadline) {
  kafka::Admin admin(Config());
  kafka::Consumer consumer(Config(), kafka::Consumer::Options{"test.consume-all"});
  std::vector<kafka::TopicPartitionOffset> partitions;
  for (auto p : admin.Partitions(topic)) partitions.push_back({topic, p, kafka::kOffsetBeginning});
  consumer.Assign(partitions);
  std::vector<kafka::Message> out;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (out.size() < count && std::chrono::steady_clock::now() < until) {
    if (auto msg = consumer.Poll(std::chrono::milliseconds(50))) out.push_back(std::move(*msg));
  }
  return out;
}

}  // namespace runnel::testing
