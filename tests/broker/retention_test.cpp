// The embedded broker drops a partition's oldest records past its in-memory cap, consumed or not;
// publishing through Runnel's producer with the retention guard must lose nothing all the same.
#include <gmock/gmock.h>

#include <atomic>
#include <thread>

#include "runnel/kafka/admin.hpp"
#include "runnel/kafka/retention_guard.hpp"
#include "runnel/testing/kafka_cluster.hpp"

namespace runnel::testing {
namespace {

constexpr std::size_t kValueBytes = 1024;

kafka::Record KiloRecord(const std::string& topic, int i) {
  std::string value(kValueBytes, 'v');
  const auto n = std::to_string(i);
  value.replace(0, n.size(), n);
  return {topic, 0, std::nullopt, std::move(value), {}};
}

class Retention : public KafkaCluster {};

// What the mock keeps: after 8 MiB into one partition its log start has moved; what is left is
// at most its byte cap.
TEST_F(Retention, UnguardedPublishingPastTheCapDropsTheOldestRecords) {
  const auto topic = MakeTopic(1);
  constexpr int kCount = 8 * 1024;
  {
    kafka::Producer producer(Config());
    for (int i = 0; i < kCount; ++i) producer.Produce(KiloRecord(topic, i), {});
    ASSERT_EQ(producer.Flush(std::chrono::seconds(30)), 0);
  }
  kafka::Admin admin(Config());
  const auto offsets = admin.Offsets(topic, "");
  EXPECT_EQ(offsets[0].end, kCount);
  EXPECT_GT(offsets[0].log_start, 0)
      << "the mock kept everything: its cap changed, update retention_guard.hpp";
  EXPECT_LE((offsets[0].end - offsets[0].log_start) * static_cast<std::int64_t>(kValueBytes),
            kafka::kMockMaxBytes);
}

TEST_F(Retention, GuardedPublishingPastTheCapLosesNothing) {
  const auto topic = MakeTopic(1);
  const std::string group = "g.retention";
  constexpr int kCount = 12 * 1024;  // 12 MiB of values: more than twice the cap

  auto guard = std::make_shared<kafka::RetentionGuard>(
      Config(), [&](const std::string&) { return std::vector<std::string>{group}; });
  // A consumer that starts only once the guard has held the producer back (so the test cannot pass
  // without the guard), then commits every 256 records, and whenever it has caught up (as the
  // dispatcher's periodic commit does: the guard waits on the committed offset, so a reader that
  // held back its last commit would wait for the producer forever), and checks there is no gap.
  std::atomic<int> consumed{0};
  std::atomic<bool> gap{false};
  std::thread reader([&] {
    if (!WaitFor([&] { return guard->Waits() > 0; }, std::chrono::seconds(60))) return;
    kafka::Consumer consumer(Config(), {group});
    consumer.Assign({{topic, 0, kafka::kOffsetBeginning}});
    std::int64_t expected = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    int uncommitted = 0;
    while (consumed.load() < kCount && std::chrono::steady_clock::now() < until) {
      auto m = consumer.Poll(std::chrono::milliseconds(20));
      if (!m) {
        if (uncommitted > 0) consumer.Commit();
        uncommitted = 0;
        continue;
      }
      if (m->offset != expected) gap = true;
      expected = m->offset + 1;
      consumer.StoreOffset(m->topic, m->partition, expected);
      consumed.fetch_add(1);
      if (++uncommitted == 256) {
        consumer.Commit();
        uncommitted = 0;
      }
    }
    consumer.Commit();
  });

  {
    kafka::Producer::Options options;
    options.retention_guard = guard;
    kafka::Producer producer(Config(), options);
    for (int i = 0; i < kCount; ++i) producer.Produce(KiloRecord(topic, i), {});
    EXPECT_EQ(producer.Flush(std::chrono::seconds(30)), 0);
  }
  reader.join();

  EXPECT_EQ(consumed.load(), kCount);
  EXPECT_FALSE(gap.load()) << "the consumer saw a jump in offsets: records were dropped";
  EXPECT_GT(guard->Waits(), 0) << "the guard never engaged, so the test proved nothing";
  kafka::Admin admin(Config());
  const auto offsets = admin.Offsets(topic, group);
  EXPECT_GT(offsets[0].log_start, 0) << "the log never overflowed; raise kCount";
  EXPECT_EQ(offsets[0].Lost(), 0);
  EXPECT_EQ(offsets[0].Lag(), 0);
}

// While the guard waits, the producer's in-flight records are acknowledged: the guard must see the
// count fall. (It once kept the count it was called with, and with the backlog consumed and every
// record acknowledged a producer that had been sending fast waited forever.)
TEST_F(Retention, TheGuardSeesInFlightRecordsAcknowledgedWhileItWaits) {
  const auto topic = MakeTopic(1);
  kafka::RetentionGuard::Options options;
  options.max_wait = std::chrono::seconds(20);  // a failure throws instead of hanging the test
  kafka::RetentionGuard guard(
      Config(), [](const std::string&) { return std::vector<std::string>{}; }, options);
  const auto record = KiloRecord(topic, 0);
  const auto capacity = kafka::kMockMaxBytes / kafka::RecordLogBytes(record);
  std::atomic<std::int64_t> in_flight{capacity};  // the topic is empty: only these count
  std::thread acknowledger([&] {
    if (WaitFor([&] { return guard.Waits() > 0; }, std::chrono::seconds(20))) in_flight = 0;
  });
  EXPECT_NO_THROW(guard.BeforeProduce(record, in_flight));
  acknowledger.join();
  EXPECT_EQ(guard.Waits(), 1) << "with a full window in flight the guard must wait";
}

}  // namespace
}  // namespace runnel::testing
