// `runnel results` when things restart: following the feed of a stack that comes back on a new port,
// and --durable, a reader of the results topic at a consumer group's position that loses nothing
// when it is killed and started again.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "runnel/core/state_dir.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;
using Events = std::vector<std::pair<std::string, std::optional<std::string>>>;

// The event ids in `runnel results --json` output (one object per line; a line cut by a kill is
// skipped).
std::set<std::string> IdsPrinted(const std::string& out) {
  std::set<std::string> ids;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("id") && j["id"].is_string()) ids.insert(j["id"].get<std::string>());
  }
  return ids;
}

bool StderrHas(const ChildProcess& p, const std::string& text) {
  return p.Stderr().find(text) != std::string::npos;
}

TEST(ResultsCommand, FollowsAStackRestartedOnANewPort) {
  const std::string yaml = R"(
heartbeat: 200ms
functions:
  - name: echo
    workers: 1
)";
  const auto state_dir = TempDir("results-follow");
  auto stack = std::make_unique<StackProcess>(SharedStateDir{state_dir}, yaml);
  const std::string first_feed = stack->Endpoints().at("results").get<std::string>();
  ChildProcess results({RunnelBin(), "results", "--json", "--function", "echo", "--count", "2", "--timeout",
                        "120s", "--state-dir", state_dir.string()});
  ASSERT_TRUE(WaitFor([&] { return StderrHas(results, "following the results feed"); }, seconds(20)))
      << results.Stderr();
  const auto before = PublishEvents(stack->Kafka(), "echo", {{"before", "k"}});
  ASSERT_TRUE(WaitFor([&] { return IdsPrinted(results.Stdout()).contains(before[0]); }, seconds(30)));

  // Killed: endpoints.json still names its feed, which nobody serves any more.
  stack->Process().Signal(SIGKILL);
  ASSERT_TRUE(stack->Process().Wait(seconds(10)).has_value());
  ASSERT_TRUE(
      WaitFor([&] { return StderrHas(results, "is gone; waiting for it to come back"); }, seconds(10)))
      << results.Stderr();

  stack = std::make_unique<StackProcess>(SharedStateDir{state_dir}, yaml);
  EXPECT_NE(stack->Endpoints().at("results").get<std::string>(), first_feed);
  // On today's main `runnel results` stayed connected to the dead port and never printed again.
  ASSERT_TRUE(WaitFor([&] { return StderrHas(results, "following the results feed again"); }, seconds(20)))
      << results.Stderr();
  EXPECT_THAT(results.Stderr(), HasSubstr("restarted (pid"));
  const auto after = PublishEvents(stack->Kafka(), "echo", {{"after", "k"}});
  ASSERT_TRUE(results.Wait(seconds(30)).has_value()) << results.Stderr();
  EXPECT_EQ(results.Wait(seconds(0)), 0) << results.Stderr();
  EXPECT_TRUE(IdsPrinted(results.Stdout()).contains(after[0])) << results.Stdout();
  std::filesystem::remove_all(state_dir);
}

TEST(ResultsCommand, SaysSoWhenTheFeedItWaitsOnDoesNotAnswer) {
  // endpoints.json of a live process (this test) whose feed nobody serves: a hung or half-started
  // stack. On today's main `runnel results` waited silently until its timeout.
  const auto state_dir = TempDir("results-silent");
  runnel::StateDir(state_dir).MergeEndpoints(
      {{"kafka", "127.0.0.1:1"}, {"results", "tcp://127.0.0.1:1"}, {"pid", ::getpid()}});
  const auto r =
      RunCommand({RunnelBin(), "results", "--timeout", "8s", "--state-dir", state_dir.string()}, seconds(30));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("the results feed at tcp://127.0.0.1:1 does not answer"));
  std::filesystem::remove_all(state_dir);
}

TEST(ResultsCommand, ADurableReaderKilledAndStartedAgainMidRunMissesNoOutcome) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: work
    handler: builtin:sleep
    params: {ms: 10}
    partitions: 4
    workers: 1
    concurrency: 8
    results_topic: work.results
  - name: echo
    workers: 1
)");
  const std::vector<std::string> reader = {RunnelBin(), "results", "--durable",   "--function",
                                           "work",      "--json",  "--state-dir", stack.StateDir().string()};
  // A function without a results topic has nothing durable to read: say so.
  const auto no_topic = RunCommand(
      {RunnelBin(), "results", "--durable", "--function", "echo", "--state-dir", stack.StateDir().string()});
  EXPECT_EQ(no_topic.exit_code, 1);
  EXPECT_THAT(no_topic.err, HasSubstr("function echo has no results topic"));

  auto first = std::make_unique<ChildProcess>(reader);
  ASSERT_TRUE(WaitFor(
      [&] { return StderrHas(*first, "reading results topic work.results as group runnel.results.work"); },
      seconds(30)))
      << first->Stderr();
  constexpr int kEvents = 2000;
  Events events;
  for (int i = 0; i < kEvents; ++i) events.emplace_back(std::to_string(i), fmt::format("key-{}", i % 40));
  const auto ids = PublishEvents(stack.Kafka(), "work", events);

  // Killed mid-run, then a second reader in the same group.
  ASSERT_TRUE(WaitFor([&] { return IdsPrinted(first->Stdout()).size() >= kEvents / 4; }, seconds(60),
                      std::chrono::milliseconds(10)));
  first->Signal(SIGKILL);
  ASSERT_TRUE(first->Wait(seconds(10)).has_value());
  const auto printed_first = IdsPrinted(first->Stdout());
  EXPECT_LT(printed_first.size(), static_cast<std::size_t>(kEvents))
      << "the first reader was not killed mid-run";

  ChildProcess second(reader);
  std::set<std::string> all;
  const bool complete = WaitFor(
      [&] {
        all = printed_first;
        const auto printed_second = IdsPrinted(second.Stdout());
        all.insert(printed_second.begin(), printed_second.end());
        return all.size() >= ids.size();
      },
      seconds(90), std::chrono::milliseconds(50));
  EXPECT_THAT(second.Stderr(), HasSubstr("4 at the group's committed position"));
  for (const auto& id : ids) EXPECT_TRUE(all.contains(id)) << "no reader printed the outcome of " << id;
  EXPECT_TRUE(complete);
  second.Signal(SIGTERM);
  EXPECT_TRUE(second.Wait(seconds(10)).has_value());
}

}  // namespace
}  // namespace runnel::testing
