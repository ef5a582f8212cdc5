// The dispatcher under broker faults, in this process so the embedded broker's fault injection can
// reach it, with real `runnel worker` processes over ZeroMQ and real Kafka clients over TCP. What
// needs no worker process (a scripted worker, a fetch error) is in tests/dispatcher.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <librdkafka/rdkafka.h>

#include <fstream>
#include <map>
#include <thread>

#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/consumer.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/dispatcher_rig.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

constexpr int kApiFetch = 1;
constexpr int kApiOffsetCommit = 8;

// StartDispatcher(n) starts n `runnel worker` processes with the dispatcher.
class DispatcherFaults : public DispatcherRig {
 protected:
  DispatcherFaults() : DispatcherRig({.name = "faults", .partitions = 2}) {}
};

TEST_F(DispatcherFaults, BrokerDownAndInjectedErrorsLoseNothing) {
  StartDispatcher(2);
  std::vector<std::pair<std::string, std::optional<std::string>>> events;
  for (int i = 0; i < 2000; ++i) events.emplace_back(std::to_string(i), fmt::format("k{}", i % 50));
  const auto ids = PublishEvents(broker_.ClientConfig(), spec_.topic, events);
  ASSERT_TRUE(WaitFor([&] { return dispatcher_->Stats().succeeded >= 100; }, std::chrono::seconds(30)));

  broker_.SetBrokerDown(1);
  std::this_thread::sleep_for(std::chrono::seconds(5));  // the fault itself: five seconds of outage
  broker_.SetBrokerUp(1);
  broker_.PushRequestErrors(kApiOffsetCommit,
                            {RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                             RD_KAFKA_RESP_ERR_NOT_COORDINATOR});
  broker_.PushRequestErrors(
      kApiFetch, {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT});

  // Every event completes exactly once in the dispatcher...
  ASSERT_TRUE(WaitFor([&] { return dispatcher_->Stats().succeeded >= 2000; }, std::chrono::seconds(90)));
  const auto stats = dispatcher_->Stats();
  EXPECT_EQ(stats.succeeded, 2000);
  EXPECT_EQ(stats.errors + stats.dead_lettered, 0);
  // ...and has its outcome on the results topic. The embedded broker deduplicates a producer's
  // retried requests only for transactional producers (docs/protocol.md §5), so after an outage a
  // record may stand twice there; both copies are the same outcome.
  const auto outcomes =
      ReadOutcomes(broker_.ClientConfig(), spec_.results_topic, ids.size(), std::chrono::seconds(30));
  std::map<std::string, Outcome> seen;
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    auto [it, fresh] = seen.try_emplace(o.id, o);
    if (!fresh) {
      EXPECT_EQ(it->second.MetaJson(), o.MetaJson()) << "two different outcomes for " << o.id;
    }
  }
  for (const auto& id : ids) EXPECT_TRUE(seen.contains(id)) << "no outcome for " << id;
  EXPECT_TRUE(
      CommittedReachesEnd(broker_.ClientConfig(), spec_.topic, spec_.Group(), std::chrono::seconds(20)));
  EXPECT_EQ(dispatcher_->Stats().retention_lost, 0);
}

// Records the broker dropped before the dispatcher saw them are counted as lost, loudly, and never
// reported as processed.
TEST_F(DispatcherFaults, RetentionLossIsCountedNotHidden) {
  broker_.CreateTopic("faults.small", 1);
  spec_.topic = "faults.small";
  spec_.results_topic.clear();
  {  // The group has processed nothing yet: it resumes at offset 0.
    kafka::Consumer c(broker_.ClientConfig(), {spec_.Group()});
    c.CommitOffsets({{spec_.topic, 0, 0}});
  }
  {  // 8 MiB into one partition with nobody consuming: the broker drops the oldest records.
    kafka::Producer producer(broker_.ClientConfig());
    for (int i = 0; i < 8 * 1024; ++i)
      producer.Produce({spec_.topic, 0, std::nullopt, std::string(1024, 'x'), {}}, {});
    ASSERT_EQ(producer.Flush(std::chrono::seconds(30)), 0);
  }
  kafka::Admin admin(broker_.ClientConfig());
  const auto before = admin.Offsets(spec_.topic, spec_.Group());
  ASSERT_GT(before[0].log_start, 0);
  StartDispatcher(1);
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto s = dispatcher_->Stats();
        return s.succeeded + s.retention_lost >= std::int64_t{8} * 1024;
      },
      std::chrono::seconds(60)));
  const auto stats = dispatcher_->Stats();
  EXPECT_EQ(stats.retention_lost, before[0].log_start);
  EXPECT_EQ(stats.succeeded, std::int64_t{8} * 1024 - before[0].log_start);
}

}  // namespace
}  // namespace runnel::testing
