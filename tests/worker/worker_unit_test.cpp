// In-process tests of the worker's parts: the watchdog's bookkeeping, the fiber task pool (outcomes,
// error mapping, batching, output files), and a WorkerSession against a real ROUTER socket.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <thread>

#include "dispatcher_peer.hpp"
#include "runnel/testing/child_process.hpp"
#include "runnel/testing/wait.hpp"
#include "runnel/workers/proc_stats.hpp"
#include "runnel/workers/task_pool.hpp"
#include "runnel/workers/watchdog.hpp"
#include "runnel/workers/worker_session.hpp"

namespace runnel::workers {
namespace {

using namespace std::chrono_literals;
using functions::Errc;
using testing::WaitFor;

TEST(Watchdog, ReportsOnlyCallsPastBudgetPlusGrace) {
  Watchdog dog(100ms);
  const auto t0 = Watchdog::Clock::now();
  dog.Start(1, 300ms, t0);
  dog.Start(2, 0ms, t0);  // no budget: never overdue
  dog.Start(3, 1000ms, t0);
  EXPECT_EQ(dog.Running(), 3u);
  EXPECT_FALSE(dog.FirstOverdue(t0 + 399ms));
  auto overdue = dog.FirstOverdue(t0 + 400ms);
  ASSERT_TRUE(overdue);
  EXPECT_EQ(overdue->token, 1u);
  EXPECT_EQ(overdue->budget, 300ms);
  EXPECT_EQ(overdue->ran, 400ms);
  EXPECT_EQ(dog.NextDeadline(), t0 + 400ms);
  dog.Finish(1);
  EXPECT_EQ(dog.NextDeadline(), t0 + 1100ms);
  EXPECT_FALSE(dog.FirstOverdue(t0 + 1099ms));
  EXPECT_EQ(dog.FirstOverdue(t0 + 2s)->token, 3u);
  dog.Finish(3);
  dog.Finish(2);
  EXPECT_FALSE(dog.NextDeadline());
  EXPECT_EQ(dog.Running(), 0u);
}

TEST(ProcStats, ReadsResidentMemory) { EXPECT_GT(RssKb(), 0u); }

// A function whose behaviour the payload chooses, to reach every branch of the pool.
class Scripted final : public functions::Function {
 public:
  functions::Result Handle(const functions::Event& event, functions::Context& ctx) override {
    if (event.payload == "throw-runtime") throw std::runtime_error("boom");
    if (event.payload == "throw-int") throw 7;
    if (event.payload == "limit") throw functions::FunctionError(Errc::kLimitExceeded, "too big");
    if (event.payload == "emit") ctx.Emit("next", "", "x", {});
    if (event.payload == "file") {
      auto file = ctx.Outputs().Write("scripted", event.envelope.id, "out.txt", "hello", {{"lines", 1}});
      return functions::Result{"{}", "application/json", {file}};
    }
    if (event.payload == "deadline") {
      return functions::Result{
          ctx.Deadline() == std::chrono::steady_clock::time_point::max() ? "none" : "set", "text/plain", {}};
    }
    std::string out = event.payload;
    out.append("|").append(event.envelope.id);
    return functions::Result{out, "text/plain", {}};
  }
};

PendingTask MakeTask(std::uint64_t token, std::string payload, std::chrono::milliseconds budget = 0ms) {
  PendingTask task;
  task.token = token;
  task.budget = budget;
  task.event.envelope.id = "ev-" + std::to_string(token);
  task.event.payload = std::move(payload);
  return task;
}

std::map<std::uint64_t, CompletedTask> Drain(TaskPool& pool, std::size_t count) {
  std::map<std::uint64_t, CompletedTask> results;
  WaitFor(
      [&] {
        for (auto& done : pool.TakeCompleted()) results[done.header.token] = std::move(done);
        return results.size() >= count;
      },
      10s);
  return results;
}

TEST(TaskPool, TurnsEveryOutcomeIntoAResult) {
  Scripted function;
  Watchdog dog;
  const auto dir = testing::TempDir("pool");
  PoolOptions options;
  options.function_name = "scripted";
  options.output_dir = dir;
  options.fibers = 4;
  TaskPool pool(function, options, dog);
  std::vector<PendingTask> tasks;
  tasks.push_back(MakeTask(1, "plain"));
  tasks.push_back(MakeTask(2, "throw-runtime"));
  tasks.push_back(MakeTask(3, "throw-int"));
  tasks.push_back(MakeTask(4, "limit"));
  tasks.push_back(MakeTask(5, "emit"));
  tasks.push_back(MakeTask(6, "file"));
  tasks.push_back(MakeTask(7, "deadline", 5s));
  tasks.push_back(MakeTask(8, "deadline"));
  PendingTask late = MakeTask(9, "plain");
  late.event.envelope.deadline_ms = 1;  // 1970: already past
  tasks.push_back(std::move(late));
  for (auto& task : tasks) ASSERT_TRUE(pool.TrySubmit(task));

  auto results = Drain(pool, tasks.size());
  ASSERT_EQ(results.size(), tasks.size());
  EXPECT_EQ(results[1].header.status, wire::ResultStatus::kOk);
  EXPECT_EQ(results[1].output, "plain|ev-1");
  EXPECT_EQ(results[1].header.content_type, "text/plain");
  EXPECT_EQ(results[2].header.error_code, static_cast<std::uint8_t>(Errc::kInternal));
  EXPECT_EQ(results[2].header.error, "boom");
  EXPECT_EQ(results[3].header.error_code, static_cast<std::uint8_t>(Errc::kInternal));
  EXPECT_EQ(results[4].header.error_code, static_cast<std::uint8_t>(Errc::kLimitExceeded));
  // Emitted events travel with the successful result, for the dispatcher to publish.
  ASSERT_EQ(results[5].header.status, wire::ResultStatus::kOk) << results[5].header.error;
  ASSERT_EQ(results[5].header.emitted.size(), 1u);
  EXPECT_EQ(results[5].header.emitted[0].topic, "next");
  EXPECT_FALSE(results[5].header.emitted[0].has_key);
  EXPECT_EQ(results[5].header.emitted[0].payload, "x");
  ASSERT_EQ(results[6].header.status, wire::ResultStatus::kOk) << results[6].header.error;
  const auto files = nlohmann::json::parse(results[6].header.files_json);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]["path"], (dir / "scripted" / "ev-6" / "out.txt").string());
  EXPECT_EQ(files[0]["bytes"], 5);
  EXPECT_EQ(files[0]["facts"]["lines"], 1);
  EXPECT_EQ(files[0]["stored"], "output_dir") << "without WELCOME's outputs, files stay in output_dir";
  EXPECT_FALSE(files[0].contains("url"));
  EXPECT_EQ(results[7].output, "set");
  EXPECT_EQ(results[8].output, "none");
  EXPECT_EQ(results[9].header.error_code, static_cast<std::uint8_t>(Errc::kTimeout));
  EXPECT_EQ(dog.Running(), 0u);
  std::filesystem::remove_all(dir);
}

// Takes batches (the pool decides their size); records the batch sizes it saw.
class Batching final : public functions::Function {
 public:
  functions::Result Handle(const functions::Event& event, functions::Context&) override {
    return functions::Result{event.payload, "text/plain", {}};
  }
  bool TakesBatches() const override { return true; }
  std::vector<functions::ResultOrError> HandleBatch(std::span<const functions::Event> events,
                                                    functions::Context& ctx) override {
    {
      std::lock_guard lock(mutex_);
      sizes_.push_back(events.size());
    }
    auto outcomes = Function::HandleBatch(events, ctx);
    if (events.size() > 1)
      outcomes[1] = {std::nullopt, functions::FunctionError(Errc::kBadInput, "second is bad")};
    return outcomes;
  }
  std::vector<std::size_t> Sizes() {
    std::lock_guard lock(mutex_);
    return sizes_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::size_t> sizes_;
};

TEST(TaskPool, GroupsTasksForBatchFunctions) {
  Batching function;
  Watchdog dog;
  PoolOptions options;
  options.fibers = 1;
  options.batch = {4, std::chrono::milliseconds(60'000)};
  TaskPool pool(function, options, dog);
  // The window is a minute, so each batch closes only when it has four events.
  for (std::uint64_t t = 1; t <= 8; ++t) {
    auto task = MakeTask(t, fmt::format("p{}", t));
    ASSERT_TRUE(pool.TrySubmit(task));
  }
  auto results = Drain(pool, 8);
  ASSERT_EQ(results.size(), 8u);
  EXPECT_EQ(function.Sizes(), (std::vector<std::size_t>{4, 4}));
  EXPECT_EQ(results[1].output, "p1");
  EXPECT_EQ(results[2].header.error_code, static_cast<std::uint8_t>(Errc::kBadInput));
  EXPECT_EQ(results[6].header.error_code, static_cast<std::uint8_t>(Errc::kBadInput));
  EXPECT_EQ(results[8].output, "p8");
}

TEST(TaskPool, IdleFibersDoNotSplitABurstIntoPartialBatches) {
  Batching function;
  Watchdog dog;
  PoolOptions options;
  options.fibers = 4;
  options.threads = 2;
  // A window longer than Drain waits: a batch that is not full when the burst ends never closes in
  // time, so only batches filled one after another pass.
  options.batch = {4, std::chrono::milliseconds(60'000)};
  TaskPool pool(function, options, dog);
  // Tasks arrive one by one, each taken before the next comes (as a worker's I/O thread feeds its
  // fibers): idle fibers taking turns would each start a batch of their own.
  for (std::uint64_t t = 1; t <= 16; ++t) {
    auto task = MakeTask(t, fmt::format("p{}", t));
    ASSERT_TRUE(pool.TrySubmit(task));
    ASSERT_TRUE(WaitFor([&] { return pool.Waiting() == 0; }, 10s)) << "task " << t << " was never taken";
  }
  EXPECT_EQ(Drain(pool, 16).size(), 16u);
  EXPECT_EQ(function.Sizes(), (std::vector<std::size_t>{4, 4, 4, 4}));
}

// A batch function whose every call takes at least kCall.
class SlowBatching final : public functions::Function {
 public:
  static constexpr std::chrono::milliseconds kCall{40};
  functions::Result Handle(const functions::Event& event, functions::Context&) override {
    return functions::Result{event.payload, "text/plain", {}};
  }
  bool TakesBatches() const override { return true; }
  std::vector<functions::ResultOrError> HandleBatch(std::span<const functions::Event> events,
                                                    functions::Context& ctx) override {
    std::this_thread::sleep_for(kCall);  // the function's own work, not a wait for the test
    return Function::HandleBatch(events, ctx);
  }
};

// The dispatcher's prefetch and the autoscaler read a result's duration as the time its event
// took; reporting the whole call for every event of a batch would count the call once per event.
TEST(TaskPool, EachEventOfABatchReportsItsShareOfTheCall) {
  SlowBatching function;
  Watchdog dog;
  PoolOptions options;
  options.fibers = 1;
  options.batch = {8, std::chrono::milliseconds(60'000)};
  TaskPool pool(function, options, dog);
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t t = 1; t <= 8; ++t) {
    auto task = MakeTask(t, fmt::format("p{}", t));
    ASSERT_TRUE(pool.TrySubmit(task));
  }
  const auto results = Drain(pool, 8);
  const auto elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(results.size(), 8u);
  std::int64_t sum_us = 0;
  for (const auto& [token, done] : results) {
    EXPECT_GE(done.header.duration_us, std::chrono::microseconds(SlowBatching::kCall).count() / 8) << token;
    sum_us += done.header.duration_us;
  }
  EXPECT_LE(sum_us, elapsed_us) << "the events of one call reported more time than has passed";
}

TEST(TaskPool, SharesFibersAcrossThreads) {
  auto function = functions::Builtins().Create("sleep", {{"ms", 1}});
  Watchdog dog;
  PoolOptions options;
  options.fibers = 16;
  options.threads = 4;
  TaskPool pool(*function, options, dog);
  std::size_t submitted = 0;
  std::map<std::uint64_t, CompletedTask> results;
  // More tasks than the queue holds: keep submitting as room appears.
  ASSERT_TRUE(WaitFor(
      [&] {
        while (submitted < 500) {
          auto task = MakeTask(submitted + 1, "x");
          if (!pool.TrySubmit(task)) break;
          ++submitted;
        }
        for (auto& done : pool.TakeCompleted()) results[done.header.token] = std::move(done);
        return results.size() == 500;
      },
      30s));
  for (const auto& [token, done] : results) EXPECT_EQ(done.header.status, wire::ResultStatus::kOk);
}

TEST(WorkerSession, ServesADispatcherInProcessUntilExit) {
  testing::DispatcherPeer peer;
  WorkerOptions options;
  options.function = "echo";
  options.dispatcher = peer.Endpoint();
  options.id = "in-process";
  options.capacity = 4;
  options.handle_signals = false;
  options.apply_memory_limit = false;
  WorkerSession session(options);
  SessionEnd end;
  std::thread io([&] { end = session.Run(); });
  auto hello = peer.Handshake("echo");
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->Json()["capacity"], 4);
  peer.SendTasks(hello->identity, {{testing::DispatcherPeer::Task(1), "a"},
                                   {testing::DispatcherPeer::Task(2), "b"},
                                   {testing::DispatcherPeer::Task(3, 0, {{"runnel-id", "given"}}), "c"}});
  std::map<std::uint64_t, testing::DispatcherPeer::Result> results;
  ASSERT_TRUE(WaitFor(
      [&] {
        if (auto m = peer.Expect(wire::cmd::kResults, 100ms)) {
          for (auto& r : testing::DispatcherPeer::DecodeResults(*m)) results[r.header.token] = r;
        }
        return results.size() == 3;
      },
      10s));
  EXPECT_EQ(results[1].output, "a");
  EXPECT_EQ(results[3].output, "c");
  peer.Send(hello->identity, wire::cmd::kExit, {R"({"reason":"test over"})"});
  io.join();
  EXPECT_EQ(end.exit_code, 3);
  EXPECT_NE(end.reason.find("test over"), std::string::npos);
  ASSERT_TRUE(peer.Expect(wire::cmd::kBye, 5s));
}

}  // namespace
}  // namespace runnel::workers
