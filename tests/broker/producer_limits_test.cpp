// Records Kafka refuses, at the producer: too large for message.max.bytes (refused at once, as a
// value, never a crash), too large for the broker and a topic that refuses writes (in delivery
// reports, injected with the mock cluster), and which of those a retry can fix.
#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must come after rdkafka.h.
#include <gmock/gmock.h>
#include <librdkafka/rdkafka_mock.h>

#include <future>

#include "runnel/kafka/record_limits.hpp"
#include "runnel/testing/kafka_cluster.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kApiProduce = 0;

class ProducerLimits : public KafkaCluster {
 protected:
  // The delivery report of one record, or its refusal at once.
  static kafka::Delivery Write(kafka::Producer& producer, kafka::Record record) {
    auto promise = std::make_shared<std::promise<kafka::Delivery>>();
    auto future = promise->get_future();
    if (auto refused = producer.TryProduce(std::move(record),
                                           [promise](const kafka::Delivery& d) { promise->set_value(d); })) {
      return *refused;
    }
    EXPECT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready) << "no delivery report";
    return future.get();
  }
};

TEST_F(ProducerLimits, ARecordOverMessageMaxBytesIsRefusedAtOnceAndTheLimitIsExactlyLibrdkafkas) {
  const std::string topic = MakeTopic(1);
  kafka::KafkaOptions config = Config();
  config.options["message.max.bytes"] = "10000";
  kafka::Producer producer(config);
  EXPECT_EQ(producer.MaxMessageBytes(), 10'000u);

  kafka::Record record{
      topic, 0, std::string("k"), "", {{"runnel-id", "a"}, {"x-big", std::string(300, 'h')}}};
  record.value.assign(10'000 - kafka::RecordWireSize(record), 'v');
  ASSERT_EQ(kafka::RecordWireSize(record), 10'000u);
  EXPECT_TRUE(Write(producer, record).Ok()) << "a record of exactly message.max.bytes is accepted";

  record.value.push_back('v');
  const kafka::Delivery refused = Write(producer, record);
  EXPECT_EQ(refused.error, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  EXPECT_EQ(refused.topic, topic);
  EXPECT_THAT(refused.error_message, HasSubstr("the record is 10001 bytes, over message.max.bytes 10000"));
  EXPECT_TRUE(kafka::IsRecordTooLarge(refused.error));
  EXPECT_FALSE(kafka::IsRetriableDelivery(refused.error));
  try {
    producer.Produce(record, {});
    ADD_FAILURE() << "Produce accepted a record over message.max.bytes";
  } catch (const kafka::KafkaError& e) {
    EXPECT_FALSE(e.Retriable());
    EXPECT_THAT(e.what(),
                HasSubstr("producing a record of 10001 bytes to " + topic + " (message.max.bytes 10000)"));
  }
  // The report's callback runs before the producer counts the record as done.
  EXPECT_TRUE(WaitFor([&] { return producer.Outstanding() == 0; }, std::chrono::seconds(5)));
}

TEST_F(ProducerLimits, RunnelsDefaultTakesAOneMebibytePayloadWithItsHeaders) {
  const std::string topic = MakeTopic(1);
  kafka::Producer producer(Config());
  EXPECT_EQ(producer.MaxMessageBytes(), kafka::kDefaultMessageMaxBytes);
  kafka::Record record{
      topic, 0, std::nullopt, std::string(1 << 20, 'v'), {{"runnel-error", std::string(4000, 'e')}}};
  EXPECT_TRUE(Write(producer, record).Ok()) << "librdkafka's own default (1,000,000) would refuse it";
}

TEST_F(ProducerLimits, ABrokerThatRefusesARecordAsTooLargeSaysSoInItsDeliveryReport) {
  const std::string topic = MakeTopic(1);
  kafka::Producer producer(Config());
  ASSERT_TRUE(Write(producer, {topic, 0, std::nullopt, "warm-up", {}}).Ok());
  Broker().PushRequestErrors(kApiProduce, {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE});
  const kafka::Delivery d = Write(producer, {topic, 0, std::nullopt, "refused", {}});
  EXPECT_EQ(d.error, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  EXPECT_THAT(d.error_message, HasSubstr("MSG_SIZE_TOO_LARGE"));
  EXPECT_TRUE(kafka::IsRecordTooLarge(d.error));
  EXPECT_TRUE(Write(producer, {topic, 0, std::nullopt, "after", {}}).Ok()) << "the producer goes on";
}

TEST_F(ProducerLimits, ATopicThatRefusesWritesFailsInTheReportThenAtOnceAndIsNotRetriable) {
  const std::string topic = MakeTopic(1);
  kafka::Producer producer(Config());
  ASSERT_TRUE(Write(producer, {topic, kafka::kAnyPartition, std::nullopt, "warm-up", {}}).Ok());
  Broker().PushRequestErrors(kApiProduce, {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED});
  const kafka::Delivery first = Write(producer, {topic, kafka::kAnyPartition, std::nullopt, "a", {}});
  EXPECT_EQ(first.error, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) << first.error_message;
  EXPECT_THAT(first.error_message, HasSubstr("TOPIC_AUTHORIZATION_FAILED"));
  EXPECT_FALSE(kafka::IsRetriableDelivery(first.error));
  // librdkafka marks the topic as failed: the next record is refused at once, without a throw.
  const auto second = producer.TryProduce({topic, kafka::kAnyPartition, std::nullopt, "b", {}}, {});
  ASSERT_TRUE(second.has_value()) << "queued instead of refused";
  EXPECT_EQ(second->error, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) << second->error_message;
  EXPECT_EQ(second->topic, topic);
  // The report's callback runs before the producer counts the record as done.
  EXPECT_TRUE(WaitFor([&] { return producer.Outstanding() == 0; }, std::chrono::seconds(5)));
}

TEST(DeliveryErrors, OnlyWhatMayPassIsRetriable) {
  for (int code :
       {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION}) {
    EXPECT_TRUE(kafka::IsRetriableDelivery(code))
        << rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(code));
  }
  for (int code :
       {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
        RD_KAFKA_RESP_ERR_INVALID_RECORD, RD_KAFKA_RESP_ERR__FATAL, RD_KAFKA_RESP_ERR_POLICY_VIOLATION}) {
    EXPECT_FALSE(kafka::IsRetriableDelivery(code))
        << rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(code));
  }
}

}  // namespace
}  // namespace runnel::testing
