// runnel.yaml's function-level `batch` through the whole stack: `runnel up` on the embedded broker,
// its dispatcher and a real worker process, a burst published over Kafka, the outcomes read back
// from the results topic. What shows the batches is in the results: iot.ingest marks each event
// handled in a call of several with `"batch": {"events": N, ...}`.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "runnel/testing/stack_process.hpp"

namespace runnel::testing {
namespace {

TEST(FunctionBatch, ABurstRunsInFullBatchesOfTheConfiguredSize) {
  // Concurrency 8 x batch 50 is 400 events per worker, above the worker's default capacity (256):
  // the worker raises it (CAPACITY) and the dispatcher gives it the credit to fill its batches.
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
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::vector<std::pair<std::string, std::optional<std::string>>> events;  // no keys: any order
  for (int i = 0; i < 2000; ++i) {
    events.emplace_back(
        fmt::format(R"({{"device":"d{}","ts":{},"metrics":{{"temp":{}}}}})", i % 40, now_ms, 20 + i % 7),
        std::nullopt);
  }
  const auto ids = PublishEvents(stack.Kafka(), "iot.ingest", events);
  const auto outcomes = ReadOutcomes(stack.Kafka(), "iot.ingest.results", ids.size(), std::chrono::seconds(90));
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
  // The burst arrives far faster than a 200 ms window: most events travel in full batches. Per
  // event (the old credit rule) or per concurrency (8 at most) would fail this.
  EXPECT_GE(events_by_batch_size[50], static_cast<int>(ids.size()) / 2) << sizes;
  EXPECT_TRUE(CommittedReachesEnd(stack.Kafka(), "iot.ingest", "runnel.iot.ingest", std::chrono::seconds(10)));
}

}  // namespace
}  // namespace runnel::testing
