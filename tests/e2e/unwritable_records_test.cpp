// Records Kafka refuses for a reason retrying cannot fix (docs/protocol.md §4.5), injected with the
// embedded broker's fault injection into a dispatcher in this process, with real `runnel worker`
// processes: a results topic that refuses records (bounded retries, then a dead letter with the
// reason) and a broker that refuses a result as too large (limit-exceeded). A dead-letter topic that
// refuses records needs no worker: tests/dispatcher/unwritable_records_test.cpp.
#include <gmock/gmock.h>
#include <librdkafka/rdkafka.h>

#include <map>
#include <thread>

#include "runnel/core/envelope.hpp"
#include "runnel/testing/dispatcher_rig.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kApiProduce = 0;
constexpr int kWriteAttempts = 5;  // kRecordWriteAttempts, broker/src/dispatcher_records.cpp

class UnwritableRecords : public DispatcherRig {
 protected:
  UnwritableRecords() : DispatcherRig({.name = "unwritable", .brokers = 2}) {}
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

  const auto letters =
      ReadRecords(broker_.ClientConfig(), spec_.dead_letter_topic, 3, std::chrono::seconds(20));
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
  const auto letters =
      ReadRecords(broker_.ClientConfig(), spec_.dead_letter_topic, 1, std::chrono::seconds(20));
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].value, std::string(5000, 'p')) << "the input, whole";
  EXPECT_TRUE(
      CommittedReachesEnd(broker_.ClientConfig(), spec_.topic, spec_.Group(), std::chrono::seconds(20)));
}

}  // namespace
}  // namespace runnel::testing
