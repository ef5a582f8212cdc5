// One stack per function and consumer group (issue 14): a dispatcher assigns itself every partition
// of its topic, so a second stack serving the same function against the same Kafka would run every
// event again and pull the group's offsets backwards. Every commit names its stack (a lease), also
// while it idles; a second stack is refused at start with why, another group is allowed, and once
// the first stops with a drain the second starts at once. Before the lease, the second stack
// started and both ran every event.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/test_kafka.hpp"

namespace runnel::testing {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

class OneStackPerGroup : public OnTestKafka {};

std::string Yaml(const TestKafka& kafka, const std::string& topic, const std::string& extra) {
  return fmt::format(R"(
kafka: {{bootstrap: "{}"}}
functions:
  - name: echo
    topic: {}
    partitions: 2
{})",
                     kafka.Bootstrap(), topic, extra);
}

TEST_F(OneStackPerGroup, ASecondStackForTheSameFunctionAndGroupIsRefusedUntilTheFirstStops) {
  TestKafka kafka;
  const std::string topic = kafka.Topic("echo");
  const std::string yaml = Yaml(kafka, topic, "");
  auto first = std::make_unique<StackProcess>(yaml);

  // The first stack idles (no event yet): its lease is in its start-up commits and every second's.
  const auto dir = TempDir("second-stack");
  std::ofstream(dir / "runnel.yaml") << yaml;
  const auto second = RunCommand({RunnelBin(), "up", "--config", (dir / "runnel.yaml").string(),
                                  "--state-dir", (dir / "state").string()},
                                 seconds(60));
  EXPECT_EQ(second.exit_code, 1) << second.err;
  EXPECT_THAT(second.err, HasSubstr("function echo: another stack (id "));
  EXPECT_THAT(second.err, HasSubstr("committed consumer group runnel.echo"));
  EXPECT_THAT(second.err, HasSubstr("two would run every event twice"));

  // Another group consumes the topic on its own: allowed.
  {
    StackProcess other_group(Yaml(kafka, topic, "    group: audit.echo\n"));
    EXPECT_EQ(other_group.Endpoints().at("functions").at("echo").value("group", ""), "audit.echo");
  }

  // A drained stop's last commit says the stack stopped: the next one starts at once.
  first->Process().Signal(SIGTERM);
  ASSERT_EQ(first->Process().Wait(seconds(30)), 0) << first->Process().Stderr();
  first.reset();
  StackProcess after(SharedStateDir{dir / "state"}, yaml);
  const auto ids = PublishEvents(kafka.Kafka(), topic, {{"served by the second stack", std::nullopt}});
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_TRUE(after.WaitForWorkers("echo", 1, seconds(30))) << "the second stack serves the function now";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel::testing
