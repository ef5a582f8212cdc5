// How the autoscaler's local backend starts workers, through a real `runnel up`: the standby
// process that a start wakes instead of running fork+exec, its replacement, the fallback to
// fork+exec when it dies, and `standby_workers: false`. Also the status socket polled in a tight
// loop while events flow (the stall once blamed on it was a use-after-free in the bench's client).
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "runnel/core/envelope.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

std::string Comm(int pid) {
  std::string name;
  std::getline(std::ifstream(fmt::format("/proc/{}/comm", pid)), name);
  return name;
}

// Publishes one event with `producer`, returns its id.
std::string PublishOne(kafka::Producer& producer, const std::string& topic, const std::string& payload) {
  Envelope env;
  env.id = NewEventId();
  const auto delivery =
      producer.ProduceSync({topic, kafka::kAnyPartition, std::nullopt, payload, env.Encode()});
  EXPECT_TRUE(delivery.Ok());
  return env.id;
}

// Waits until echo's status shows a standby process ready; `f` holds the last status read.
bool WaitForReadyStandby(const StackProcess& stack, nlohmann::json& f) {
  return WaitFor(
      [&] {
        f = stack.FunctionStatus("echo");
        return f.contains("standby") && f["standby"].value("state", "") == "ready";
      },
      seconds(20), milliseconds(50));
}

bool OkOutcomeFor(const std::vector<Outcome>& outcomes, const std::string& id) {
  return std::any_of(outcomes.begin(), outcomes.end(),
                     [&](const Outcome& o) { return o.id == id && o.status == OutcomeStatus::kOk; });
}

constexpr const char* kEchoFromZero = R"(
heartbeat: 200ms
functions:
  - name: echo
    partitions: 1
    results_topic: echo.results
    scaling: {min: 0, max: 1, idle_to_zero: 300ms}
)";

TEST(AutoscaleStart, AStandbyProcessStartsTheFirstWorkerAndIsReplaced) {
  StackProcess stack(kEchoFromZero);
  nlohmann::json f;
  ASSERT_TRUE(WaitForReadyStandby(stack, f)) << f.dump();
  const int standby_pid = f["standby"]["pid"];
  ASSERT_GT(standby_pid, 0);
  // Loaded and waiting under its own name, no worker yet (tests and ps tell them apart by it).
  ASSERT_TRUE(WaitFor([&] { return Comm(standby_pid) == "runnel-standby"; }, seconds(10), milliseconds(10)));
  EXPECT_TRUE(stack.WorkerPids("echo").empty());
  EXPECT_TRUE(f["workers"].empty());

  const auto ids = PublishEvents(stack.Kafka(), "echo", {{"hello", std::nullopt}});
  const auto outcomes = ReadOutcomes(stack.Kafka(), "echo.results", 1, seconds(20));
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(OkOutcomeFor(outcomes, ids.at(0)));
  // The worker that served it is the standby process, now named as a worker, with its own log.
  const auto log = stack.Process().Stderr();
  EXPECT_THAT(log, HasSubstr(fmt::format("started worker echo-1 (pid {}, from standby)", standby_pid)));
  EXPECT_THAT(log, HasSubstr(fmt::format("dispatcher echo: worker echo-1 (pid {}) joined", standby_pid)));
  std::ifstream worker_log(stack.StateDir() / "logs" / "echo" / "echo-1.log");
  std::stringstream text;
  text << worker_log.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("worker echo-1 runs 'echo'"));
  // Another standby takes its place, and the worker still goes back to zero.
  ASSERT_TRUE(WaitFor(
      [&] {
        f = stack.FunctionStatus("echo");
        return f.contains("standby") && f["standby"].value("state", "") == "ready" &&
               f["standby"].value("pid", 0) != standby_pid && f["standby"].value("used", 0) == 1 &&
               f.value("desired", -1) == 0 && f["workers"].empty();
      },
      seconds(20), milliseconds(50)))
      << f.dump();
  EXPECT_EQ(f["standby"]["exec_starts"], 0);
  EXPECT_EQ(f["standby"]["ended"], 0);
  EXPECT_GT(f["standby"].value("rss_kb", 0), 0);
  EXPECT_TRUE(stack.WorkerPids("echo").empty());
}

TEST(AutoscaleStart, WhenTheStandbyDiesWorkersStartByExecAndItIsReplaced) {
  StackProcess stack(kEchoFromZero);
  nlohmann::json f;
  ASSERT_TRUE(WaitForReadyStandby(stack, f)) << f.dump();
  const int standby_pid = f["standby"]["pid"];
  ASSERT_EQ(::kill(standby_pid, SIGKILL), 0);
  // Seen at the next tick: logged, counted, and replaced after the backoff.
  ASSERT_TRUE(WaitFor(
      [&] {
        f = stack.FunctionStatus("echo");
        return f.contains("standby") && f["standby"].value("ended", 0) == 1;
      },
      seconds(20), milliseconds(20)))
      << f.dump();
  EXPECT_EQ(f["standby"]["last_exit"], "signal 9");
  EXPECT_THAT(stack.Process().Stderr(),
              HasSubstr("ended unused (signal 9); workers of echo start by fork+exec"));
  // An event meanwhile or after still gets its worker and its result.
  const auto ids = PublishEvents(stack.Kafka(), "echo", {{"after", std::nullopt}});
  const auto outcomes = ReadOutcomes(stack.Kafka(), "echo.results", 1, seconds(20));
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(OkOutcomeFor(outcomes, ids.at(0)));
  ASSERT_TRUE(WaitFor(
      [&] {
        f = stack.FunctionStatus("echo");
        return f["standby"].value("state", "") == "ready" && f["standby"].value("pid", 0) != standby_pid &&
               f["standby"].value("pid", 0) > 0;
      },
      seconds(20), milliseconds(50)))
      << f.dump();
}

TEST(AutoscaleStart, WithoutStandbyWorkersEveryStartIsAnExec) {
  StackProcess stack(std::string(kEchoFromZero) + "standby_workers: false\n");
  auto f = stack.FunctionStatus("echo");
  ASSERT_FALSE(f.empty()) << "runnel status failed";
  EXPECT_FALSE(f.contains("standby")) << f.dump();
  const auto ids = PublishEvents(stack.Kafka(), "echo", {{"hello", std::nullopt}});
  const auto outcomes = ReadOutcomes(stack.Kafka(), "echo.results", 1, seconds(20));
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(OkOutcomeFor(outcomes, ids.at(0)));
  EXPECT_THAT(stack.Process().Stderr(), ::testing::Not(HasSubstr("from standby")));
}

// Regression: status requests as fast as a client can send them, while events flow, across an
// idle period that takes the function to zero and back, with one producer kept throughout. Every
// event gets its result and every request its answer.
TEST(AutoscaleStart, StatusPolledInATightLoopWhileEventsFlowDelaysNothing) {
  StackProcess stack(kEchoFromZero);
  const std::string endpoint = stack.Endpoints()["control"];
  std::atomic<bool> stop{false};
  std::atomic<int> answers{0}, bad_answers{0}, unanswered{0};
  std::thread poller([&] {
    zmq::context_t ctx(1);
    while (!stop.load()) {
      zmq::socket_t req(ctx, zmq::socket_type::req);  // a new client each time, as `runnel status`
      req.set(zmq::sockopt::linger, 0);
      stack.Secure(req);
      req.connect(endpoint);
      req.send(zmq::str_buffer(R"({"op":"status"})"), zmq::send_flags::none);
      zmq::pollitem_t items[] = {{req.handle(), 0, ZMQ_POLLIN, 0}};
      if (zmq::poll(items, 1, milliseconds(2000)) == 0) {
        ++unanswered;
        continue;
      }
      zmq::message_t reply;
      (void)req.recv(reply);
      const auto status = nlohmann::json::parse(reply.to_string_view(), nullptr, false);
      const bool listed = status.is_object() && status.contains("functions") &&
                          status["functions"].size() == 1 &&
                          status["functions"][0].value("name", "") == "echo";
      ++(listed ? answers : bad_answers);
    }
  });
  kafka::Producer producer(stack.Kafka());
  std::vector<std::string> ids;
  std::size_t expected = 0;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 200; ++i) ids.push_back(PublishOne(producer, "echo", fmt::format("event {}", i)));
    expected += 200;
    const auto outcomes = ReadOutcomes(stack.Kafka(), "echo.results", expected, seconds(30));
    ASSERT_EQ(outcomes.size(), expected) << "round " << round;
    // Idle: back to zero while the polling goes on, then the next round wakes it again.
    nlohmann::json f;
    ASSERT_TRUE(WaitFor(
        [&] {
          f = stack.FunctionStatus("echo");
          return f.value("desired", -1) == 0 && f.value("workers", nlohmann::json::array()).empty();
        },
        seconds(20), milliseconds(50)))
        << f.dump();
  }
  stop = true;
  poller.join();
  const auto outcomes = ReadOutcomes(stack.Kafka(), "echo.results", expected, seconds(10));
  std::map<std::string, int> count;
  for (const auto& o : outcomes) {
    ++count[o.id];
    EXPECT_EQ(o.status, OutcomeStatus::kOk) << o.error;
  }
  for (const auto& id : ids) EXPECT_EQ(count[id], 1) << "event " << id;
  EXPECT_GT(answers.load(), 100) << "the status socket answered too rarely to have been exercised";
  EXPECT_EQ(bad_answers.load(), 0);
  EXPECT_EQ(unanswered.load(), 0);
}

}  // namespace
}  // namespace runnel::testing
