// Supervision and the drain through a real `runnel up`: SIGTERM lets every call in flight finish
// and be written before the stack exits 0 (and nothing runs twice after a restart, on a `runnel
// kafka` that outlives the stack); a component that fails (injected with RUNNEL_FAILPOINTS, see
// core/README.md) makes the stack exit 3 naming it; a fault in one event's handling fails only
// that event; status and /metrics report each component; a second signal forces the stop.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "runnel/core/state_dir.hpp"
#include "runnel/testing/http_get.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/test_kafka.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Events = std::vector<std::pair<std::string, std::optional<std::string>>>;

// TestKafka::SkipReason for the kafka tier, which runs the drain against a real Kafka.
class Supervision : public OnTestKafka {};

int Count(const std::string& text, const std::regex& re) {
  return static_cast<int>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

// `runnel up` with `yaml`, as a plain child (a stack that fails may exit before it is up).
std::unique_ptr<ChildProcess> StartUp(const std::filesystem::path& dir, const std::string& yaml,
                                      std::map<std::string, std::string> env) {
  std::ofstream(dir / "runnel.yaml") << yaml;
  return std::make_unique<ChildProcess>(
      std::vector<std::string>{RunnelBin(), "up", "--config", (dir / "runnel.yaml").string(), "--state-dir",
                               dir.string()},
      std::move(env));
}

// The drain's stack, with the topics `kafka` gives it.
std::string SleepStack(const TestKafka& kafka) {
  return fmt::format(R"(
heartbeat: 1s
functions:
  - name: sleep
    topic: {}
    partitions: 4
    workers: 2
    concurrency: 16
    results_topic: {}
)",
                     kafka.Topic("sleep"), kafka.Topic("sleep.results"));
}

TEST_F(Supervision, SigtermFinishesEveryCallInFlightAndNothingRunsAgainAfterARestart) {
  // The stack finds its topics there (it creates none on an external Kafka that has them).
  TestKafka kafka("sleep,sleep.dlq,sleep.results", 4);
  const std::string input = kafka.Topic("sleep");
  const std::string results = kafka.Topic("sleep.results");
  std::vector<std::string> ids;
  {
    StackProcess stack(SleepStack(kafka), {{"RUNNEL_LOG", "info"}}, {"--kafka", kafka.Bootstrap()});
    ASSERT_TRUE(stack.WaitForWorkers("sleep", 2, std::chrono::seconds(20)));
    ids = PublishEvents(kafka.Kafka(), input, Events(64, {R"({"ms":2500})", std::nullopt}));
    // Both workers full: 32 calls of 2.5 s in flight, 32 more events waiting.
    ASSERT_TRUE(WaitFor([&] { return stack.FunctionStatus("sleep").value("in_flight", 0) >= 32; },
                        std::chrono::seconds(20)));
    stack.Process().Signal(SIGTERM);
    const auto exit = stack.Process().Wait(std::chrono::seconds(60));
    ASSERT_TRUE(exit.has_value()) << "runnel up did not stop";
    EXPECT_EQ(*exit, 0);
    const std::string err = stack.Process().Stderr();
    std::smatch m;
    const std::string_view head = "dispatcher sleep: stopping; waiting for ";
    ASSERT_TRUE(std::regex_search(err, m, std::regex(std::string(head) + "(\\d+) event\\(s\\) at workers")));
    const int in_flight = std::stoi(m[1]);
    EXPECT_GE(in_flight, 32);
    // Each worker drained and exited 0, none was killed.
    EXPECT_EQ(Count(err, std::regex("worker sleep-\\d+ \\(pid \\d+\\) stopped \\(exit 0\\)")), 2) << err;
    EXPECT_THAT(err, Not(HasSubstr("stopped (signal")));
    EXPECT_THAT(err, HasSubstr("stack stopped"));
    // Every call that was in flight has its outcome, written before the stack exited.
    const auto written = ReadOutcomes(kafka.Kafka(), results, ids.size(), std::chrono::seconds(5));
    EXPECT_GE(static_cast<int>(written.size()), in_flight);
    EXPECT_LT(written.size(), ids.size()) << "the drain dispatched events it had not started";
    for (const auto& o : written) {
      EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
      EXPECT_EQ(o.attempts, 1);
    }
  }
  // After a restart the rest runs, and nothing that finished before runs again.
  StackProcess again(SleepStack(kafka), {}, {"--kafka", kafka.Bootstrap()});
  ASSERT_EQ(ReadOutcomes(kafka.Kafka(), results, ids.size(), std::chrono::seconds(60)).size(), ids.size());
  EXPECT_TRUE(CommittedReachesEnd(kafka.Kafka(), input, "runnel.sleep", std::chrono::seconds(10)));
  // Everything is committed, so every outcome there will ever be is written: a second one for an
  // event would be there now.
  const auto outcomes = ReadOutcomes(kafka.Kafka(), results, ids.size() + 1, std::chrono::seconds(2));
  std::map<std::string, int> count;
  for (const auto& o : outcomes) {
    ++count[o.id];
    EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    EXPECT_EQ(o.attempts, 1);
  }
  EXPECT_EQ(count.size(), ids.size());
  for (const auto& id : ids) EXPECT_EQ(count[id], 1) << "event " << id;
}

TEST_F(Supervision, ASecondSignalForcesTheStopAndTheWorkersDieWithTheStack) {
  StackProcess stack(R"(
functions:
  - name: sleep
    workers: 1
    concurrency: 2
)");
  ASSERT_TRUE(stack.WaitForWorkers("sleep", 1, std::chrono::seconds(20)));
  const pid_t worker = stack.WorkerPids("sleep").at("sleep-1");
  PublishEvents(stack.Kafka(), "sleep", Events(2, {R"({"ms":20000})", std::nullopt}));
  ASSERT_TRUE(WaitFor([&] { return stack.FunctionStatus("sleep").value("in_flight", 0) >= 2; },
                      std::chrono::seconds(20)));
  stack.Process().Signal(SIGTERM);
  // The first signal was taken (two pending ones would merge into one).
  ASSERT_TRUE(stack.Process().WaitForOutput("stopping (signal 15)", std::chrono::seconds(10)));
  ASSERT_TRUE(WaitFor(
      [&] { return stack.Process().Stderr().find("dispatcher sleep: stopping") != std::string::npos; },
      std::chrono::seconds(10)));
  stack.Process().Signal(SIGTERM);
  const auto exit = stack.Process().Wait(std::chrono::seconds(10));
  ASSERT_TRUE(exit.has_value()) << "the second signal did not end runnel up";
  EXPECT_EQ(*exit, 128 + SIGTERM);
  EXPECT_THAT(stack.Process().Stderr(), HasSubstr("signal 15 during the drain: stopping now"));
  EXPECT_TRUE(WaitFor([&] { return ::kill(worker, 0) != 0; }, std::chrono::seconds(10)))
      << "worker " << worker << " outlived its stack";
}

struct Injected {
  std::string failpoint;
  std::string component;
};

void PrintTo(const Injected& injected, std::ostream* os) { *os << injected.failpoint; }

class ComponentFailure : public ::testing::TestWithParam<Injected> {};

TEST_P(ComponentFailure, StopsTheStackWithExitStatusThreeNamingTheComponent) {
  const auto dir = TempDir("failure");
  auto up = StartUp(dir, R"(
functions:
  - name: echo
    workers: 1
)",
                    {{"RUNNEL_FAILPOINTS", GetParam().failpoint + "=throw"}});
  const auto exit = up->Wait(std::chrono::seconds(60));
  ASSERT_TRUE(exit.has_value()) << "runnel up kept running after its " << GetParam().component << " failed";
  EXPECT_EQ(*exit, 3) << up->Stderr();
  const auto name = GetParam().failpoint.substr(0, GetParam().failpoint.find('='));
  EXPECT_THAT(up->Stderr(),
              HasSubstr(fmt::format("component {} failed: failpoint {}", GetParam().component, name)));
  EXPECT_THAT(up->Stderr(), HasSubstr("stack stopped"));
  up.reset();
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Injected, ComponentFailure,
                         ::testing::Values(Injected{"dispatcher.loop", "dispatcher echo"},
                                           Injected{"autoscaler.loop", "autoscaler"},
                                           Injected{"scheduler.tick", "scheduler"},
                                           Injected{"control.loop", "control socket"},
                                           Injected{"results.feed", "results feed"}),
                         [](const ::testing::TestParamInfo<Injected>& param_info) {
                           std::string name = param_info.param.failpoint;
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

TEST_F(Supervision, AMalformedFailpointListIsRefusedAtStart) {
  const auto dir = TempDir("failpoints");
  auto up = StartUp(dir, "functions:\n  - name: echo\n", {{"RUNNEL_FAILPOINTS", "dispatcher.loop=crash"}});
  const auto exit = up->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(*exit, 1);
  EXPECT_THAT(
      up->Stderr(),
      HasSubstr(
          "RUNNEL_FAILPOINTS: 'dispatcher.loop=crash' is not NAME=throw, NAME=throw:N (N >= 1) or NAME=on"));
  up.reset();
  std::filesystem::remove_all(dir);
}

TEST_F(Supervision, StatusAndMetricsReportEveryComponentUp) {
  StackProcess stack(R"(
functions:
  - name: echo
    results_topic: echo.results
)");
  const auto status = stack.Status();
  ASSERT_TRUE(status.contains("components")) << status.dump();
  std::map<std::string, bool> up;
  for (const auto& c : status["components"]) up[c.value("name", "")] = c.value("up", false);
  const std::map<std::string, bool> all = {
      {"autoscaler", true},   {"control socket", true}, {"dispatcher echo", true}, {"metrics", true},
      {"results feed", true}, {"scheduler", true},      {"security guard", true}};
  EXPECT_EQ(up, all);
  EXPECT_EQ(status.value("age_ms", -1), 0) << "status is answered fresh";
  const auto r = HttpGet(stack.Endpoints().value("metrics", ""));
  ASSERT_TRUE(r.has_value());
  for (const auto& [name, _] : all) {
    EXPECT_THAT(r->body, HasSubstr(fmt::format("runnel_component_up{{component=\"{}\"}} 1", name)));
  }
  EXPECT_THAT(r->body, HasSubstr("runnel_status_age_seconds "));
}

TEST_F(Supervision, AFaultInOneEventsHandlingFailsThatEventNotTheDispatcher) {
  // Every event's admission throws: each is failed as an internal error and retried (a retry is
  // dispatched without that step), the dispatcher running on.
  StackProcess stack(R"(
functions:
  - name: echo
    results_topic: echo.results
    retries: {max_attempts: 3, backoff: 10ms}
)",
                     {{"RUNNEL_FAILPOINTS", "dispatcher.record=throw"}});
  const auto ids = PublishEvents(stack.Kafka(), "echo", Events(3, {"x", std::nullopt}));
  const auto outcomes = ReadOutcomes(stack.Kafka(), "echo.results", ids.size(), std::chrono::seconds(30));
  ASSERT_EQ(outcomes.size(), ids.size());
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    EXPECT_EQ(o.attempts, 2);
  }
  EXPECT_THAT(stack.Process().Stderr(), HasSubstr("failed in the dispatcher: failpoint dispatcher.record"));
  for (const auto& c : stack.Status().value("components", nlohmann::json::array())) {
    EXPECT_TRUE(c.value("up", false)) << c.dump();
  }
}

}  // namespace
}  // namespace runnel::testing
