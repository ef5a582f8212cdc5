// The autoscaler through a real `runnel up`: scale from zero and back, a burst up to max, a steady
// load that does not flap, crashes and crash loops, and scale-in under load without loss or
// duplicates. The stack's state is read the way a user reads it: `runnel status --json`.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "runnel/core/envelope.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;
using Events = std::vector<std::pair<std::string, std::optional<std::string>>>;
using std::chrono::milliseconds;
using std::chrono::seconds;

void ExpectExactlyOneOkOutcomeEach(const std::vector<std::string>& ids, const std::vector<Outcome>& outcomes,
                                   bool first_attempt = false) {
  std::map<std::string, int> count;
  for (const auto& o : outcomes) {
    ++count[o.id];
    EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    if (first_attempt) {
      EXPECT_EQ(o.attempts, 1) << "event " << o.id << " was dispatched again";
    }
  }
  std::size_t missing = 0;
  for (const auto& id : ids) missing += count.contains(id) ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "events without an outcome";
  for (const auto& [id, n] : count) EXPECT_EQ(n, 1) << "event " << id << " has " << n << " outcomes";
}

// Samples `runnel status` in the background until stopped.
class StatusSampler {
 public:
  StatusSampler(const StackProcess& stack, const std::string& function) {
    thread_ = std::thread([this, &stack, function] {
      while (!stop_.load()) {
        auto f = stack.FunctionStatus(function);
        if (!f.empty()) {
          std::lock_guard lock(mu_);
          samples_.push_back(std::move(f));
        }
        std::this_thread::sleep_for(milliseconds(50));  // the sampling cadence, not a wait
      }
    });
  }
  ~StatusSampler() { Stop(); }
  StatusSampler(const StatusSampler&) = delete;
  StatusSampler& operator=(const StatusSampler&) = delete;
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<nlohmann::json> Samples() {
    std::lock_guard lock(mu_);
    return samples_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<nlohmann::json> samples_;
  std::thread thread_;
};

TEST(Autoscale, OneEventWakesAFunctionFromZeroWhichReturnsToZeroWhenIdle) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: echo
    partitions: 2
    results_topic: echo.results
    scaling: {min: 0, max: 2, idle_to_zero: 2s}
)");
  auto f = stack.FunctionStatus("echo");
  ASSERT_FALSE(f.empty()) << "runnel status failed";
  EXPECT_EQ(f["desired"], 0);
  EXPECT_TRUE(f["workers"].empty());
  EXPECT_TRUE(stack.WorkerPids("echo").empty());

  for (int round = 1; round <= 2; ++round) {
    const auto ids = PublishEvents(stack.Kafka(), "echo", {{"hello", std::nullopt}});
    const auto outcomes =
        ReadOutcomes(stack.Kafka(), "echo.results", static_cast<std::size_t>(round), seconds(20));
    ASSERT_EQ(outcomes.size(), static_cast<std::size_t>(round));
    // Outcomes of both rounds may sit on different partitions of the results topic: find this one.
    const auto it =
        std::find_if(outcomes.begin(), outcomes.end(), [&](const Outcome& o) { return o.id == ids.at(0); });
    ASSERT_NE(it, outcomes.end());
    EXPECT_EQ(it->status, OutcomeStatus::kOk);
    EXPECT_EQ(it->output, "hello");
    // Back to zero once idle for idle_to_zero (2 s).
    ASSERT_TRUE(WaitFor(
        [&] {
          f = stack.FunctionStatus("echo");
          return f.value("desired", -1) == 0 && f["workers"].empty() && stack.WorkerPids("echo").empty();
        },
        seconds(20), milliseconds(100)))
        << f.dump();
  }
  const auto log = stack.Process().Stderr();
  EXPECT_THAT(log, HasSubstr("function echo: 0 -> 1 worker(s)"));
  EXPECT_THAT(log, HasSubstr("function echo: 1 -> 0 worker(s): idle for"));
}

TEST(Autoscale, ABurstRisesToMaxDrainsAndReturnsToMin) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: sleep
    partitions: 4
    concurrency: 8
    results_topic: sleep.results
    scaling: {min: 0, max: 6, target_drain: 1s, idle_to_zero: 2s, stabilization: 2s}
)");
  StatusSampler sampler(stack, "sleep");
  const auto ids = PublishEvents(stack.Kafka(), "sleep", Events(5000, {R"({"ms":20})", std::nullopt}));
  const auto outcomes = ReadOutcomes(stack.Kafka(), "sleep.results", ids.size(), seconds(90));
  ExpectExactlyOneOkOutcomeEach(ids, outcomes);
  nlohmann::json f;
  ASSERT_TRUE(WaitFor(
      [&] {
        f = stack.FunctionStatus("sleep");
        return f.value("desired", -1) == 0 && f["workers"].empty();
      },
      seconds(30), milliseconds(100)))
      << f.dump();
  sampler.Stop();
  int peak_desired = 0, peak_joined = 0;
  for (const auto& s : sampler.Samples()) {
    peak_desired = std::max(peak_desired, s.value("desired", 0));
    peak_joined = std::max(peak_joined, s.value("joined", 0));
  }
  EXPECT_EQ(peak_desired, 6);
  EXPECT_EQ(peak_joined, 6) << "six workers served the burst at once";
  std::set<std::string> workers;
  for (const auto& o : outcomes) workers.insert(o.worker);
  EXPECT_GE(workers.size(), 6u);
  EXPECT_EQ(f["lag"], 0);
  EXPECT_TRUE(CommittedReachesEnd(stack.Kafka(), "sleep", "runnel.sleep", seconds(10)));
}

// The issue's figure: after settling (no change for 5 s, with a 3 s stabilization window), the
// worker count does not change for 30 s of the same load, ten stabilization windows.
TEST(Autoscale, ASteadyLoadSettlesAndTheWorkerCountStopsChanging) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: sleep
    partitions: 4
    concurrency: 1
    results_topic: sleep.results
    scaling: {min: 0, max: 10, stabilization: 3s, idle_to_zero: 10s}
)");
  // 100 events/s of 20 ms on one call per worker: 2 busy workers, 3 at the 80 % target.
  constexpr int kRate = 100;
  std::vector<std::string> ids;
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    kafka::Producer producer(stack.Kafka());
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; !stop.load() && i < 90 * kRate; ++i) {  // bounded: 40 s to settle + 30 s + margin
      std::this_thread::sleep_until(start + milliseconds(1000 * i / kRate));  // the load's pace
      Envelope env;
      env.id = NewEventId();
      producer.Produce({"sleep", kafka::kAnyPartition, std::nullopt, R"({"ms":20})", env.Encode()}, nullptr);
      ids.push_back(env.id);
    }
    producer.Flush(seconds(30));
  });
  // Settled: workers joined and the desired count unchanged for 5 s.
  nlohmann::json settled;
  auto changed_at = std::chrono::steady_clock::now();
  std::int64_t last_changes = -1;
  const bool did_settle = WaitFor(
      [&] {
        settled = stack.FunctionStatus("sleep");
        const std::int64_t changes = settled.value("scale_changes", std::int64_t{-1});
        if (changes != last_changes) {
          last_changes = changes;
          changed_at = std::chrono::steady_clock::now();
        }
        return settled.value("joined", 0) > 0 && settled["joined"] == settled["desired"] &&
               std::chrono::steady_clock::now() - changed_at >= seconds(5);
      },
      seconds(40), milliseconds(200));
  std::vector<nlohmann::json> during;
  const auto until = std::chrono::steady_clock::now() + seconds(30);
  while (did_settle && std::chrono::steady_clock::now() < until) {
    during.push_back(stack.FunctionStatus("sleep"));
    std::this_thread::sleep_for(milliseconds(200));  // sampling cadence
  }
  stop = true;
  publisher.join();
  ASSERT_TRUE(did_settle) << settled.dump();
  ASSERT_GE(during.size(), 10u);  // each `runnel status` is a process start: a few per second
  int count_changes = 0;
  for (const auto& s : during) {
    if (s.empty()) continue;
    EXPECT_EQ(s["desired"], settled["desired"]) << s["reason"];
    if (s["running"] != settled["running"]) ++count_changes;
  }
  EXPECT_EQ(during.back()["scale_changes"], settled["scale_changes"])
      << "the desired count changed under steady load";
  EXPECT_EQ(count_changes, 0);
  EXPECT_GE(settled.value("desired", 0), 3);
  EXPECT_LE(settled.value("desired", 0), 4);
  const auto outcomes = ReadOutcomes(stack.Kafka(), "sleep.results", ids.size(), seconds(60));
  ExpectExactlyOneOkOutcomeEach(ids, outcomes);
}

TEST(Autoscale, AWorkerThatExitsWithAnErrorIsReplaced) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: sleep
    partitions: 2
    timeout: 300ms
    results_topic: sleep.results
    retries: {max_attempts: 1}
    scaling: {min: 1, max: 1}
)");
  nlohmann::json f;
  ASSERT_TRUE(WaitFor(
      [&] {
        f = stack.FunctionStatus("sleep");
        return f.value("joined", 0) == 1;
      },
      seconds(20), milliseconds(100)))
      << f.dump();
  const int first_pid = f["workers"][0]["pid"];
  // An event that overruns its timeout makes the worker's watchdog end the process (exit 3).
  PublishEvents(stack.Kafka(), "sleep", {{R"({"ms":3000})", std::nullopt}});
  const auto timed_out = ReadOutcomes(stack.Kafka(), "sleep.results", 1, seconds(20));
  ASSERT_EQ(timed_out.size(), 1u);
  EXPECT_EQ(timed_out[0].error_kind, "timeout");
  ASSERT_TRUE(WaitFor(
      [&] {
        f = stack.FunctionStatus("sleep");
        return f.value("joined", 0) == 1 && f["workers"].size() == 1 &&
               f["workers"][0].value("pid", 0) != first_pid &&
               f["workers"][0].value("state", "") == "running";
      },
      seconds(20), milliseconds(100)))
      << f.dump();
  EXPECT_EQ(f["workers"][0]["restarts"], 1);
  EXPECT_EQ(f["workers"][0]["last_exit"], "exit 3");
  EXPECT_EQ(f["desired"], 1);
  const auto ids = PublishEvents(stack.Kafka(), "sleep", {{R"({"ms":1})", std::nullopt}});
  const auto outcomes = ReadOutcomes(stack.Kafka(), "sleep.results", 2, seconds(20));
  ASSERT_EQ(outcomes.size(), 2u);
  const auto it =
      std::find_if(outcomes.begin(), outcomes.end(), [&](const Outcome& o) { return o.id == ids.at(0); });
  ASSERT_NE(it, outcomes.end());
  EXPECT_EQ(it->status, OutcomeStatus::kOk);
}

TEST(Autoscale, WorkersThatCrashAtStartEnterAVisibleCrashLoopWithBackoff) {
  // 1 MiB of address space: the worker cannot build its task pool after WELCOME and dies.
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: echo
    partitions: 2
    memory_mb: 1
    scaling: {min: 1, max: 1}
)");
  nlohmann::json f;
  ASSERT_TRUE(WaitFor(
      [&] {
        f = stack.FunctionStatus("echo");
        return f.value("crash_loop", false);
      },
      seconds(40), milliseconds(200)))
      << f.dump();
  ASSERT_EQ(f["workers"].size(), 1u) << "one worker, restarted; not a new one per crash";
  EXPECT_EQ(f["workers"][0]["state"], "crash-loop");
  // Backoff, not spinning: 200 ms doubling to the fifth quick crash, then 10 s apart.
  EXPECT_GE(f["restarts"].get<int>(), 5);
  EXPECT_LE(f["restarts"].get<int>(), 7);
  const auto text = RunCommand({RunnelBin(), "status", "--state-dir", stack.StateDir().string()});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_THAT(text.out, HasSubstr("CRASH LOOP"));
  EXPECT_THAT(text.out, HasSubstr("crash-loop"));
}

// A rate step down: a burst scales the function to its maximum, then a slower stream of longer
// events keeps every remaining worker busy while the count comes down. The test does not hope for
// the scale-in to fall inside a window: it keeps the load running until the count went down and
// a worker was told to drain (a condition with a deadline), then stops the load. Every event must
// have exactly one outcome, at its first attempt (a draining worker finishes what it holds; nothing
// is dispatched twice), on the Kafka results topic (not the lossy PUB feed).
TEST(Autoscale, ScaleInDuringLoadLosesNothingAndDuplicatesNothing) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: sleep
    partitions: 4
    concurrency: 2
    results_topic: sleep.results
    scaling: {max: 6, target_drain: 1s, stabilization: 500ms, idle_to_zero: 30s}
)",
                     {{"RUNNEL_LOG", "info"}});
  std::vector<std::string> ids;  // the publisher's until it is joined
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    kafka::Producer producer(stack.Kafka());
    auto publish = [&](const char* payload, int i) {
      Envelope env;
      env.id = NewEventId();
      producer.Produce({"sleep", kafka::kAnyPartition, fmt::format("k{}", i % 100), payload, env.Encode()},
                       nullptr);
      ids.push_back(env.id);
    };
    for (int i = 0; i < 1500; ++i) publish(R"({"ms":20})", i);  // the burst: 30 s of work for one worker
    producer.Flush(seconds(30));
    // Then 20 events/s of 200 ms: about 3 busy workers, fewer than the burst's 6. Bounded in count.
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; !stop.load() && i < 20 * 120; ++i) {
      std::this_thread::sleep_until(start + milliseconds(50 * i));  // the load's pace
      publish(R"({"ms":200})", i);
    }
    producer.Flush(seconds(30));
  });
  int peak = 0;
  nlohmann::json at_scale_in;
  const bool scaled_in = WaitFor(
      [&] {
        auto f = stack.FunctionStatus("sleep");
        if (f.empty()) return false;
        peak = std::max(peak, f.value("desired", 0));
        if (peak == 6 && f.value("desired", 6) < peak && f.value("received", 0) > 1500 &&
            stack.Process().Stderr().find("it drains first") != std::string::npos) {
          at_scale_in = f;
          return true;
        }
        return false;
      },
      seconds(90), milliseconds(100));
  // Some more of the stream after the scale-in, so events keep arriving while workers drain.
  const auto received = at_scale_in.value("received", 0);
  WaitFor([&] { return stack.FunctionStatus("sleep").value("received", 0) >= received + 20; }, seconds(20),
          milliseconds(100));
  stop = true;
  publisher.join();
  ASSERT_TRUE(scaled_in) << "peak desired " << peak << "; " << stack.Process().Stderr();
  EXPECT_GT(at_scale_in.value("desired", 0), 0);
  EXPECT_GT(at_scale_in.value("in_flight", 0) + at_scale_in.value("queued", 0), 0) << "scaled in under load";
  const auto outcomes = ReadOutcomes(stack.Kafka(), "sleep.results", ids.size(), seconds(90));
  ExpectExactlyOneOkOutcomeEach(ids, outcomes, /*first_attempt=*/true);
  EXPECT_TRUE(CommittedReachesEnd(stack.Kafka(), "sleep", "runnel.sleep", seconds(10)));
}

// "Runs standalone against a real Kafka": dispatchers and the autoscaler of `runnel up` against a
// broker they did not start, given as `kafka: bootstrap:` in the config. A second process,
// `runnel kafka`, plays the external broker: it speaks the Kafka protocol over TCP like any other.
// It does not implement CreateTopics, like a real Kafka where Runnel may not create topics: the
// topics exist beforehand and the stack uses them.
TEST(Autoscale, AStackAgainstAnExternalKafkaScalesFromZeroAndBack) {
  const auto broker_dir = TempDir("external-kafka");
  ChildProcess broker({RunnelBin(), "kafka", "--state-dir", broker_dir.string(), "--partitions", "2",
                       "--topics", "echo,echo.dlq,echo.results"});
  std::string bootstrap;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::ifstream in(broker_dir / "endpoints.json");
        const auto endpoints = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
        if (!endpoints.is_object() || !endpoints.contains("kafka")) return false;
        bootstrap = endpoints["kafka"].get<std::string>();
        return true;
      },
      seconds(30), milliseconds(20)))
      << broker.Stderr();

  StackProcess stack(fmt::format(R"(
heartbeat: 200ms
kafka: {{bootstrap: "{}"}}
functions:
  - name: echo
    partitions: 2
    results_topic: echo.results
    scaling: {{min: 0, max: 2, idle_to_zero: 1s}}
)",
                                 bootstrap));
  EXPECT_EQ(stack.Endpoints()["kafka"], bootstrap);
  EXPECT_EQ(stack.Endpoints()["embedded"], false) << "the stack started no broker of its own";
  EXPECT_EQ(stack.FunctionStatus("echo").value("desired", -1), 0);
  const auto ids = PublishEvents(stack.Kafka(), "echo", Events(20, {"over the wire", std::nullopt}));
  const auto outcomes = ReadOutcomes(stack.Kafka(), "echo.results", ids.size(), seconds(60));
  ExpectExactlyOneOkOutcomeEach(ids, outcomes);
  EXPECT_TRUE(CommittedReachesEnd(stack.Kafka(), "echo", "runnel.echo", seconds(10)));
  EXPECT_TRUE(WaitFor(
      [&] {
        const auto f = stack.FunctionStatus("echo");
        return f.value("desired", -1) == 0 && f.value("workers", nlohmann::json::array()).empty();
      },
      seconds(30), milliseconds(100)))
      << "back to zero after the idle period";
  std::filesystem::remove_all(broker_dir);
}

TEST(Autoscale, StatusFailsWithOneLineWhenNoStackRuns) {
  const auto dir = TempDir("no-stack");
  const auto r = RunCommand({RunnelBin(), "status", "--state-dir", dir.string()});
  EXPECT_EQ(r.exit_code, 5);  // no stack running (cli/src/exit_codes.hpp)
  EXPECT_THAT(r.err, HasSubstr("no running Runnel stack"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel::testing
