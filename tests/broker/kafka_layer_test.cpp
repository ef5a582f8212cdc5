// The Kafka layer against the embedded broker: round trips, commits and lag, errors, and faults
// injected with the mock cluster (broker down, request errors).
#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must come after rdkafka.h.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <librdkafka/rdkafka_mock.h>

#include <map>
#include <set>

#include "runnel/kafka/admin.hpp"
#include "runnel/testing/kafka_cluster.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kApiProduce = 0;
constexpr int kApiFetch = 1;
constexpr int kApiOffsetCommit = 8;

std::vector<kafka::Record> Numbered(const std::string& topic, int count, int keys) {
  std::vector<kafka::Record> out;
  for (int i = 0; i < count; ++i) {
    Envelope env;
    env.id = fmt::format("ev-{}", i);
    out.push_back(
        {topic, kafka::kAnyPartition, fmt::format("k{}", i % keys), std::to_string(i), env.Encode()});
  }
  return out;
}

// Every record exactly once, and per key in production order.
void ExpectExactlyOnceInKeyOrder(const std::vector<kafka::Message>& messages, int count) {
  std::set<int> seen;
  std::map<std::string, int> last_per_key;
  for (const auto& m : messages) {
    const int n = std::stoi(m.value);
    EXPECT_TRUE(seen.insert(n).second) << "duplicate record " << n;
    auto [it, fresh] = last_per_key.try_emplace(*m.key, n);
    if (!fresh) {
      EXPECT_LT(it->second, n) << "key " << *m.key << " out of order";
      it->second = n;
    }
  }
  EXPECT_EQ(static_cast<int>(seen.size()), count);
}

class KafkaLayer : public KafkaCluster {};

TEST_F(KafkaLayer, RoundTripKeepsKeysValuesAndHeaders) {
  const auto topic = MakeTopic(3);
  Envelope env;
  env.id = NewEventId();
  env.content_type = "text/plain";
  env.hop = 2;
  env.extra = {{"x-bin", std::string("\0\x01\xff", 3)}};
  Produce({{topic, kafka::kAnyPartition, "key-1", "hello", env.Encode()},
           {topic, 2, std::nullopt, std::string("\0bin", 4), {}}});
  auto messages = ConsumeAll(topic, 2);
  ASSERT_EQ(messages.size(), 2u);
  std::sort(messages.begin(), messages.end(), [](auto& a, auto& b) { return a.value < b.value; });
  EXPECT_EQ(messages[0].value, std::string("\0bin", 4));
  EXPECT_FALSE(messages[0].key.has_value());
  EXPECT_EQ(messages[0].partition, 2);
  EXPECT_EQ(messages[1].key, "key-1");
  EXPECT_EQ(Envelope::Decode(messages[1].headers), env);
  EXPECT_GT(messages[1].timestamp_ms, 0);
}

TEST_F(KafkaLayer, LagCountsFromLogStartUntilTheGroupCommits) {
  const auto topic = MakeTopic(1);
  Produce(Numbered(topic, 100, 5));
  kafka::Admin admin(Config());
  auto before = admin.Offsets(topic, "g.lag");
  ASSERT_EQ(before.size(), 1u);
  EXPECT_FALSE(before[0].committed.has_value());
  EXPECT_EQ(before[0].Lag(), 100);

  kafka::Consumer consumer(Config(), {"g.lag"});
  consumer.Assign({{topic, 0, kafka::kOffsetStored}});
  int read = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        if (auto m = consumer.Poll(std::chrono::milliseconds(20))) {
          ++read;
          if (read <= 60) consumer.StoreOffset(m->topic, m->partition, m->offset + 1);
        }
        return read == 100;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(0)));
  consumer.Commit();
  auto after = admin.Offsets(topic, "g.lag");
  EXPECT_EQ(after[0].committed, 60);
  EXPECT_EQ(after[0].Lag(), 40);
  EXPECT_EQ(after[0].Lost(), 0);
}

// A quirk worth knowing (docs/embedded-broker.md): the mock answers Metadata only up to v2, which
// has no AllowAutoTopicCreation flag, so any client asking about a missing topic creates it, with
// 4 partitions. If this starts failing, librdkafka changed and the docs must follow.
TEST_F(KafkaLayer, EmbeddedBrokerCreatesTopicsOnFirstMention) {
  kafka::Admin admin(Config());
  EXPECT_EQ(admin.Partitions("mentioned.only").size(), 4u);
}

TEST_F(KafkaLayer, OversizedRecordIsANonRetriableError) {
  const auto topic = MakeTopic(1);
  kafka::Producer producer(Config());
  try {
    producer.Produce({topic, 0, std::nullopt, std::string(2 << 20, 'x'), {}}, {});
    FAIL();
  } catch (const kafka::KafkaError& e) {
    EXPECT_FALSE(e.Retriable());
    EXPECT_THAT(e.what(), HasSubstr("MSG_SIZE_TOO_LARGE"));
  }
}

TEST_F(KafkaLayer, BadOptionsNameTheOption) {
  kafka::KafkaOptions config = Config();
  config.options["no.such.option"] = "1";
  try {
    kafka::Producer producer(config);
    FAIL();
  } catch (const kafka::KafkaConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no.such.option"));
  }
  config = Config();
  config.options["enable.auto.commit"] = "true";
  try {
    kafka::Consumer consumer(config, {"g"});
    FAIL();
  } catch (const kafka::KafkaConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("conflicts with Runnel's guarantees"));
  }
}

// A secret reaches librdkafka (the client is made with it) but never an error: a secret option
// librdkafka refuses is reported by name with its value masked.
TEST_F(KafkaLayer, ASecretIsAppliedAndNeverShownInAnError) {
  kafka::KafkaOptions config = Config();
  config.secrets.emplace("sasl.password", Secret("pa55-applied"));
  EXPECT_NO_THROW(kafka::Producer{config});
  config.secrets.emplace("no.such.secret", Secret("pa55-refused"));
  try {
    kafka::Producer producer(config);
    FAIL();
  } catch (const kafka::KafkaConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no.such.secret=***"));
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("pa55")));
  }
}

TEST_F(KafkaLayer, NothingIsReportedDeliveredWhileTheBrokerIsDown) {
  const auto topic = MakeTopic(2);
  // Metadata first, so the producer knows the partitions before the broker goes away.
  Produce(Numbered(topic, 1, 1));
  kafka::Producer producer(Config());
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  Broker().SetBrokerDown(1);
  for (auto& r : Numbered(topic, 200, 10)) {
    r.value = std::to_string(std::stoi(r.value) + 1);
    producer.Produce(r, [&](const kafka::Delivery& d) { (d.Ok() ? ok : failed).fetch_add(1); });
  }
  // While the broker is down a flush cannot complete: every record stays outstanding.
  EXPECT_EQ(producer.Flush(std::chrono::milliseconds(1500)), 200);
  EXPECT_EQ(ok.load(), 0);
  Broker().SetBrokerUp(1);
  EXPECT_EQ(producer.Flush(std::chrono::seconds(30)), 0);
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(failed.load(), 0);
  ExpectExactlyOnceInKeyOrder(ConsumeAll(topic, 201), 201);
}

TEST_F(KafkaLayer, ProducerRetriesInjectedErrorsWithoutLossOrDuplicates) {
  const auto topic = MakeTopic(2);
  Broker().PushRequestErrors(kApiProduce,
                             {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                              RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS});
  Produce(Numbered(topic, 500, 20));
  ExpectExactlyOnceInKeyOrder(ConsumeAll(topic, 500), 500);
}

TEST_F(KafkaLayer, ConsumerResumesAfterFetchErrorsAndAnOutage) {
  const auto topic = MakeTopic(2);
  Produce(Numbered(topic, 300, 10));
  kafka::Consumer consumer(Config(), {"g.resume"});
  consumer.Assign({{topic, 0, kafka::kOffsetBeginning}, {topic, 1, kafka::kOffsetBeginning}});
  std::vector<kafka::Message> got;
  auto poll_until = [&](std::size_t n) {
    return WaitFor(
        [&] {
          if (auto m = consumer.Poll(std::chrono::milliseconds(20))) got.push_back(std::move(*m));
          return got.size() >= n;
        },
        std::chrono::seconds(30), std::chrono::milliseconds(0));
  };
  ASSERT_TRUE(poll_until(1));
  Broker().PushRequestErrors(
      kApiFetch, {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                  RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT});
  Broker().SetBrokerDown(1);
  Broker().SetBrokerUp(1);
  ASSERT_TRUE(poll_until(300));
  ExpectExactlyOnceInKeyOrder(got, 300);
}

// Reads the whole single-partition topic and stores every offset.
void ReadAndStore(kafka::Consumer& consumer, const std::string& topic, int count) {
  consumer.Assign({{topic, 0, kafka::kOffsetBeginning}});
  int read = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        if (auto m = consumer.Poll(std::chrono::milliseconds(20))) {
          ++read;
          consumer.StoreOffset(m->topic, m->partition, m->offset + 1);
        }
        return read == count;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(0)));
}

TEST_F(KafkaLayer, TransientCommitErrorsAreRetriedUntilTheCommitLands) {
  const auto topic = MakeTopic(1);
  Produce(Numbered(topic, 10, 1));
  kafka::Consumer consumer(Config(), {"g.commit.transient"});
  ReadAndStore(consumer, topic, 10);
  Broker().PushRequestErrors(kApiOffsetCommit, {RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                                                RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT});
  consumer.Commit();
  kafka::Admin admin(Config());
  EXPECT_EQ(admin.Offsets(topic, "g.commit.transient")[0].committed, 10);
}

TEST_F(KafkaLayer, RefusedCommitSurfacesAndNothingIsCommitted) {
  const auto topic = MakeTopic(1);
  Produce(Numbered(topic, 10, 1));
  kafka::Consumer consumer(Config(), {"g.commit.refused"});
  ReadAndStore(consumer, topic, 10);
  Broker().PushRequestErrors(kApiOffsetCommit, {RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED});
  kafka::Admin admin(Config());
  try {
    consumer.CommitOffsets({{topic, 0, 10}});
    FAIL() << "the injected error did not surface";
  } catch (const kafka::KafkaError& e) {
    EXPECT_FALSE(e.Retriable()) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("g.commit.refused"));
  }
  EXPECT_FALSE(admin.Offsets(topic, "g.commit.refused")[0].committed.has_value());
  consumer.CommitOffsets({{topic, 0, 10}});
  EXPECT_EQ(admin.Offsets(topic, "g.commit.refused")[0].committed, 10);
}

}  // namespace
}  // namespace runnel::testing
