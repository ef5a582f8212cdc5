// Records Kafka refuses for a reason retrying cannot fix (docs/protocol.md §4.5), injected with the
// embedded broker's fault injection into a dispatcher in this process, with real `runnel worker`
// processes: a results topic that refuses records (bounded retries, then a dead letter with the
// reason) and a broker that refuses a result as too large (limit-exceeded). A dead-letter topic that
// refuses records needs no worker: tests/dispatcher/unwritable_records_test.cpp.
#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must come after rdkafka.h.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <librdkafka/rdkafka_mock.h>

#include <map>
#include <thread>
#include <zmq.hpp>

#include "runnel/autoscaler/local_backend.hpp"
#include "runnel/broker/dispatcher.hpp"
#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/kafka/embedded_broker.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kApiProduce = 0;
constexpr int kWriteAttempts = 5;  // kRecordWriteAttempts, broker/src/dispatcher_records.cpp

std::string HeaderValue(const kafka::Message& m, std::string_view name) {
  for (const Header& h : m.headers) {
    if (h.name == name) return h.value;
  }
  return "(none)";
}

// Every record of `topic` from the beginning until `count` arrived or the deadline passed.
std::vector<kafka::Message> ReadAll(const kafka::KafkaOptions& kafka, const std::string& topic,
                                    std::size_t count, std::chrono::milliseconds deadline) {
  kafka::Admin admin(kafka);
  kafka::Consumer consumer(kafka, kafka::Consumer::Options{"e2e.read-all"});
  std::vector<kafka::TopicPartitionOffset> partitions;
  for (auto p : admin.Partitions(topic)) partitions.push_back({topic, p, kafka::kOffsetBeginning});
  consumer.Assign(partitions);
  std::vector<kafka::Message> out;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (out.size() < count && std::chrono::steady_clock::now() < until) {
    for (auto& m : consumer.PollBatch(100, std::chrono::milliseconds(50))) out.push_back(std::move(m));
  }
  return out;
}

class UnwritableRecords : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("unwritable");
    spec_.name = "echo";
    spec_.handler = "builtin:echo";
    spec_.topic = "unwritable.in";
    spec_.dead_letter_topic = "unwritable.in.dlq";
    spec_.results_topic = "unwritable.results";
    for (const auto& t : {spec_.topic, spec_.dead_letter_topic, spec_.results_topic}) {
      broker_.CreateTopic(t, 1);
      ASSERT_EQ(rd_kafka_mock_partition_set_leader(broker_.Mock(), t.c_str(), 0, 1),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
  }
  void TearDown() override {
    workers_.reset();
    dispatcher_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartDispatcher() {
    broker::Dispatcher::Options o;
    o.spec = spec_;
    o.kafka = broker_.ClientConfig();
    o.zmq = &zmq_;
    o.heartbeat = std::chrono::milliseconds(200);
    o.output_dir = (dir_ / "outputs").string();
    dispatcher_ = std::make_unique<broker::Dispatcher>(o);
    dispatcher_->Start();
    workers_ = std::make_unique<autoscaler::LocalProcessBackend>(autoscaler::WorkerCommand(RunnelBin()),
                                                                 dir_ / "logs");
  }
  void StartWorker() { workers_->Start("echo", dispatcher_->Endpoint()); }
  // Every Produce request to broker 2 fails with TOPIC_AUTHORIZATION_FAILED (as a denied ACL does)
  // for the rest of the test, and `topic` is led by broker 2 (the others by broker 1).
  void RefuseWrites(const std::string& topic) {
    ASSERT_EQ(rd_kafka_mock_partition_set_leader(broker_.Mock(), topic.c_str(), 0, kRefusing),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < kInjected; ++i) {
      ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(broker_.Mock(), kRefusing, kApiProduce, 1,
                                                             RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 0),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
  }
  // Produce requests broker 2 has refused so far.
  int RefusedRequests() {
    std::size_t left = 0;
    EXPECT_EQ(rd_kafka_mock_broker_error_stack_cnt(broker_.Mock(), kRefusing, kApiProduce, &left),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    return kInjected - static_cast<int>(left);
  }
  static constexpr int kRefusing = 2;
  static constexpr int kInjected = 1000;

  std::filesystem::path dir_;
  kafka::EmbeddedBroker broker_{kafka::EmbeddedBroker::Options{2}};
  zmq::context_t zmq_{1};
  FunctionSpec spec_;
  std::unique_ptr<broker::Dispatcher> dispatcher_;
  std::unique_ptr<autoscaler::LocalProcessBackend> workers_;
};

// Today a refused results record is produced again at once, forever; the second try is refused
// synchronously and throws, which ends the dispatcher's thread.
TEST_F(UnwritableRecords, AResultsTopicThatRefusesRecordsDeadLettersEachEventAfterBoundedRetries) {
  RefuseWrites(spec_.results_topic);
  StartDispatcher();
  StartWorker();
  const auto ids = PublishEvents(broker_.ClientConfig(), spec_.topic,
                                 {{"a", std::nullopt}, {"b", std::nullopt}, {"c", "k"}});
  ASSERT_TRUE(WaitFor([&] { return dispatcher_->Stats().dead_lettered >= 3; }, std::chrono::seconds(60)))
      << "dead-lettered: " << dispatcher_->Stats().dead_lettered;
  const auto stats = dispatcher_->Stats();
  EXPECT_EQ(stats.succeeded, 0);
  EXPECT_EQ(stats.dead_lettered, 3);
  EXPECT_EQ(stats.records_refused, 3 * kWriteAttempts)
      << "each results record tried exactly the documented times";
  EXPECT_FALSE(stats.blocked);

  const auto letters = ReadAll(broker_.ClientConfig(), spec_.dead_letter_topic, 3, std::chrono::seconds(20));
  ASSERT_EQ(letters.size(), 3u);
  std::map<std::string, kafka::Message> by_id;
  for (const auto& m : letters) by_id[HeaderValue(m, header::kId)] = m;
  for (const auto& id : ids) {
    ASSERT_TRUE(by_id.contains(id)) << "no dead letter for " << id;
    const auto& m = by_id[id];
    EXPECT_EQ(HeaderValue(m, "runnel-error-kind"), "write-failed");
    EXPECT_THAT(HeaderValue(m, "runnel-error"),
                HasSubstr("results topic unwritable.results refused its record on 5 attempts: Broker: Topic "
                          "authorization failed (TOPIC_AUTHORIZATION_FAILED)"));
  }
  EXPECT_TRUE(
      CommittedReachesEnd(broker_.ClientConfig(), spec_.topic, spec_.Group(), std::chrono::seconds(20)))
      << "the partition goes on";
  // Nothing is tried again after the outcome: no more records refused, no more requests sent.
  const auto refused = dispatcher_->Stats().records_refused;
  const int requests = RefusedRequests();
  EXPECT_GE(requests, 1);
  EXPECT_LE(requests, 3 * kWriteAttempts);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the observation window: nothing may happen in it
  EXPECT_EQ(dispatcher_->Stats().records_refused, refused);
  EXPECT_EQ(RefusedRequests(), requests);
}

// A broker whose limit is below the producer's refuses a result in its delivery report: the event
// fails with limit-exceeded (naming the size), its dead letter and error outcome are written.
TEST_F(UnwritableRecords, AResultTheBrokerRefusesAsTooLargeFailsItsEventWithLimitExceeded) {
  StartDispatcher();
  const auto ids =
      PublishEvents(broker_.ClientConfig(), spec_.topic, {{std::string(5000, 'p'), std::nullopt}});
  // The next Produce request (the dispatcher's results record: no worker ran anything yet) fails.
  broker_.PushRequestErrors(kApiProduce, {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE});
  StartWorker();
  ASSERT_TRUE(WaitFor([&] { return dispatcher_->Stats().errors >= 1; }, std::chrono::seconds(30)));
  const auto outcomes =
      ReadOutcomes(broker_.ClientConfig(), spec_.results_topic, 1, std::chrono::seconds(20));
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].id, ids[0]);
  EXPECT_EQ(outcomes[0].status, OutcomeStatus::kError);
  EXPECT_EQ(outcomes[0].error_kind, "limit-exceeded");
  EXPECT_THAT(outcomes[0].error, HasSubstr("its record for results topic unwritable.results is"));
  EXPECT_THAT(outcomes[0].error,
              HasSubstr("too large to write: Broker: Message size too large (MSG_SIZE_TOO_LARGE)"));
  const auto letters = ReadAll(broker_.ClientConfig(), spec_.dead_letter_topic, 1, std::chrono::seconds(20));
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].value, std::string(5000, 'p')) << "the input, whole";
  EXPECT_TRUE(
      CommittedReachesEnd(broker_.ClientConfig(), spec_.topic, spec_.Group(), std::chrono::seconds(20)));
}

}  // namespace
}  // namespace runnel::testing
