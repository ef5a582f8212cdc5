// The per-worker metric families are labelled by slot, not by worker id: after many workers come
// and go the number of series stays bounded by the most that ran at once (docs/metrics.md). And
// the build-info gauge every stack serves.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "runnel/telemetry/stack_telemetry.hpp"
#include "runnel/telemetry/status_metrics.hpp"
#include "runnel/testing/http_get.hpp"

namespace runnel::telemetry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// A status snapshot of one function whose workers are `ids`.
nlohmann::json Snapshot(const std::string& function, const std::vector<std::string>& ids) {
  nlohmann::json workers = nlohmann::json::array();
  for (const auto& id : ids)
    workers.push_back({{"id", id}, {"rss_kb", 1024}, {"cpu_s", 0.5}, {"in_flight", 1}});
  return {{"functions", nlohmann::json::array({{{"name", function}, {"workers", workers}}})}};
}

// Every label set of `family` (as "k=v,k=v") in one collection.
std::set<std::string> SeriesOf(const std::vector<prometheus::MetricFamily>& families,
                               const std::string& family) {
  std::set<std::string> out;
  for (const auto& f : families) {
    if (f.name != family) continue;
    for (const auto& m : f.metric) {
      std::string key;
      for (const auto& l : m.label) key += l.name + "=" + l.value + ",";
      out.insert(key);
    }
  }
  return out;
}

TEST(WorkerSlots, SeriesStayBoundedWhileHundredsOfWorkersComeAndGo) {
  WorkerSlots slots;
  std::set<std::string> ever;  // every series any scrape served, as Prometheus would keep them
  int next_id = 1;
  std::vector<std::string> running;
  // 300 workers over 100 scrapes: at most 3 at once, each replaced after a few scrapes.
  for (int scrape = 0; scrape < 100; ++scrape) {
    if (running.size() == 3) running.erase(running.begin() + (scrape % 3));
    while (running.size() < 3) running.push_back(fmt::format("echo-{}", next_id++));
    const auto families = StatusMetrics(Snapshot("echo", running), &slots);
    for (const char* family : {"runnel_worker_resident_memory_bytes", "runnel_worker_cpu_seconds_total",
                               "runnel_worker_in_flight_events"}) {
      const auto series = SeriesOf(families, family);
      EXPECT_EQ(series.size(), 3u) << family << " at scrape " << scrape;
      for (const auto& s : series) ever.insert(std::string(family) + "{" + s + "}");
    }
  }
  EXPECT_GT(next_id, 100) << "the test did not churn workers";
  // Three slots per family, however many workers there were: 9 series ever, not 3 x 100.
  EXPECT_EQ(ever.size(), 9u);
  EXPECT_TRUE(ever.contains("runnel_worker_resident_memory_bytes{function=echo,slot=0,}"));
  EXPECT_TRUE(ever.contains("runnel_worker_in_flight_events{function=echo,slot=2,}"));
}

TEST(WorkerSlots, AWorkerKeepsItsSlotAndAReapedOnesSlotIsReusedLowestFirst) {
  WorkerSlots slots;
  EXPECT_THAT(slots.Assign("f", {"f-1", "f-2", "f-3"}), ElementsAre(0u, 1u, 2u));
  // f-2 was reaped: the others keep theirs, the newcomer takes the freed slot 1.
  EXPECT_THAT(slots.Assign("f", {"f-3", "f-1", "f-4"}), ElementsAre(2u, 0u, 1u));
  EXPECT_THAT(slots.Assign("f", {"f-4"}), ElementsAre(1u));
  EXPECT_THAT(slots.Assign("f", {"f-5", "f-4", "f-6"}), ElementsAre(0u, 1u, 2u));
  // Slots are per function.
  EXPECT_THAT(slots.Assign("g", {"g-9"}), ElementsAre(0u));
  // A function gone from the snapshot forgets its slots.
  slots.Retain({"g"});
  EXPECT_THAT(slots.Assign("f", {"f-7"}), ElementsAre(0u));
}

TEST(WorkerSlots, NoWorkerIdReachesALabel) {
  const auto families = StatusMetrics(Snapshot("thumbs", {"thumbs-41", "thumbs-42"}));
  for (const auto& f : families) {
    for (const auto& m : f.metric) {
      for (const auto& l : m.label) {
        EXPECT_NE(l.name, "worker") << f.name;
        EXPECT_THAT(l.value, ::testing::Not(HasSubstr("thumbs-4"))) << f.name;
      }
    }
  }
  EXPECT_EQ(SeriesOf(families, "runnel_worker_in_flight_events"),
            (std::set<std::string>{"function=thumbs,slot=0,", "function=thumbs,slot=1,"}));
}

TEST(BuildInfo, EveryStackServesItsVersionsAsAGaugeOfOne) {
  StackTelemetry telemetry(16);
  telemetry.Serve("127.0.0.1:0", [] { return nlohmann::json::object(); });
  const auto r = runnel::testing::HttpGet(telemetry.MetricsUrl());
  ASSERT_TRUE(r);
  EXPECT_THAT(r->body, HasSubstr("# TYPE runnel_build_info gauge"));
  const std::size_t at = r->body.find("\nrunnel_build_info{");
  ASSERT_NE(at, std::string::npos) << r->body;
  const std::string line = r->body.substr(at + 1, r->body.find('\n', at + 1) - at - 1);
  EXPECT_THAT(line, MatchesRegex(R"(runnel_build_info\{.*version="[0-9]+\.[0-9]+\.[0-9]+".*\} 1)"))
      << r->body;
  EXPECT_THAT(line, MatchesRegex(R"(.*librdkafka="[0-9]+\.[0-9]+\.[0-9]+.*".*)"));
}

}  // namespace
}  // namespace runnel::telemetry
