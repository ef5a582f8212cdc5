#include "runnel/testing/kafka_cluster.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>

#include "runnel/testing/stack_process.hpp"

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
  std::vector<kafka::Message> out;
  ReadFromBeginning(
      Config(), topic, "test.consume-all", deadline, 1,
      [&](kafka::Message& m) { out.push_back(std::move(m)); }, [&] { return out.size() >= count; });
  return out;
}

}  // namespace runnel::testing
