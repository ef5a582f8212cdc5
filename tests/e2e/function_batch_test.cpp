// runnel.yaml's function-level `batch` through the whole stack: `runnel up` on the embedded broker,
// its dispatcher and a real worker process, a burst published over Kafka, the outcomes read back
// from the results topic. What shows the batches is in the results: iot.ingest marks each event
// handled in a call of several with `"batch": {"events": N, ...}`.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "runnel/testing/child_process.hpp"
#include "runnel/testing/stack_process.hpp"

namespace runnel::testing {
namespace {

TEST(FunctionBatch, ABurstRunsInFullBatchesOfTheConfiguredSize) {
  // Concurrency 8 x batch 50 is 400 events per worker, above the worker's default capacity (256):
  // the worker raises it (CAPACITY). iot.ingest's calls are fast, so prefetch alone would also
  // give this worker enough credit; the test below is the one a credit of `concurrency` fails.
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: iot.ingest
    partitions: 4
    workers: 1
    concurrency: 8
    batch: {size: 50, window: 200ms}
    results_topic: iot.ingest.results
)");
  ASSERT_TRUE(stack.WaitForWorkers("iot.ingest", 1, std::chrono::seconds(20)));
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::vector<std::pair<std::string, std::optional<std::string>>> events;  // no keys: any order
  for (int i = 0; i < 2000; ++i) {
    events.emplace_back(
        fmt::format(R"({{"device":"d{}","ts":{},"metrics":{{"temp":{}}}}})", i % 40, now_ms, 20 + i % 7),
        std::nullopt);
  }
  const auto ids = PublishEvents(stack.Kafka(), "iot.ingest", events);
  const auto outcomes =
      ReadOutcomes(stack.Kafka(), "iot.ingest.results", ids.size(), std::chrono::seconds(90));
  ASSERT_EQ(outcomes.size(), ids.size());

  std::map<int, int> events_by_batch_size;  // batch size -> events handled in a call of that size
  for (const auto& o : outcomes) {
    ASSERT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    const auto result = nlohmann::json::parse(o.output);
    ASSERT_EQ(result["readings"]["accepted"], 1) << o.output;
    const int size = result.contains("batch") ? result["batch"]["events"].get<int>() : 1;
    ++events_by_batch_size[size];
  }
  std::string sizes;
  for (const auto& [size, count] : events_by_batch_size) sizes += fmt::format(" {}x{}", count, size);
  EXPECT_LE(events_by_batch_size.rbegin()->first, 50) << "a call got more than batch.size events:" << sizes;
  EXPECT_EQ(events_by_batch_size.rbegin()->first, 50)
      << "no call got a full batch: the worker held too few events (credit):" << sizes;
  // The burst arrives far faster than a 200 ms window: most events travel in full batches.
  EXPECT_GE(events_by_batch_size[50], static_cast<int>(ids.size()) / 2) << sizes;
  EXPECT_TRUE(
      CommittedReachesEnd(stack.Kafka(), "iot.ingest", "runnel.iot.ingest", std::chrono::seconds(10)));
}

// A slow batch call (300 ms, an exec program speaking the batch protocol): prefetch never grows
// the credit of a worker whose calls are this slow, so only the base credit (concurrency x batch
// size) lets a call hold more events than the worker runs calls at once.
TEST(FunctionBatch, SlowBatchCallsStillGetFullBatches) {
  const auto dir = TempDir("function-batch-exec");
  std::ofstream(dir / "batch.py") << R"(import json, os, sys, time
time.sleep(0.3)
size = int(os.environ["RUNNEL_BATCH"])
for line in sys.stdin:
    print(json.dumps({"id": json.loads(line)["id"], "output": {"batch": size}}))
)";
  StackProcess stack(fmt::format(R"(
heartbeat: 200ms
functions:
  - name: batched
    handler: exec:/usr/bin/python3 {}
    partitions: 2
    workers: 1
    concurrency: 4
    timeout: 20s
    batch: {{size: 50, window: 200ms}}
    results_topic: batched.results
)",
                                 (dir / "batch.py").string()));
  ASSERT_TRUE(stack.WaitForWorkers("batched", 1, std::chrono::seconds(20)));
  std::vector<std::pair<std::string, std::optional<std::string>>> events(600, {"x", std::nullopt});
  const auto ids = PublishEvents(stack.Kafka(), "batched", events);
  const auto outcomes = ReadOutcomes(stack.Kafka(), "batched.results", ids.size(), std::chrono::seconds(90));
  ASSERT_EQ(outcomes.size(), ids.size());
  std::map<int, int> events_by_batch_size;
  for (const auto& o : outcomes) {
    ASSERT_EQ(o.status, OutcomeStatus::kOk) << o.error;
    ++events_by_batch_size[nlohmann::json::parse(o.output)["batch"].get<int>()];
  }
  std::string sizes;
  for (const auto& [size, count] : events_by_batch_size) sizes += fmt::format(" {}x{}", count, size);
  EXPECT_LE(events_by_batch_size.rbegin()->first, 50) << sizes;
  // With the credit at concurrency (4) no call could hold more than 4 events.
  EXPECT_EQ(events_by_batch_size.rbegin()->first, 50) << sizes;
  EXPECT_GE(events_by_batch_size[50], static_cast<int>(ids.size()) / 2) << sizes;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel::testing
