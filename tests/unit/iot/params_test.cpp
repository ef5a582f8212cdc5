// iot.ingest params: defaults, and every bad key is a kBadConfig error that names it.
#include "iot/params.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runnel/functions/function.hpp"

namespace runnel::functions::iot {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

TEST(IotParams, Defaults) {
  const IngestParams p = ParseIngestParams(Json::object());
  EXPECT_EQ(p.window_ms, 60'000);
  EXPECT_EQ(p.max_lateness_ms, 300'000);
  EXPECT_EQ(p.max_future_ms, 300'000);
  EXPECT_EQ(p.max_line_bytes, 65'536u);
  EXPECT_EQ(p.max_errors, 100u);
  EXPECT_TRUE(p.allow_unknown_metrics);
  EXPECT_TRUE(p.anomaly_enabled);
  EXPECT_EQ(p.anomaly_z, 3.0);
  EXPECT_EQ(p.anomaly_min_samples, 10u);
  EXPECT_TRUE(p.alerts_topic.empty());
}

TEST(IotParams, FullSchema) {
  const IngestParams p = ParseIngestParams(Json::parse(R"({
    "schema": {"required": ["device", "ts", "temp"], "allow_unknown_metrics": false,
               "metrics": {"temp": {"type": "number", "min": -50, "max": 150}, "door": {"type": "bool"}}},
    "thresholds": {"temp": {"above": 80, "below": -10}},
    "anomaly": {"z": 2.5, "min_samples": 4}, "alerts_topic": "alerts"})"));
  ASSERT_EQ(p.metrics.size(), 2u);
  EXPECT_EQ(p.metrics[0].name, "door");
  EXPECT_EQ(p.metrics[0].type, MetricType::kBool);
  EXPECT_EQ(p.metrics[1].max, 150);
  EXPECT_EQ(p.required, std::vector<std::string>{"temp"});
  EXPECT_FALSE(p.allow_unknown_metrics);
  ASSERT_EQ(p.thresholds.size(), 1u);
  EXPECT_EQ(p.thresholds[0].below, -10);
  EXPECT_EQ(p.anomaly_z, 2.5);
  EXPECT_EQ(p.alerts_topic, "alerts");
}

struct BadParamsCase {
  std::string name;
  std::string params;
  std::string message;  // substring
};

class BadParams : public ::testing::TestWithParam<BadParamsCase> {};

TEST_P(BadParams, AreConfigErrorsNamingTheKey) {
  try {
    ParseIngestParams(Json::parse(GetParam().params));
    FAIL() << "accepted " << GetParam().params;
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.Code(), Errc::kBadConfig);
    EXPECT_FALSE(e.Retriable());
    EXPECT_THAT(e.what(), HasSubstr(GetParam().message));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Keys, BadParams,
    ::testing::Values(
        BadParamsCase{"NotAnObject", R"([1])", "params.(root) must be an object"},
        BadParamsCase{"UnknownKey", R"({"windw_ms": 5})", "unknown param 'windw_ms'"},
        BadParamsCase{"WindowZero", R"({"window_ms": 0})",
                      "params.window_ms must be an integer in 1..604800000, got 0"},
        BadParamsCase{"WindowString", R"({"window_ms": "1m"})", "params.window_ms must be an integer"},
        BadParamsCase{"NegativeLateness", R"({"max_lateness_ms": -1})", "params.max_lateness_ms"},
        BadParamsCase{"FutureTooBig", R"({"max_future_ms": 1e12})", "params.max_future_ms"},
        BadParamsCase{"TinyLines", R"({"max_line_bytes": 2})", "params.max_line_bytes"},
        BadParamsCase{
            "BatchSizeMoved", R"({"batch_size": 1})",
            "iot.ingest: params.batch_size is no longer a param: set the function's batch key instead, "
            "e.g. batch: {size: 100, window: 500ms} (docs/config.md)"},
        BadParamsCase{"BatchWindowMoved", R"({"batch_window_ms": 100})",
                      "params.batch_window_ms is no longer a param: set the function's batch key"},
        BadParamsCase{"MaxErrors", R"({"max_errors": -3})", "params.max_errors"},
        BadParamsCase{"SchemaNotObject", R"({"schema": 3})", "params.schema must be an object"},
        BadParamsCase{"SchemaUnknownKey", R"({"schema": {"metric": {}}})", "unknown param 'schema.metric'"},
        BadParamsCase{"MetricType", R"({"schema": {"metrics": {"t": {"type": "text"}}}})",
                      "params.schema.metrics.t.type must be \"number\", \"integer\" or \"bool\""},
        BadParamsCase{"MetricUnknownKey", R"({"schema": {"metrics": {"t": {"mn": 1}}}})",
                      "unknown param 'schema.metrics.t.mn'"},
        BadParamsCase{"MetricMinNotNumber", R"({"schema": {"metrics": {"t": {"min": "0"}}}})",
                      "params.schema.metrics.t.min must be a number"},
        BadParamsCase{"MinAboveMax", R"({"schema": {"metrics": {"t": {"min": 5, "max": 1}}}})",
                      "params.schema.metrics.t has min above max"},
        BadParamsCase{"BoolWithRange", R"({"schema": {"metrics": {"t": {"type": "bool", "max": 1}}}})",
                      "params.schema.metrics.t is a bool metric"},
        BadParamsCase{"RequiredNotArray", R"({"schema": {"required": "temp"}})", "params.schema.required"},
        BadParamsCase{"RequiredUndeclared",
                      R"({"schema": {"required": ["hum"], "allow_unknown_metrics": false}})",
                      "params.schema.required names 'hum'"},
        BadParamsCase{"AllowUnknownNotBool", R"({"schema": {"allow_unknown_metrics": "yes"}})",
                      "params.schema.allow_unknown_metrics"},
        BadParamsCase{"ThresholdEmpty", R"({"thresholds": {"temp": {}}})",
                      "params.thresholds.temp needs \"above\" or \"below\""},
        BadParamsCase{"ThresholdUnknownKey", R"({"thresholds": {"temp": {"over": 3}}})",
                      "unknown param 'thresholds.temp.over'"},
        BadParamsCase{"ThresholdNotNumber", R"({"thresholds": {"temp": {"above": "80"}}})",
                      "params.thresholds.temp.above must be a number"},
        BadParamsCase{"AnomalyZ", R"({"anomaly": {"z": -1}})", "params.anomaly.z must be a number above 0"},
        BadParamsCase{"AnomalyMinSamples", R"({"anomaly": {"min_samples": 1}})",
                      "params.anomaly.min_samples"},
        BadParamsCase{"AnomalyUnknownKey", R"({"anomaly": {"sigma": 3}})", "unknown param 'anomaly.sigma'"},
        BadParamsCase{"AlertsTopicEmpty", R"({"alerts_topic": ""})",
                      "params.alerts_topic must be a non-empty string"}),
    [](const ::testing::TestParamInfo<BadParamsCase>& p) { return p.param.name; });

}  // namespace
}  // namespace runnel::functions::iot
