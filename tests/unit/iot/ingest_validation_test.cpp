// iot.ingest input handling: formats, per-reading validation with reasons, whole-event failures.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "iot_harness.hpp"

namespace runnel::functions::iot {
namespace {

using testing::Harness;
using ::testing::HasSubstr;
using testing::kNow;
using testing::Line;
using Json = nlohmann::json;

const Json kSchemaParams = Json::parse(R"({
  "schema": {
    "required": ["device", "ts", "temp"],
    "metrics": {"temp": {"type": "number", "min": -50, "max": 150},
                "door": {"type": "bool"},
                "count": {"type": "integer"}},
    "allow_unknown_metrics": true
  }
})");

std::string Good() { return Line("dev-1", kNow, {{"temp", 21.5}}); }

struct BadLineCase {
  std::string name;
  std::string line;
  std::string field;   // empty: the error has no field
  std::string reason;  // substring
};

class BadLine : public ::testing::TestWithParam<BadLineCase> {};

// A good line, then the bad one: the good reading is still accepted and the bad one is reported
// with its line number, field and reason.
TEST_P(BadLine, IsRejectedWithReasonAndTheGoodLineStillCounts) {
  const BadLineCase& c = GetParam();
  Harness h(kSchemaParams);
  const Json result = h.Run(Good() + c.line + "\n");
  EXPECT_EQ(result["readings"]["accepted"], 1);
  EXPECT_EQ(result["readings"]["rejected"], 1);
  ASSERT_EQ(result["errors"].size(), 1u) << result.dump();
  const Json& error = result["errors"][0];
  EXPECT_EQ(error["line"], 2);
  if (c.field.empty()) {
    EXPECT_FALSE(error.contains("field")) << error.dump();
  } else {
    EXPECT_EQ(error.value("field", ""), c.field) << error.dump();
  }
  EXPECT_THAT(error["reason"].get<std::string>(), HasSubstr(c.reason)) << error.dump();
  ASSERT_EQ(result["aggregates"].size(), 1u);
  EXPECT_EQ(result["aggregates"][0]["count"], 1);
}

const std::string kTs = std::to_string(kNow);

INSTANTIATE_TEST_SUITE_P(
    Validation, BadLine,
    ::testing::Values(
        BadLineCase{"MissingDevice", R"({"ts":)" + kTs + R"(,"metrics":{"temp":1}})", "device",
                    "missing required field"},
        BadLineCase{"MissingTs", R"({"device":"d","metrics":{"temp":1}})", "ts", "missing required field"},
        BadLineCase{"DeviceNotString", R"({"device":7,"ts":)" + kTs + R"(,"metrics":{"temp":1}})", "device",
                    "must be a string, got number"},
        BadLineCase{"EmptyDevice", R"({"device":"","ts":)" + kTs + R"(,"metrics":{"temp":1}})", "device",
                    "must be 1..256 bytes, got 0"},
        BadLineCase{"DuplicateDevice",
                    R"({"device":"a","device":"b","ts":)" + kTs + R"(,"metrics":{"temp":1}})", "device",
                    "duplicate field"},
        BadLineCase{"DuplicateDeviceSpelledWithAnEscape",
                    R"({"device":"a","dev\u0069ce":"b","ts":)" + kTs + R"(,"metrics":{"temp":1}})", "device",
                    "duplicate field"},
        BadLineCase{"BadEscapeInDevice", R"({"device":"d\q","ts":)" + kTs + R"(,"metrics":{"temp":1}})", "",
                    "malformed JSON"},
        BadLineCase{"TsNotRfc3339", R"({"device":"d","ts":"yesterday","metrics":{"temp":1}})", "ts",
                    "\"yesterday\" is not an RFC 3339 timestamp"},
        BadLineCase{"TsFraction", R"({"device":"d","ts":1699999980000.5,"metrics":{"temp":1}})", "ts",
                    "must be an integer number of milliseconds"},
        BadLineCase{"TsBool", R"({"device":"d","ts":true,"metrics":{"temp":1}})", "ts",
                    "must be epoch milliseconds or an RFC 3339 string, got bool"},
        BadLineCase{"TsInSeconds", R"({"device":"d","ts":1699999980,"metrics":{"temp":1}})", "ts",
                    "1699999980 is before 2000-01-01T00:00:00Z (seconds instead of milliseconds?)"},
        BadLineCase{"TsBefore2000", R"({"device":"d","ts":"1999-12-31T23:59:59Z","metrics":{"temp":1}})",
                    "ts", "946684799000 is before 2000-01-01T00:00:00Z"},
        BadLineCase{"TsFarFuture",
                    R"({"device":"d","ts":)" + std::to_string(kNow + 300'001) + R"(,"metrics":{"temp":1}})",
                    "ts", "is 300001 ms ahead of the processing clock (max_future_ms 300000)"},
        BadLineCase{"MetricString", R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"temp":"hot"}})",
                    "metrics.temp", "must be a number or a bool, got string"},
        BadLineCase{"MetricNull", R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"temp":null}})",
                    "metrics.temp", "got null"},
        BadLineCase{"AboveMax", R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"temp":200}})",
                    "metrics.temp", "200 is above the maximum 150"},
        BadLineCase{"BelowMin", R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"temp":-60.5}})",
                    "metrics.temp", "-60.5 is below the minimum -50"},
        BadLineCase{"BoolExpected", R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"temp":1,"door":1}})",
                    "metrics.door", "must be a bool, got number"},
        BadLineCase{"NumberExpected", R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"temp":true}})",
                    "metrics.temp", "must be a number, got bool"},
        BadLineCase{"IntegerExpected",
                    R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"temp":1,"count":1.5}})", "metrics.count",
                    "must be an integer, got 1.5"},
        BadLineCase{"DuplicateMetric", R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"temp":1,"temp":2}})",
                    "metrics.temp", "duplicate metric"},
        BadLineCase{"MissingRequiredMetric", R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"hum":1}})",
                    "metrics.temp", "missing required metric"},
        BadLineCase{"MetricsNotObject", R"({"device":"d","ts":)" + kTs + R"(,"metrics":[1]})", "metrics",
                    "must be an object, got array"},
        BadLineCase{"FlatFormNonNumber", R"({"device":"d","ts":)" + kTs + R"(,"temp":1,"fw":"1.2"})", "fw",
                    "must be a number or a bool, got string (a reading without a \"metrics\" object"},
        BadLineCase{"NotAnObject", R"([1,2,3])", "", "a reading must be a JSON object, got array"},
        BadLineCase{"Truncated", R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"temp":)", "",
                    "malformed JSON"},
        BadLineCase{"UnclosedString", R"({"device":"d,"ts":1})", "", "malformed JSON"},
        BadLineCase{"TrailingContent", R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"temp":1}} {"x":1})",
                    "", "trailing content"},
        BadLineCase{"InvalidUtf8", "{\"device\":\"d\xff\xfe\",\"ts\":" + kTs + ",\"metrics\":{\"temp\":1}}",
                    "", "malformed JSON: The input is not valid UTF-8"}),
    [](const ::testing::TestParamInfo<BadLineCase>& p) { return p.param.name; });

TEST(IotIngestValidation, UnknownMetricsCanBeRefused) {
  Json params = kSchemaParams;
  params["schema"]["allow_unknown_metrics"] = false;
  Harness h(params);
  const Json result = h.Run(Good() + Line("d", kNow, {{"temp", 1}, {"hum", 40}}));
  ASSERT_EQ(result["errors"].size(), 1u);
  EXPECT_EQ(result["errors"][0]["field"], "metrics.hum");
  EXPECT_THAT(result["errors"][0]["reason"].get<std::string>(), HasSubstr("unknown metric"));
}

TEST(IotIngestValidation, FlatFormAndRfc3339Timestamps) {
  Harness h;
  const Json result = h.Run(R"({"device":"d","ts":"2023-11-14T22:13:20.250+01:00","temp":20,"door":true})");
  EXPECT_EQ(result["readings"]["accepted"], 1);
  ASSERT_EQ(result["aggregates"].size(), 2u);
  // 22:13:20.250+01:00 is 21:13:20.250Z, one hour before kNow.
  EXPECT_EQ(result["aggregates"][0]["window_start_ms"], kNow - 3'600'000);
  EXPECT_EQ(result["aggregates"][0]["metric"], "door");
  EXPECT_EQ(result["aggregates"][1]["metric"], "temp");
}

// Keys are matched in place when they are spelled plainly; escaped spellings are the same keys.
TEST(IotIngestValidation, EscapedKeysAreTheSameKeys) {
  Harness h;
  const Json result = h.Run(Line("d", kNow, {{"temp", 20}}) + R"({"dev\u0069ce":"d","t\u0073":)" + kTs +
                            R"(,"m\u0065trics":{"te\u006dp":22}})" + "\n");
  EXPECT_EQ(result["readings"]["accepted"], 2) << result.dump();
  ASSERT_EQ(result["aggregates"].size(), 1u) << result.dump();
  EXPECT_EQ(result["aggregates"][0]["metric"], "temp");
  EXPECT_EQ(result["aggregates"][0]["count"], 2);
}

// Metric names seen at a position are remembered for the next reading: a name that starts like
// the remembered one, or is a prefix of it, or differs by an escape, is another metric.
TEST(IotIngestValidation, MetricNamesAtTheSamePositionAreComparedWhole) {
  Harness h;
  std::string payload;
  for (const char* name : {"temp", "temperature", "temp", "tem", "te\"mp", "te\"mp", "temp"}) {
    payload += Line("d", kNow, {{name, 1}});
  }
  const Json result = h.Run(payload);
  EXPECT_EQ(result["readings"]["accepted"], 7) << result.dump();
  std::map<std::string, int> counts;
  for (const Json& aggregate : result["aggregates"]) counts[aggregate["metric"]] = aggregate["count"];
  EXPECT_EQ(counts, (std::map<std::string, int>{{"te\"mp", 2}, {"tem", 1}, {"temp", 3}, {"temperature", 1}}));
}

TEST(IotIngestValidation, NestedFormIgnoresOtherTopLevelFields) {
  Harness h;
  const Json result = h.Run(R"({"device":"d","fw":"1.2","ts":)" + kTs + R"(,"metrics":{"temp":20}})");
  EXPECT_EQ(result["readings"]["accepted"], 1);
  ASSERT_EQ(result["aggregates"].size(), 1u);
}

TEST(IotIngestValidation, BlankLinesAndCrlfKeepLineNumbers) {
  Harness h;
  const std::string payload = "\r\n" + Good() + "   \n" + std::string("{bad}\r\n") + Good();
  const Json result = h.Run(payload);
  EXPECT_EQ(result["readings"]["accepted"], 2);
  EXPECT_EQ(result["readings"]["rejected"], 1);
  EXPECT_EQ(result["errors"][0]["line"], 4);
}

// Clean NDJSON goes through simdjson's iterate_many; anything irregular is parsed again line by
// line. Both must give the same line numbers and reasons.
TEST(IotIngestValidation, InvalidReadingsInCleanNdjsonKeepTheirLineNumbers) {
  Harness h;
  const std::string wrong_type = R"({"device":7,"ts":)" + std::to_string(kNow) + R"(,"metrics":{"temp":1}})";
  const Json result = h.Run("\n" + Good() + "\n" + wrong_type + "\r\n" + Good());
  EXPECT_EQ(result["readings"]["accepted"], 2);
  EXPECT_EQ(result["readings"]["rejected"], 1);
  ASSERT_EQ(result["errors"].size(), 1u);
  EXPECT_EQ(result["errors"][0]["line"], 4);
  EXPECT_EQ(result["errors"][0]["field"], "device");
  EXPECT_EQ(result["errors"][0]["reason"], "must be a string, got number");
}

TEST(IotIngestValidation, TwoReadingsOnOneLineAreOneBadLine) {
  Harness h;
  std::string first = Good();
  first.pop_back();  // its newline
  const Json result = h.Run(first + " " + Good() + Good());
  EXPECT_EQ(result["readings"]["accepted"], 1);
  EXPECT_EQ(result["readings"]["rejected"], 1);
  EXPECT_EQ(result["errors"][0]["line"], 1);
  EXPECT_EQ(result["errors"][0]["reason"], "malformed JSON: trailing content after the reading");
}

TEST(IotIngestValidation, AReadingSplitOverTwoLinesIsTwoBadLines) {
  Harness h;
  const std::string split = R"({"device":"d",)"
                            "\n"
                            R"("ts":)" +
                            std::to_string(kNow) +
                            R"(,"metrics":{"temp":1}})"
                            "\n";
  const Json result = h.Run(Good() + split + Good());
  EXPECT_EQ(result["readings"]["accepted"], 2);
  EXPECT_EQ(result["readings"]["rejected"], 2);
  ASSERT_EQ(result["errors"].size(), 2u);
  EXPECT_EQ(result["errors"][0]["line"], 2);
  EXPECT_EQ(result["errors"][1]["line"], 3);
}

TEST(IotIngestValidation, OversizedLineIsRejectedAndOthersProcessed) {
  Harness h(Json{{"max_line_bytes", 100}});
  const std::string big =
      R"({"device":"d","ts":)" + kTs + R"(,"metrics":{"temp":1},"pad":")" + std::string(150, 'x') + "\"}";
  const Json result = h.Run(Good() + big + "\n" + Good());
  EXPECT_EQ(result["readings"]["accepted"], 2);
  ASSERT_EQ(result["errors"].size(), 1u);
  EXPECT_EQ(result["errors"][0]["line"], 2);
  EXPECT_EQ(result["errors"][0]["reason"],
            fmt::format("line is {} bytes, over max_line_bytes 100", big.size()));
}

TEST(IotIngestValidation, ErrorsAreCappedAndTheRestCounted) {
  Harness h(Json{{"max_errors", 5}});
  std::string payload = Good();
  for (int i = 0; i < 12; ++i) payload += "not json\n";
  const Json result = h.Run(payload);
  EXPECT_EQ(result["readings"]["rejected"], 12);
  EXPECT_EQ(result["errors"].size(), 5u);
  EXPECT_EQ(result["errors_omitted"], 7);
}

TEST(IotIngestValidation, GeneratedNdjsonWithMixedGoodAndBadLines) {
  std::mt19937 rng(42);
  std::string payload;
  int good = 0, bad = 0;
  std::vector<int> bad_lines;
  for (int line = 1; line <= 2000; ++line) {
    switch (rng() % 10) {
      case 0:
        payload += R"({"device":"d","ts":)" + kTs +
                   R"(,"metrics":{"temp":"x"}})"
                   "\n";
        break;
      case 1:
        payload += "{\"device\":\n";
        break;
      case 2:
        payload += Line("d", 5, {{"temp", 1}});
        break;
      default:
        payload += Line(fmt::format("dev-{}", rng() % 20), kNow - static_cast<std::int64_t>(rng() % 60'000),
                        {{"temp", static_cast<double>(rng() % 1000) / 10.0}});
        ++good;
        continue;
    }
    ++bad;
    bad_lines.push_back(line);
  }
  Harness h(Json{{"max_errors", 100'000}});
  const Json result = h.Run(payload);
  EXPECT_EQ(result["readings"]["accepted"], good);
  EXPECT_EQ(result["readings"]["rejected"], bad);
  ASSERT_EQ(result["errors"].size(), bad_lines.size());
  for (std::size_t i = 0; i < bad_lines.size(); ++i) EXPECT_EQ(result["errors"][i]["line"], bad_lines[i]);
  std::uint64_t counted = 0;
  for (const Json& a : result["aggregates"]) counted += a["count"].get<std::uint64_t>();
  EXPECT_EQ(counted, static_cast<std::uint64_t>(good));
}

TEST(IotIngestValidation, JsonArrayOfReadingsReportsIndices) {
  Harness h;
  const Json result =
      h.Run(R"( [ {"device":"a","ts":)" + kTs + R"(,"metrics":{"temp":1}}, 5,
      {"device":"b","ts":)" +
            kTs + R"(,"metrics":{"temp":"x"}}, {"device":"c","ts":)" + kTs + R"(,"temp":3} ] )");
  EXPECT_EQ(result["readings"]["accepted"], 2);
  EXPECT_EQ(result["readings"]["rejected"], 2);
  EXPECT_EQ(result["errors"][0]["index"], 1);
  EXPECT_EQ(result["errors"][1]["index"], 2);
  EXPECT_EQ(result["errors"][1]["field"], "metrics.temp");
}

TEST(IotIngestValidation, PrettyPrintedSingleObject) {
  Harness h;
  const Json result =
      h.Run("\n{\n  \"device\": \"a\",\n  \"ts\": " + kTs + ",\n  \"metrics\": {\"temp\": 1}\n}\n");
  EXPECT_EQ(result["readings"]["accepted"], 1);
  EXPECT_EQ(result["readings"]["rejected"], 0);
}

struct BadEventCase {
  std::string name;
  std::string payload;
  Errc code;
  std::vector<std::string> message;  // substrings
};

class BadEvent : public ::testing::TestWithParam<BadEventCase> {};

TEST_P(BadEvent, FailsTheWholeEventWithAPreciseMessage) {
  const BadEventCase& c = GetParam();
  Harness h(Json{{"max_event_bytes", 4096}, {"max_line_bytes", 1024}});
  const FunctionError error = h.Fail(c.payload);
  EXPECT_EQ(error.Code(), c.code);
  EXPECT_FALSE(error.Retriable());
  for (const std::string& part : c.message) EXPECT_THAT(error.what(), HasSubstr(part));
}

std::string Garbage(std::size_t bytes) {
  std::mt19937 rng(7);
  std::string out(bytes, '\0');
  for (char& c : out) c = static_cast<char>(rng() % 256);
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    WholeEvent, BadEvent,
    ::testing::Values(BadEventCase{"Empty", "", Errc::kBadInput, {"the payload is empty"}},
                      BadEventCase{"Whitespace", " \n\r\n\t", Errc::kBadInput, {"the payload is empty"}},
                      BadEventCase{"BinaryGarbage",
                                   "\x89PNG\r\n\x1a\n" + Garbage(600),
                                   Errc::kBadInput,
                                   {"no valid reading in the payload", "line 1: malformed JSON"}},
                      BadEventCase{"EveryLineInvalid",
                                   Line("d", 5, {{"temp", 1}}) + Line("d", 6, {{"temp", 1}}) +
                                       Line("d", 7, {{"temp", 1}}) + Line("d", 8, {{"temp", 1}}),
                                   Errc::kBadInput,
                                   {"no valid reading in the payload (4 rejected)",
                                    "line 1: ts: 5 is before 2000-01-01", "; and 1 more"}},
                      BadEventCase{"OnlyAnOversizedLine",
                                   std::string(2000, 'x'),
                                   Errc::kBadInput,
                                   {"line 1: line is 2000 bytes, over max_line_bytes 1024"}},
                      BadEventCase{"MalformedArray",
                                   R"([{"device":"a","ts":1699999980000,"metrics":{"temp":1}}, {"device": ])",
                                   Errc::kBadInput,
                                   {"the payload is not valid JSON"}},
                      BadEventCase{"EmptyArray", "[]", Errc::kBadInput, {"empty JSON array"}},
                      BadEventCase{"OverMaxEventBytes",
                                   std::string(5000, ' '),
                                   Errc::kLimitExceeded,
                                   {"payload is 5000 bytes, over max_event_bytes 4096"}}),
    [](const ::testing::TestParamInfo<BadEventCase>& p) { return p.param.name; });

TEST(IotIngestValidation, SameInputGivesTheSameBytes) {
  Harness h(Json{{"thresholds", {{"temp", {{"above", 50}}}}}});
  std::string payload;
  for (int i = 0; i < 300; ++i)
    payload += Line(fmt::format("d{}", i % 7), kNow - std::int64_t{i} * 1000, {{"temp", i % 90}});
  EXPECT_EQ(h.RunRaw(payload), h.RunRaw(payload));
}

TEST(IotIngestValidation, ResultIsValidJsonEvenForHostileDeviceNames) {
  Harness h;
  const Json result = h.Run(R"({"device":"a\"b\\c\u0001\n\u00e9","ts":)" + kTs + R"(,"metrics":{"temp":1}})");
  ASSERT_EQ(result["aggregates"].size(), 1u);
  EXPECT_EQ(result["aggregates"][0]["device"], "a\"b\\c\x01\n\xc3\xa9");
}

}  // namespace
}  // namespace runnel::functions::iot
