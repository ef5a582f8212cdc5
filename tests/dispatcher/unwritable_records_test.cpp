// Records Kafka refuses (docs/protocol.md §4.5) that need no worker process, injected with the
// embedded broker's fault injection into a dispatcher in this process: a dead-letter topic that
// refuses records blocks the function (its partition paused and uncommitted, no spinning). The cases
// that need a worker's answer are in tests/e2e/unwritable_records_test.cpp.
#include <gmock/gmock.h>
#include <sys/resource.h>

#include <thread>

#include "runnel/kafka/admin.hpp"
#include "runnel/testing/dispatcher_rig.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kWriteAttempts = 5;  // kRecordWriteAttempts, broker/src/dispatcher_records.cpp

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

class UnwritableRecords : public DispatcherRig {
 protected:
  UnwritableRecords() : DispatcherRig({.name = "unwritable", .brokers = 2}) {}
};

// The dead-letter topic refuses records: after the bounded retries the function is blocked (status,
// reason), its partition paused and committed no further than the event; nothing spins.
TEST_F(UnwritableRecords, ADeadLetterTopicThatRefusesRecordsBlocksTheFunctionWithoutSpinning) {
  spec_.max_payload = 100;  // the first event is refused before it runs: it needs only its dead letter
  RefuseWrites(spec_.dead_letter_topic);
  StartDispatcher();
  PublishEvents(broker_.ClientConfig(), spec_.topic, {{std::string(200, 'x'), std::nullopt}});
  ASSERT_TRUE(WaitFor([&] { return dispatcher_->Stats().blocked; }, std::chrono::seconds(30)));
  const auto blocked = dispatcher_->Stats();
  EXPECT_THAT(
      blocked.blocked_reason,
      HasSubstr("dead-letter topic unwritable.in.dlq refuses records: Broker: Topic authorization failed "
                "(TOPIC_AUTHORIZATION_FAILED)"));
  EXPECT_TRUE(blocked.paused);
  EXPECT_EQ(blocked.records_refused, kWriteAttempts);
  EXPECT_EQ(blocked.errors + blocked.dead_lettered, 0) << "no final outcome without its dead letter";
  EXPECT_EQ(blocked.pending, 1u);

  PublishEvents(broker_.ClientConfig(), spec_.topic, {{"later-1", std::nullopt}, {"later-2", std::nullopt}});
  const double cpu_before = CpuSeconds();
  const auto wall_before = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the observation window: nothing may happen in it
  const double cpu = CpuSeconds() - cpu_before;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
  const auto after = dispatcher_->Stats();
  EXPECT_TRUE(after.blocked);
  EXPECT_EQ(after.records_refused, blocked.records_refused) << "the copy is not tried again within 30 s";
  EXPECT_EQ(after.received, blocked.received) << "consumption stays paused";
  EXPECT_LE(RefusedRequests(), kWriteAttempts) << "Produce requests the dead-letter topic refused";
  EXPECT_LT(cpu, wall / 2) << "the process spent " << cpu << " s of CPU in " << wall << " s while blocked";

  kafka::Admin admin(broker_.ClientConfig());
  const auto offsets = admin.Offsets(spec_.topic, spec_.Group());
  ASSERT_EQ(offsets.size(), 1u);
  EXPECT_EQ(offsets[0].end, 3);
  EXPECT_LE(offsets[0].committed.value_or(0), 0) << "nothing committed past the blocked event at offset 0";
}

}  // namespace
}  // namespace runnel::testing
