// Topics for clients of the embedded broker in other processes: librdkafka's mock cluster has no
// CreateTopics, so Admin::CreateTopic asks on kTopicRequestsTopic, which the broker serves when told
// to (`runnel kafka` does), and says clearly when it talks to a mock that serves no requests.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/embedded_broker.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

TEST(TopicRequests, AdminCreatesATopicWithItsPartitionsOnABrokerThatServesRequests) {
  kafka::EmbeddedBroker broker;
  broker.ServeTopicRequests();
  kafka::Admin admin(broker.ClientConfig());
  // On today's main this waited for a controller the mock never names, then timed out.
  admin.CreateTopic("made.by.request", 5);
  EXPECT_EQ(admin.Partitions("made.by.request").size(), 5u);
  // Asking again for a topic that exists (here with another count) leaves it as it is.
  broker.CreateTopic("made.beforehand", 2);
  admin.CreateTopic("made.beforehand", 6);
  EXPECT_EQ(admin.Partitions("made.beforehand").size(), 2u);
}

TEST(TopicRequests, AdminOnAMockThatServesNoRequestsSaysWhatToDoInsteadOfTimingOut) {
  kafka::EmbeddedBroker broker;  // no ServeTopicRequests: any librdkafka mock cluster
  kafka::Admin admin(broker.ClientConfig());
  try {
    admin.CreateTopic("nobody.makes.this", 3);
    ADD_FAILURE() << "CreateTopic succeeded on a mock cluster that takes no topic requests";
  } catch (const kafka::KafkaError& e) {
    EXPECT_THAT(e.what(), HasSubstr("mock cluster, which has no CreateTopics"));
    EXPECT_THAT(e.what(), HasSubstr("runnel kafka"));
    EXPECT_FALSE(e.Retriable()) << e.what();
  }
  EXPECT_FALSE(admin.ExistingPartitionCount("nobody.makes.this").has_value());
}

TEST(TopicRequests, MalformedRequestsAreRefusedAndTheBrokerServesTheNextOne) {
  kafka::EmbeddedBroker broker;
  broker.ServeTopicRequests();
  const std::vector<std::string> hostile = {
      "",
      "not json",
      "[1,2]",
      std::string("\xff\xfe\x00\x01", 4),
      R"({"topic":"\u00e9t\u00e9","partitions":1})",
      R"({"topic":5,"partitions":1})",
      R"({"topic":"has space","partitions":1})",
      R"({"topic":"..","partitions":1})",
      R"({"topic":"zero.partitions","partitions":0})",
      R"({"topic":"too.many","partitions":20000})",
      R"({"topic":"huge.count","partitions":99999999999999})",
      R"({"topic":"string.count","partitions":"3"})",
      R"({"topic":"float.count","partitions":2.5})",
      R"({"partitions":3})",
      R"({"topic":"zero.replicas","partitions":1,"replication_factor":0})",
      R"({"topic":"text.replicas","partitions":1,"replication_factor":"3"})",
      std::string(200'000, '{'),
  };
  {
    kafka::Producer producer(broker.ClientConfig());
    for (const auto& value : hostile)
      producer.ProduceSync({kafka::kTopicRequestsTopic, 0, std::nullopt, value, {}});
  }
  kafka::Admin admin(broker.ClientConfig());
  admin.CreateTopic("valid.after.hostile", 3);  // served after every hostile record before it
  EXPECT_EQ(admin.Partitions("valid.after.hostile").size(), 3u);
  for (const auto* topic : {"has space", "..", "zero.partitions", "too.many", "huge.count", "string.count",
                            "float.count", "zero.replicas", "text.replicas"}) {
    EXPECT_FALSE(admin.ExistingPartitionCount(topic).has_value()) << topic << " was created";
  }
}

}  // namespace
}  // namespace runnel::testing
