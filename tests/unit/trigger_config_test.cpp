// The trigger options of a function in runnel.yaml: where a group with no commits starts (`start`),
// the consumer group's name (`group`), the oldest record that still runs (`max_record_age`) and the
// event filter (`filter`); each value read and each bad one refused with file, line and key.
#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

#include "runnel/core/config.hpp"
#include "runnel/testing/child_process.hpp"
#include "runnel/testing/config_error.hpp"

namespace runnel {
namespace {

class TriggerConfig : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TempDir("trigger-config"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path Write(const std::string& yaml) {
    auto file = dir_ / "runnel.yaml";
    std::ofstream(file, std::ios::binary) << yaml;
    return file;
  }
  // The one function of a file whose function entry has `lines` (each indented by the caller).
  FunctionSpec Function(const std::string& lines) {
    return LoadStackConfig(Write("functions:\n  - name: echo\n" + lines)).functions.at(0);
  }
  std::string Error(const std::string& lines) {
    return testing::ConfigErrorOf(Write("functions:\n  - name: echo\n" + lines),
                                  [](const std::filesystem::path& f) { return LoadStackConfig(f); });
  }

  std::filesystem::path dir_;
};

TEST_F(TriggerConfig, StartAndGroupDefaultToEarliestAndRunnelDotName) {
  const FunctionSpec f = Function("");
  EXPECT_EQ(f.start, StartPosition::kEarliest);
  EXPECT_EQ(f.Group(), "runnel.echo");
  EXPECT_EQ(DefaultStack({"echo"}).functions.at(0).Group(), "runnel.echo");
}

TEST_F(TriggerConfig, StartAndGroupAreRead) {
  const FunctionSpec f = Function("    start: latest\n    group: billing.echo-v2\n");
  EXPECT_EQ(f.start, StartPosition::kLatest);
  EXPECT_EQ(f.Group(), "billing.echo-v2");
  EXPECT_EQ(Function("    start: earliest\n").start, StartPosition::kEarliest);
}

TEST_F(TriggerConfig, BadStartOrGroupNamesTheLineAndKey) {
  EXPECT_EQ(Error("    start: newest\n"), "F:3: functions[0].start: 'newest' is not earliest or latest");
  EXPECT_EQ(Error("    start: [earliest]\n"), "F:3: functions[0].start: must be a single value");
  EXPECT_EQ(Error("    group: \"my group\"\n"),
            "F:3: functions[0].group: 'my group' must be 1..249 of [A-Za-z0-9._-]");
  EXPECT_EQ(Error("    group: \"\"\n"), "F:3: functions[0].group: '' must be 1..249 of [A-Za-z0-9._-]");
}

TEST_F(TriggerConfig, MaxRecordAgeIsADurationOfAtLeastOneSecond) {
  EXPECT_EQ(Function("").max_record_age.count(), 0);
  EXPECT_EQ(Function("    max_record_age: 30s\n").max_record_age, std::chrono::seconds(30));
  EXPECT_EQ(Function("    max_record_age: 2h\n").max_record_age, std::chrono::hours(2));
  EXPECT_EQ(Error("    max_record_age: 500ms\n"), "F:3: functions[0].max_record_age: must be at least 1s");
  EXPECT_THAT(Error("    max_record_age: soon\n"),
              ::testing::StartsWith("F:3: functions[0].max_record_age: 'soon' "));
}

TEST_F(TriggerConfig, FilterIsRead) {
  const FunctionSpec f = Function(R"(    filter:
      key: {prefix: "dev-"}
      headers:
        content-type: {equals: image/png}
        tenant: acme
      fields:
        reading.temp: {gt: 10, lte: 50}
        site: {exists: true}
        /a.b: "10"
)");
  const EventFilter& filter = f.filter;
  ASSERT_TRUE(filter.key.has_value());
  EXPECT_EQ(filter.key->prefix, "dev-");
  ASSERT_EQ(filter.headers.size(), 2u);
  EXPECT_EQ(filter.headers[0].name, "content-type");
  EXPECT_EQ(filter.headers[0].condition.equals->text, "image/png");
  EXPECT_EQ(filter.headers[1].condition.equals->text, "acme");
  ASSERT_EQ(filter.fields.size(), 3u);
  EXPECT_EQ(filter.fields[0].pointer, "/reading/temp");
  EXPECT_EQ(filter.fields[0].condition.gt, 10.0);
  EXPECT_EQ(filter.fields[0].condition.lte, 50.0);
  EXPECT_EQ(filter.fields[0].condition.line, 9);
  EXPECT_EQ(filter.fields[1].condition.exists, true);
  EXPECT_EQ(filter.fields[2].pointer, "/a.b");
  EXPECT_EQ(filter.fields[2].condition.equals->type, FilterCondition::Value::Type::kString);
  EXPECT_TRUE(Function("").filter.Empty());
}

struct FilterError {
  const char* filter;   // the value of `filter:` on line 3
  const char* message;  // with the file shown as F
};

class TriggerFilterErrors : public TriggerConfig, public ::testing::WithParamInterface<FilterError> {};

TEST_P(TriggerFilterErrors, NameTheLineAndKey) {
  EXPECT_EQ(Error(std::string("    filter: ") + GetParam().filter + "\n"), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Messages, TriggerFilterErrors,
    ::testing::Values(
        FilterError{"[a]",
                    "F:3: functions[0].filter: must be a mapping of key, headers and fields, e.g. {key: "
                    "{prefix: dev-}}"},
        FilterError{"{}",
                    "F:3: functions[0].filter: is empty: give key, headers or fields (or leave filter out)"},
        FilterError{"{value: 1}",
                    "F:3: functions[0].filter.value: unknown key (known: fields, headers, key)"},
        FilterError{"{key: {starts: a}}",
                    "F:3: functions[0].filter.key.starts: unknown operator (known: equals, prefix, exists, "
                    "gt, gte, lt, lte)"},
        FilterError{
            "{key: {}}",
            "F:3: functions[0].filter.key: has no operator (equals, prefix, exists, gt, gte, lt, lte)"},
        FilterError{"{key: [a, b]}",
                    "F:3: functions[0].filter.key: must be a value (equals) or a mapping of operators like "
                    "{prefix: dev-} "
                    "(equals, prefix, exists, gt, gte, lt, lte)"},
        FilterError{"{key: ~}",
                    "F:3: functions[0].filter.key: null is for JSON fields; a key or header is text (quote "
                    "it: \"\")"},
        FilterError{"{key: {exists: yes}}",
                    "F:3: functions[0].filter.key.exists: 'yes' is not true or false"},
        FilterError{"{key: {prefix: [a]}}", "F:3: functions[0].filter.key.prefix: must be a string"},
        FilterError{"{fields: {t: {gt: warm}}}",
                    "F:3: functions[0].filter.fields.t.gt: 'warm' is not a number"},
        FilterError{"{fields: {t: {gt: \"10\"}}}",
                    "F:3: functions[0].filter.fields.t.gt: '10' is not a number"},
        FilterError{"{fields: {t: {lt: .nan}}}",
                    "F:3: functions[0].filter.fields.t.lt: '.nan' is not a number"},
        FilterError{
            "{fields: {t: {gt: 50, lt: 10}}}",
            "F:3: functions[0].filter.fields.t: the range gt 50 .. lt 10 is empty: nothing would match"},
        FilterError{
            "{fields: {t: {gt: 1, gte: 2}}}",
            "F:3: functions[0].filter.fields.t: give one lower bound (gt or gte) and one upper (lt or lte)"},
        FilterError{"{fields: {t: {exists: false, equals: 1}}}",
                    "F:3: functions[0].filter.fields.t: exists: false cannot go with another operator (an "
                    "absent value "
                    "has none to compare)"},
        FilterError{"{fields: {t: {prefix: a, gt: 1}}}",
                    "F:3: functions[0].filter.fields.t: prefix (of a string) and a numeric range cannot both "
                    "hold for "
                    "one JSON value"},
        FilterError{
            "{fields: {a..b: 1}}",
            "F:3: functions[0].filter.fields.a..b: 'a..b' is not a field path like reading.temp (or a JSON "
            "pointer like /reading/temp)"},
        FilterError{
            "{fields: {/a~2: 1}}",
            "F:3: functions[0].filter.fields./a~2: '/a~2' is not a field path like reading.temp (or a JSON "
            "pointer like /reading/temp)"},
        FilterError{"{fields: []}",
                    "F:3: functions[0].filter.fields: must be a mapping of field paths to conditions, e.g. "
                    "{reading.temp: {gt: 10}}"},
        FilterError{
            "{headers: {a: {equals: {x: 1}}}}",
            "F:3: functions[0].filter.headers.a.equals: must be a single value (a string, number, boolean or "
            "null)"}));

// The line of an operator deep in a block mapping is its own.
TEST_F(TriggerConfig, FilterErrorsPointAtTheOperatorsLine) {
  EXPECT_EQ(Error("    filter:\n      fields:\n        t:\n          gt: 1\n          between: 2\n"),
            "F:7: functions[0].filter.fields.t.between: unknown operator (known: equals, prefix, exists, gt, "
            "gte, lt, lte)");
}

}  // namespace
}  // namespace runnel
