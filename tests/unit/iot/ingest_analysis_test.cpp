// iot.ingest arithmetic: window aggregates against a naive computation, lateness, thresholds,
// anomalies, batches and alert events.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "iot_harness.hpp"

namespace runnel::functions::iot {
namespace {

using testing::Harness;
using ::testing::HasSubstr;
using testing::kNow;
using testing::Line;
using testing::MakeEvent;
using Json = nlohmann::json;

TEST(IotIngestAggregates, MatchANaiveComputationOverShuffledReadings) {
  std::mt19937 rng(1234);
  std::normal_distribution<double> temp(20.0, 5.0);
  using Key = std::tuple<std::string, std::string, std::int64_t>;
  std::map<Key, std::vector<double>> naive;
  std::string payload;
  for (int i = 0; i < 5000; ++i) {
    const std::string device = fmt::format("dev-{:02}", rng() % 37);
    // Ten minutes of readings in random order, with values that stress cancellation (pressure).
    const std::int64_t ts = kNow - static_cast<std::int64_t>(rng() % 600'000);
    const double t = std::round(temp(rng) * 100) / 100;
    const double pressure = 101'325.0 + static_cast<double>(rng() % 1000) / 1000.0;
    payload += Line(device, ts, {{"temp", t}, {"pressure", pressure}});
    const std::int64_t window = (ts / 60'000) * 60'000;
    naive[{device, "temp", window}].push_back(t);
    naive[{device, "pressure", window}].push_back(pressure);
  }
  Harness h(Json{{"max_lateness_ms", 3'600'000}});
  const Json result = h.Run(payload);
  EXPECT_EQ(result["readings"]["accepted"], 5000);
  ASSERT_EQ(result["aggregates"].size(), naive.size());
  auto it = naive.begin();  // std::map order is the documented result order: device, metric, window
  for (const Json& a : result["aggregates"]) {
    const auto& [device, metric, window] = it->first;
    const std::vector<double>& values = it->second;
    ASSERT_EQ(a["device"], device);
    ASSERT_EQ(a["metric"], metric);
    ASSERT_EQ(a["window_start_ms"], window);
    EXPECT_EQ(a["count"], values.size());
    EXPECT_EQ(a["min"], *std::min_element(values.begin(), values.end()));
    EXPECT_EQ(a["max"], *std::max_element(values.begin(), values.end()));
    long double sum = 0;
    for (double v : values) sum += v;
    const double mean = static_cast<double>(sum / static_cast<long double>(values.size()));
    EXPECT_NEAR(a["mean"].get<double>(), mean, 1e-9 * std::max(1.0, std::abs(mean)));
    ++it;
  }
}

TEST(IotIngestAggregates, WindowsAlignToEpochMultiples) {
  Harness h(Json{{"window_ms", 60'000}});
  const Json result = h.Run(Line("d", kNow - 1, {{"v", 1}}) + Line("d", kNow, {{"v", 2}}) +
                            Line("d", kNow + 59'999, {{"v", 3}}) + Line("d", kNow + 60'000, {{"v", 4}}));
  ASSERT_EQ(result["aggregates"].size(), 3u);
  EXPECT_EQ(result["aggregates"][0]["window_start_ms"], kNow - 60'000);
  EXPECT_EQ(result["aggregates"][0]["count"], 1);
  EXPECT_EQ(result["aggregates"][1]["window_start_ms"], kNow);
  EXPECT_EQ(result["aggregates"][1]["count"], 2);
  EXPECT_EQ(result["aggregates"][1]["mean"], 2.5);
  EXPECT_EQ(result["aggregates"][2]["window_start_ms"], kNow + 60'000);
  EXPECT_EQ(result["window_ms"], 60'000);
}

TEST(IotIngestAggregates, BoolMetricsAggregateAsShareTrue) {
  Harness h;
  const Json result = h.Run(Line("d", kNow, {{"door", true}}) + Line("d", kNow + 1, {{"door", false}}) +
                            Line("d", kNow + 2, {{"door", true}}) + Line("d", kNow + 3, {{"door", true}}));
  ASSERT_EQ(result["aggregates"].size(), 1u);
  EXPECT_EQ(result["aggregates"][0]["mean"], 0.75);
  EXPECT_EQ(result["aggregates"][0]["min"], 0);
  EXPECT_EQ(result["aggregates"][0]["max"], 1);
}

TEST(IotIngestLateness, OutOfOrderIsFineAndTooOldIsLate) {
  Harness h(Json{{"max_lateness_ms", 300'000}, {"thresholds", {{"temp", {{"above", 80}}}}}});
  // Newest reading of dev-a is kNow; one at kNow - 300000 is just in time, one older is late.
  const Json result =
      h.Run(Line("dev-a", kNow - 120'000, {{"temp", 10}}) + Line("dev-a", kNow, {{"temp", 20}}) +
            Line("dev-a", kNow - 300'000, {{"temp", 30}}) + Line("dev-a", kNow - 300'001, {{"temp", 99}}) +
            // dev-b's newest is old, but lateness is per device
            Line("dev-b", kNow - 3'000'000, {{"temp", 5}}));
  EXPECT_EQ(result["readings"]["accepted"], 4);
  EXPECT_EQ(result["readings"]["late"], 1);
  EXPECT_EQ(result["readings"]["rejected"], 0);
  std::uint64_t counted = 0;
  for (const Json& a : result["aggregates"]) {
    counted += a["count"].get<std::uint64_t>();
    EXPECT_NE(a["max"], 99) << "a late reading must not reach the aggregates";
  }
  EXPECT_EQ(counted, 4u);
  // The late reading still alerts, marked late.
  ASSERT_EQ(result["alerts"].size(), 1u);
  EXPECT_EQ(result["alerts"][0]["value"], 99);
  EXPECT_EQ(result["alerts"][0]["late"], true);
  EXPECT_EQ(result["alerts"][0]["line"], 4);
}

TEST(IotIngestAlerts, ThresholdsAreStrict) {
  Harness h(Json{{"thresholds", {{"temp", {{"above", 80}, {"below", -10}}}, {"hum", {{"above", 90}}}}}});
  const Json result =
      h.Run(Line("d", kNow, {{"temp", 80}, {"hum", 95}}) + Line("d", kNow + 1, {{"temp", 80.5}}) +
            Line("d", kNow + 2, {{"temp", -10}}) + Line("d", kNow + 3, {{"temp", -10.5}}));
  ASSERT_EQ(result["alerts"].size(), 3u) << result["alerts"].dump();
  EXPECT_EQ(result["alerts"][0],
            Json::parse(R"({"device":"d","metric":"hum","ts":)" + std::to_string(kNow) +
                        R"(,"value":95,"condition":"above","threshold":90,"late":false,"line":1})"));
  EXPECT_EQ(result["alerts"][1]["value"], 80.5);
  EXPECT_EQ(result["alerts"][2]["condition"], "below");
  EXPECT_EQ(result["alerts"][2]["threshold"], -10);
  EXPECT_EQ(result["alerts_omitted"], 0);
}

TEST(IotIngestAlerts, EmittedToTheAlertsTopicWhenSet) {
  Harness h(Json{{"alerts_topic", "sensor-alerts"}, {"thresholds", {{"temp", {{"above", 80}}}}}});
  h.Run(Line("boiler-7", kNow, {{"temp", 81}}) + Line("boiler-7", kNow + 1, {{"temp", 20}}));
  ASSERT_EQ(h.Ctx().emitted.size(), 1u);
  const auto& emitted = h.Ctx().emitted[0];
  EXPECT_EQ(emitted.topic, "sensor-alerts");
  EXPECT_EQ(emitted.key, "boiler-7");
  EXPECT_EQ(emitted.headers, (Headers{{"content-type", "application/json"}}));
  const Json alert = Json::parse(emitted.payload);
  EXPECT_EQ(alert["type"], "threshold");
  EXPECT_EQ(alert["value"], 81);
  EXPECT_EQ(alert["event"], "ev-1");
}

// 20 readings around 20.0 (stddev ~0.3) and one at 35: only the outlier is flagged, against the
// other readings of its window.
std::string AnomalyPayload(int normal, double outlier) {
  std::string payload;
  for (int i = 0; i < normal; ++i) payload += Line("d", kNow + i, {{"temp", 20.0 + 0.1 * (i % 7 - 3)}});
  payload += Line("d", kNow + normal, {{"temp", outlier}});
  return payload;
}

TEST(IotIngestAnomaly, OutlierIsFlaggedAgainstTheOthersInItsWindow) {
  Harness h(Json{{"anomaly", {{"z", 3.0}, {"min_samples", 10}}}});
  const Json result = h.Run(AnomalyPayload(20, 35.0));
  ASSERT_EQ(result["anomalies"].size(), 1u) << result["anomalies"].dump();
  const Json& anomaly = result["anomalies"][0];
  EXPECT_EQ(anomaly["value"], 35);
  EXPECT_EQ(anomaly["line"], 21);
  EXPECT_EQ(anomaly["baseline"]["count"], 20);
  double mean = 0;
  for (int i = 0; i < 20; ++i) mean += 20.0 + 0.1 * (i % 7 - 3);
  mean /= 20;
  double m2 = 0;
  for (int i = 0; i < 20; ++i) m2 += std::pow(20.0 + 0.1 * (i % 7 - 3) - mean, 2);
  const double stddev = std::sqrt(m2 / 19);
  EXPECT_NEAR(anomaly["baseline"]["mean"].get<double>(), mean, 1e-9);
  EXPECT_NEAR(anomaly["baseline"]["stddev"].get<double>(), stddev, 1e-9);
  EXPECT_NEAR(anomaly["z"].get<double>(), (35.0 - mean) / stddev, 1e-6);
}

// Every reading's leave-one-out z computed naively, against what the function flags (it skips
// groups and samples that cannot be anomalies without computing their z).
TEST(IotIngestAnomaly, MatchANaiveLeaveOneOutComputation) {
  std::mt19937 rng(77);
  std::normal_distribution<double> noise(20.0, 1.0);
  std::uniform_real_distribution<double> jump(1.5, 6.0);
  std::map<std::string, std::vector<std::pair<int, double>>> by_device;  // line, value
  std::string payload;
  for (int line = 1; line <= 3000; ++line) {
    const std::string device = fmt::format("dev-{:02}", rng() % 40);
    double value = std::round(noise(rng) * 1000) / 1000;
    if (rng() % 25 == 0) value += (rng() % 2 == 0 ? 1 : -1) * jump(rng);
    payload += Line(device, kNow + line, {{"temp", value}});
    by_device[device].emplace_back(line, value);
  }
  for (const double z : {2.0, 2.5, 3.0}) {
    std::set<int> expected;
    for (const auto& [device, readings] : by_device) {
      for (std::size_t i = 0; i < readings.size(); ++i) {
        double mean = 0;
        for (std::size_t j = 0; j < readings.size(); ++j) mean += j == i ? 0 : readings[j].second;
        mean /= static_cast<double>(readings.size() - 1);
        double m2 = 0;
        for (std::size_t j = 0; j < readings.size(); ++j)
          m2 += j == i ? 0 : std::pow(readings[j].second - mean, 2);
        const double naive_z =
            (readings[i].second - mean) / std::sqrt(m2 / static_cast<double>(readings.size() - 2));
        ASSERT_GT(std::abs(std::abs(naive_z) - z), 1e-6) << "a borderline case; pick another seed";
        if (std::abs(naive_z) > z) expected.insert(readings[i].first);
      }
    }
    const Json result = Harness(Json{{"anomaly", {{"z", z}, {"min_samples", 10}}}}).Run(payload);
    std::set<int> flagged;
    for (const Json& anomaly : result["anomalies"]) flagged.insert(anomaly["line"].get<int>());
    EXPECT_EQ(flagged, expected) << "z " << z;
    EXPECT_GT(expected.size(), 10u) << "z " << z;
    EXPECT_EQ(result["anomalies_omitted"], 0);
  }
}

TEST(IotIngestAnomaly, NeedsMinSamplesAndCanBeDisabled) {
  EXPECT_TRUE(
      Harness(Json{{"anomaly", {{"min_samples", 25}}}}).Run(AnomalyPayload(20, 35.0))["anomalies"].empty());
  EXPECT_TRUE(Harness(Json{{"anomaly", false}}).Run(AnomalyPayload(20, 35.0))["anomalies"].empty());
  EXPECT_TRUE(Harness(Json{{"anomaly", {{"z", 100.0}}}}).Run(AnomalyPayload(20, 35.0))["anomalies"].empty());
}

TEST(IotIngestAnomaly, ZeroVarianceBaselineFlagsAnyDepartureWithNullZ) {
  std::string payload;
  for (int i = 0; i < 12; ++i) payload += Line("d", kNow + i, {{"temp", 101325.0}});
  payload += Line("d", kNow + 12, {{"temp", 101325.5}});
  const Json result = Harness().Run(payload);
  ASSERT_EQ(result["anomalies"].size(), 1u);
  EXPECT_TRUE(result["anomalies"][0]["z"].is_null());
  EXPECT_EQ(result["anomalies"][0]["baseline"]["stddev"], 0);
}

TEST(IotIngestBatch, DeclaresLambdasDefaultBatch) {
  // The default when runnel.yaml's `batch` key says nothing; the key overrides it (EffectiveBatch).
  EXPECT_TRUE(Harness().Fn().TakesBatches());
  EXPECT_EQ(Harness().Fn().Batch().size, 100u);
  EXPECT_EQ(Harness().Fn().Batch().window, std::chrono::milliseconds(500));
}

TEST(IotIngestBatch, AggregatesSpanTheBatchAndEachEventGetsOneOutcome) {
  Harness h(Json{{"max_lateness_ms", 300'000}, {"thresholds", {{"temp", {{"above", 50}}}}}});
  const std::vector<Event> events{
      MakeEvent("\x01\x02 garbage", "e0"),
      MakeEvent(Line("a", kNow - 400'000, {{"temp", 60}}) + Line("a", kNow + 1000, {{"temp", 10}}), "e1"),
      MakeEvent("{oops}\n" + Line("a", kNow + 2000, {{"temp", 20}}) + Line("b", kNow, {{"temp", 70}}), "e2"),
  };
  const std::vector<ResultOrError> outcomes = h.Batch(events);
  ASSERT_EQ(outcomes.size(), 3u);
  ASSERT_TRUE(outcomes[0].error);
  EXPECT_EQ(outcomes[0].error->Code(), Errc::kBadInput);
  EXPECT_THAT(outcomes[0].error->what(), HasSubstr("no valid reading"));
  ASSERT_TRUE(outcomes[1].result && outcomes[2].result);

  const Json first = Json::parse(outcomes[1].result->output);
  const Json second = Json::parse(outcomes[2].result->output);
  // e1's old reading is late against a's newest reading, which arrived in e2.
  EXPECT_EQ(first["readings"], Json::parse(R"({"accepted":1,"rejected":0,"late":1})"));
  EXPECT_EQ(second["readings"], Json::parse(R"({"accepted":2,"rejected":1,"late":0})"));
  // e1 is the first successful event: it lists the batch's aggregates; e2 points at it.
  EXPECT_EQ(first["batch"], Json::parse(R"({"events":3,"index":1,"aggregates_in":"e1"})"));
  EXPECT_EQ(second["batch"], Json::parse(R"({"events":3,"index":2,"aggregates_in":"e1"})"));
  EXPECT_TRUE(second["aggregates"].empty());
  ASSERT_EQ(first["aggregates"].size(), 2u);
  EXPECT_EQ(first["aggregates"][0]["device"], "a");
  EXPECT_EQ(first["aggregates"][0]["count"], 2);  // kNow+1000 (e1) and kNow+2000 (e2)
  EXPECT_EQ(first["aggregates"][0]["mean"], 15);
  EXPECT_EQ(first["aggregates"][1]["device"], "b");
  // Alerts stay with the event that carried the reading.
  ASSERT_EQ(first["alerts"].size(), 1u);
  EXPECT_EQ(first["alerts"][0]["late"], true);
  ASSERT_EQ(second["alerts"].size(), 1u);
  EXPECT_EQ(second["alerts"][0]["device"], "b");
  EXPECT_EQ(second["alerts"][0]["line"], 3);
}

TEST(IotIngestBatch, HandleOfOneEventHasNoBatchField) {
  const Json result = Harness().Run(Line("a", kNow, {{"temp", 1}}));
  EXPECT_FALSE(result.contains("batch"));
}

TEST(IotIngestRegistry, BuiltinsKnowIotIngestAndRejectBadParams) {
  ASSERT_TRUE(Builtins().Contains("iot.ingest"));
  EXPECT_NE(Builtins().Create("iot.ingest", {}), nullptr);
  try {
    Builtins().Create("iot.ingest", {{"window_ms", "soon"}});
    FAIL();
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.Code(), Errc::kBadConfig);
    EXPECT_THAT(e.what(), HasSubstr("params.window_ms"));
  }
}

}  // namespace
}  // namespace runnel::functions::iot
