// The event filter's matcher (broker/event_matcher.hpp) on filters read from runnel.yaml text, table
// driven: key, headers and JSON fields with equals, prefix, exists and numeric ranges, values that
// are not JSON, and every condition having to hold.
#include <gmock/gmock.h>

#include "runnel/broker/event_matcher.hpp"
#include "runnel/core/config.hpp"

namespace runnel::broker {
namespace {

// The filter of a one-function stack whose `filter:` is `yaml` (a flow mapping).
EventFilter Filter(const std::string& yaml) {
  return ParseStackConfig("functions:\n  - name: f\n    filter: " + yaml + "\n", "runnel.yaml")
      .functions.at(0)
      .filter;
}

struct Record {
  std::optional<std::string> key;
  Headers headers;
  std::string value;
};

struct Case {
  const char* filter;
  Record record;
  bool matches;
};

Record Json(std::string value) { return {std::nullopt, {}, std::move(value)}; }
Record Key(std::optional<std::string> key) { return {std::move(key), {}, ""}; }
Record WithHeaders(Headers headers) { return {std::nullopt, std::move(headers), ""}; }

class EventFilterMatch : public ::testing::TestWithParam<Case> {};

TEST_P(EventFilterMatch, AsTheTableSays) {
  const Case& c = GetParam();
  EventMatcher matcher(Filter(c.filter));
  EXPECT_EQ(matcher.Matches(c.record.key, c.record.headers, c.record.value), c.matches)
      << "filter " << c.filter << ", key " << c.record.key.value_or("(none)") << ", value " << c.record.value;
}

INSTANTIATE_TEST_SUITE_P(Key, EventFilterMatch,
                         ::testing::Values(Case{"{key: {prefix: dev-}}", Key("dev-7"), true},
                                           Case{"{key: {prefix: dev-}}", Key("prod-7"), false},
                                           Case{"{key: {prefix: dev-}}", Key(std::nullopt), false},
                                           Case{"{key: sensor-1}", Key("sensor-1"), true},
                                           Case{"{key: sensor-1}", Key("sensor-10"), false},
                                           Case{"{key: {exists: false}}", Key(std::nullopt), true},
                                           Case{"{key: {exists: false}}", Key("a"), false},
                                           Case{"{key: {exists: true}}", Key(""), true},
                                           Case{"{key: {gte: 10, lt: 20}}", Key("15"), true},
                                           Case{"{key: {gte: 10, lt: 20}}", Key("20"), false},
                                           Case{"{key: {gte: 10}}", Key("ten"), false},
                                           Case{"{key: {gte: 10}}", Key("12abc"), false}));

INSTANTIATE_TEST_SUITE_P(
    Headers, EventFilterMatch,
    ::testing::Values(
        Case{"{headers: {content-type: image/png}}", WithHeaders({{"content-type", "image/png"}}), true},
        Case{"{headers: {content-type: image/png}}", WithHeaders({{"content-type", "image/jpeg"}}), false},
        // Header names are exact, as Kafka keeps them.
        Case{"{headers: {content-type: image/png}}", WithHeaders({{"Content-Type", "image/png"}}), false},
        Case{"{headers: {content-type: image/png}}", WithHeaders({}), false},
        // A header given twice holds when one of its values does.
        Case{"{headers: {tag: {prefix: b}}}", WithHeaders({{"tag", "a"}, {"tag", "b1"}}), true},
        Case{"{headers: {tenant: {exists: true}}}", WithHeaders({{"tenant", ""}}), true},
        Case{"{headers: {tenant: {exists: false}}}", WithHeaders({{"tenant", "x"}}), false},
        Case{"{headers: {tenant: {exists: false}}}", WithHeaders({{"other", "x"}}), true},
        Case{"{headers: {priority: {gt: 5}}}", WithHeaders({{"priority", "7"}}), true},
        Case{"{headers: {priority: {gt: 5}}}", WithHeaders({{"priority", "5"}}), false},
        // equals on text compares the text as written: 10 is "10", not 10.0.
        Case{"{headers: {v: 10}}", WithHeaders({{"v", "10"}}), true},
        Case{"{headers: {v: 10}}", WithHeaders({{"v", "10.0"}}), false}));

INSTANTIATE_TEST_SUITE_P(
    Fields, EventFilterMatch,
    ::testing::Values(
        Case{R"({fields: {reading.temp: {gt: 10, lte: 50}}})", Json(R"({"reading": {"temp": 50}})"), true},
        Case{R"({fields: {reading.temp: {gt: 10, lte: 50}}})", Json(R"({"reading": {"temp": 10}})"), false},
        Case{R"({fields: {reading.temp: {gt: 10, lte: 50}}})", Json(R"({"reading": {"temp": 12.5e0}})"),
             true},
        // A number as a string is not a number.
        Case{R"({fields: {reading.temp: {gt: 10}}})", Json(R"({"reading": {"temp": "20"}})"), false},
        Case{R"({fields: {reading.temp: {gt: 10}}})", Json(R"({"reading": 20})"), false},
        Case{R"({fields: {site: {exists: true}}})", Json(R"({"site": null})"), true},
        Case{R"({fields: {site: {exists: true}}})", Json(R"({"sites": 1})"), false},
        Case{R"({fields: {site: {exists: false}}})", Json(R"({"sites": 1})"), true},
        Case{R"({fields: {site: berlin}})", Json(R"({"site": "berlin"})"), true},
        Case{R"({fields: {site: berlin}})", Json(R"({"site": "berlin-2"})"), false},
        Case{R"({fields: {site: {prefix: ber}}})", Json(R"({"site": "berlin"})"), true},
        Case{R"({fields: {site: {prefix: ber}}})", Json(R"({"site": 5})"), false},
        // YAML types decide the JSON type: 10 is a number, "10" a string, true a boolean.
        Case{R"({fields: {n: 10}})", Json(R"({"n": 10.0})"), true},
        Case{R"({fields: {n: 10}})", Json(R"({"n": "10"})"), false},
        Case{R"({fields: {n: "10"}})", Json(R"({"n": "10"})"), true},
        Case{R"({fields: {ok: true}})", Json(R"({"ok": true})"), true},
        Case{R"({fields: {ok: true}})", Json(R"({"ok": "true"})"), false},
        Case{R"({fields: {v: ~}})", Json(R"({"v": null})"), true},
        Case{R"({fields: {v: ~}})", Json(R"({"v": 0})"), false},
        // Array elements by index, and a JSON pointer for a name with a dot.
        Case{R"({fields: {readings.1.temp: {lt: 0}}})", Json(R"({"readings": [{"temp": 5}, {"temp": -3}]})"),
             true},
        Case{R"({fields: {/a.b: 1}})", Json(R"({"a.b": 1})"), true},
        Case{R"({fields: {/a.b: 1}})", Json(R"({"a": {"b": 1}})"), false},
        // A value that is not JSON fails every field condition, exists: false too.
        Case{R"({fields: {site: {exists: false}}})", Json("not json"), false},
        Case{R"({fields: {site: {exists: true}}})", Json(""), false},
        Case{R"({fields: {site: {exists: true}}})", Json(R"({"site": 1)"), false}));

INSTANTIATE_TEST_SUITE_P(
    Together, EventFilterMatch,
    ::testing::Values(
        Case{"{key: {prefix: dev-}, headers: {content-type: application/json}, fields: {t: {gt: 1}}}",
             Record{"dev-1", {{"content-type", "application/json"}}, R"({"t": 2})"}, true},
        Case{"{key: {prefix: dev-}, headers: {content-type: application/json}, fields: {t: {gt: 1}}}",
             Record{"dev-1", {{"content-type", "application/json"}}, R"({"t": 1})"}, false},
        Case{"{key: {prefix: dev-}, headers: {content-type: application/json}, fields: {t: {gt: 1}}}",
             Record{"prod-1", {{"content-type", "application/json"}}, R"({"t": 2})"}, false},
        Case{"{fields: {a: 1, b: {exists: true}}}", Json(R"({"a": 1, "b": 2})"), true},
        Case{"{fields: {a: 1, b: {exists: true}}}", Json(R"({"a": 1})"), false}));

TEST(EventFilterMatcher, ReusesItsParserAcrossValuesOfEverySize) {
  EventMatcher matcher(Filter("{fields: {n: {gte: 0}}}"));
  const std::string big = R"({"pad": ")" + std::string(100'000, 'x') + R"(", "n": 3})";
  EXPECT_TRUE(matcher.Matches(std::nullopt, {}, big));
  EXPECT_FALSE(matcher.Matches(std::nullopt, {}, R"({"n": -1})"));
  EXPECT_TRUE(matcher.Matches(std::nullopt, {}, R"({"n": 0})"));
}

}  // namespace
}  // namespace runnel::broker
