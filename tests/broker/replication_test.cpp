// Replicas of the topics Runnel creates: CreateTopic asked for -1 only, which a stock Kafka turns
// into its default.replication.factor (1) without a word, whatever the cluster's size. runnel.yaml's
// replication_factor reaches the broker (here through the topic requests `runnel kafka` serves),
// replica counts are read back from metadata, and a dead-letter or results topic with fewer
// replicas than its function's input topic is reported.
//
// librdkafka 2.0.2's mock cluster gives every topic min(3, brokers) replicas whatever is asked
// (rd_kafka_mock_topic_create ignores its replication_factor), so one mock cannot hold topics with
// different counts: the warning for 3 against 1 is checked on the counts themselves.
#include <gmock/gmock.h>

#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/embedded_broker.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

TEST(Replication, MetadataShowsThreeReplicasOnThreeBrokers) {
  kafka::EmbeddedBroker broker(kafka::EmbeddedBroker::Options{3});
  broker.ServeTopicRequests();
  kafka::Admin admin(broker.ClientConfig());
  admin.CreateTopic("three.replicas", 4, 3);
  const auto r = admin.Replication("three.replicas");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->replicas, 3);
  EXPECT_EQ(r->brokers, 3);
  EXPECT_FALSE(admin.Replication("no.such.topic").has_value());
  // Input, dead-letter and results topics alike: nothing to report.
  admin.CreateTopic("orders", 4, 3);
  admin.CreateTopic("orders.dlq", 4, 3);
  EXPECT_TRUE(admin.FewerReplicasThanInput("orders", {"orders.dlq", "", "orders.results.missing"}).empty());
}

TEST(Replication, MetadataShowsOneReplicaOnOneBroker) {
  kafka::EmbeddedBroker broker;
  broker.ServeTopicRequests();
  kafka::Admin admin(broker.ClientConfig());
  admin.CreateTopic("one.replica", 2);  // -1: the broker's default
  const auto r = admin.Replication("one.replica");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->replicas, 1);
  EXPECT_EQ(r->brokers, 1);
}

TEST(Replication, ADeadLetterTopicWithFewerReplicasThanItsInputIsReported) {
  const auto warning = kafka::FewerReplicasWarning("orders.dlq", 1, "orders", 3);
  ASSERT_TRUE(warning.has_value());
  EXPECT_THAT(
      *warning,
      HasSubstr("topic orders.dlq has 1 replica(s), fewer than its function's input topic orders (3)"));
  EXPECT_THAT(*warning, HasSubstr("set replication_factor in runnel.yaml"));
  EXPECT_FALSE(kafka::FewerReplicasWarning("orders.results", 3, "orders", 3).has_value());
  EXPECT_FALSE(kafka::FewerReplicasWarning("orders.results", 5, "orders", 3).has_value());
}

}  // namespace
}  // namespace runnel::testing
