// `workers: {backend: external}` through a real `runnel up`: the stack computes the worker count
// and publishes it as runnel_autoscaler_workers_desired, but starts no process; a worker started
// outside the stack (here by the test, as a KEDA-scaled pod would be) joins with a token and
// serves the events; the count goes back to 0 once the function is idle.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>

#include <filesystem>

#include "runnel/testing/child_process.hpp"
#include "runnel/testing/http_get.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr const char* kExternal = R"(
heartbeat: 200ms
workers: {backend: external}
functions:
  - name: echo
    partitions: 2
    results_topic: echo.results
    scaling: {min: 0, max: 4, idle_to_zero: 500ms, stabilization: 300ms}
)";

double Desired(const StackProcess& stack) {
  return MetricSample(stack.Endpoints().value("metrics", ""), "runnel_autoscaler_workers_desired",
                      {{"function", "echo"}});
}

TEST(ExternalWorkers, TheStackPublishesTheCountStartsNothingAndAJoinedWorkerServesTheEvents) {
  StackProcess stack(kExternal);
  nlohmann::json f;
  ASSERT_TRUE(WaitFor(
      [&] {
        f = stack.FunctionStatus("echo");
        return f.contains("orchestrator") && Desired(stack) == 0;
      },
      seconds(20), milliseconds(50)))
      << f.dump();
  EXPECT_EQ(f["orchestrator"]["kind"], "external");
  EXPECT_EQ(f["orchestrator"]["target"], R"(runnel_autoscaler_workers_desired{function="echo"} on /metrics)");
  EXPECT_FALSE(f.contains("standby"));  // nothing kept loaded: the stack runs no worker

  const auto ids = PublishEvents(stack.Kafka(), "echo", {{"a", "k1"}, {"b", "k2"}, {"c", "k3"}});
  // Woken by the dispatcher (events and no worker): the count is 1 at once, and only a count.
  ASSERT_TRUE(WaitFor(
      [&] {
        f = stack.FunctionStatus("echo");
        return f.value("desired", 0) >= 1 && f["orchestrator"].value("replicas_set", 0) >= 1 &&
               Desired(stack) >= 1;
      },
      seconds(10), milliseconds(20)))
      << f.dump();
  EXPECT_TRUE(stack.WorkerPids("echo").empty());
  EXPECT_EQ(f["usage"].value("workers_started", -1), 0);
  EXPECT_EQ(f.value("joined", -1), 0);
  for (const auto& w : f["workers"]) {
    EXPECT_EQ(w.value("pid", -1), 0) << w.dump();
    EXPECT_EQ(w.value("state", ""), "starting") << w.dump();  // asked for, not joined
  }
  EXPECT_THAT(stack.Process().Stderr(),
              HasSubstr("workers run outside this stack (workers.backend: external)"));
  // Nothing serves them yet: no outcome.
  EXPECT_TRUE(ReadOutcomes(stack.Kafka(), "echo.results", 1, milliseconds(500)).empty());

  // What the external scaler would run: a worker that joins with a token of the stack.
  const auto token = (stack.StateDir() / "echo.token").string();
  const auto created = RunCommand({RunnelBin(), "token", "create", "--function", "echo", "--out", token,
                                   "--state-dir", stack.StateDir().string()});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  {
    ChildProcess worker({RunnelWorkerBin(), "--join", token, "--function", "echo"});
    const auto outcomes = ReadOutcomes(stack.Kafka(), "echo.results", 3, seconds(20));
    ASSERT_EQ(outcomes.size(), 3u) << worker.Stderr();
    for (const auto& o : outcomes) {
      EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.id;
      EXPECT_NE(std::find(ids.begin(), ids.end(), o.id), ids.end()) << o.id;
    }
    f = stack.FunctionStatus("echo");
    EXPECT_EQ(f.value("joined", 0), 1) << f.dump();
    if (!f["workers"].empty()) {  // still asked for: the joined worker fills the first entry
      EXPECT_EQ(f["workers"][0].value("state", ""), "running") << f.dump();
    }
    // Idle: the count falls to 0 (the external scaler's cue to remove the worker).
    ASSERT_TRUE(WaitFor(
        [&] {
          f = stack.FunctionStatus("echo");
          return f.value("desired", -1) == 0 && Desired(stack) == 0 && f["workers"].empty();
        },
        seconds(20), milliseconds(50)))
        << f.dump();
    worker.Signal(SIGTERM);
    ASSERT_TRUE(worker.Wait(seconds(20)).has_value());
  }
  EXPECT_EQ(stack.FunctionStatus("echo")["usage"].value("workers_started", -1), 0);
  // `runnel status` says who scales it.
  const auto status = RunCommand({RunnelBin(), "status", "--state-dir", stack.StateDir().string()});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(
      status.out,
      HasSubstr(
          R"(external: scaled by runnel_autoscaler_workers_desired{function="echo"} on /metrics, workers wanted 0)"));
}

}  // namespace
}  // namespace runnel::testing
