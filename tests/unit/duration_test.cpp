// Durations (runnel/core/duration.hpp): one parser for runnel.yaml and the command line. A bare
// number was milliseconds (`timeout: 10` ran for 10 ms, where KEDA and Lambda count seconds), and
// "0x10s", "1e3s" and `backoff: nan` were taken; each is now refused with its reason.
#include "runnel/core/duration.hpp"

#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

#include "runnel/core/config.hpp"
#include "runnel/testing/child_process.hpp"
#include "runnel/testing/config_error.hpp"

namespace runnel {
namespace {

using std::chrono::milliseconds;

TEST(Duration, GoodInputs) {
  const std::vector<std::pair<std::string, milliseconds>> cases = {
      {"0", milliseconds(0)},
      {"0s", milliseconds(0)},
      {"500ms", milliseconds(500)},
      {"30s", milliseconds(30'000)},
      {"1.5s", milliseconds(1500)},
      {"2m", milliseconds(120'000)},
      {"1h30m", milliseconds(5'400'000)},
      {"1000us", milliseconds(1)},
      {"168h", milliseconds(604'800'000)},
      {"+10s", milliseconds(10'000)},
  };
  for (const auto& [text, value] : cases) {
    const auto d = ParseDuration(text);
    EXPECT_TRUE(d) << text << ": " << d.error;
    EXPECT_EQ(d.value, value) << text;
  }
}

TEST(Duration, BadInputsSayWhy) {
  const std::string not_one = " is not a duration like 500ms, 30s or 2m (units: ms, s, m, h)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"10", R"('10' has no unit: durations need one, write "10s" or "10ms")"},
      {"2.5", R"('2.5' has no unit: durations need one, write "2.5s" or "2.5ms")"},
      {"-3", R"('-3' has no unit: durations need one, write "-3s" or "-3ms")"},
      {"0x10s", "'0x10s'" + not_one},
      {"1e3s", "'1e3s'" + not_one},
      {"1e3", "'1e3'" + not_one},
      {"nan", "'nan'" + not_one},
      {"NaNs", "'NaNs'" + not_one},
      {"soon", "'soon'" + not_one},
      {"5x", "'5x'" + not_one},
      {"10 s", "'10 s'" + not_one},
      {"", "''" + not_one},
      {"inf", "'inf' is not a finite duration"},
      {"-inf", "'-inf' is not a finite duration"},
      {"-1s", "'-1s' is negative"},
      {"169h", "'169h' is longer than 7 days (168h)"},
      {"99999999999999999999h", "'99999999999999999999h'" + not_one},
      {"500us", "'500us' is below 1ms, the smallest duration Runnel counts"},
  };
  for (const auto& [text, message] : cases) {
    const auto d = ParseDuration(text);
    EXPECT_FALSE(d) << text;
    EXPECT_EQ(d.error, message) << text;
  }
}

// Every duration key of runnel.yaml goes through the same rule, and its error names file, line and key.
TEST(Duration, EveryConfigKeyRefusesABareNumber) {
  const auto dir = testing::TempDir("duration-config");
  const auto file = dir / "runnel.yaml";
  const auto error = [&](const std::string& yaml) {
    std::ofstream(file, std::ios::binary) << yaml;
    return testing::ConfigErrorOf(file, [](const std::filesystem::path& f) { return LoadStackConfig(f); });
  };
  const std::string fn = "functions:\n  - name: echo\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"heartbeat: 10\n" + fn,
       R"(F:1: heartbeat: '10' has no unit: durations need one, write "10s" or "10ms")"},
      {fn + "    timeout: 10\n",
       R"(F:3: functions[0].timeout: '10' has no unit: durations need one, write "10s" or "10ms")"},
      {fn + "    retries: {backoff: nan}\n",
       "F:3: functions[0].retries.backoff: 'nan' is not a duration like 500ms, 30s or 2m (units: ms, s, m, "
       "h)"},
      {fn + "    retries: {backoff_max: inf}\n",
       "F:3: functions[0].retries.backoff_max: 'inf' is not a finite duration"},
      {fn + "    scaling: {target_drain: 1e3s}\n",
       "F:3: functions[0].scaling.target_drain: '1e3s' is not a duration like 500ms, 30s or 2m (units: ms, "
       "s, m, h)"},
      {fn + "    scaling: {idle_to_zero: 0x10s}\n",
       "F:3: functions[0].scaling.idle_to_zero: '0x10s' is not a duration like 500ms, 30s or 2m (units: ms, "
       "s, m, h)"},
      {fn + "    scaling: {stabilization: -5s}\n",
       "F:3: functions[0].scaling.stabilization: '-5s' is negative"},
      {fn + "    batch: {size: 5, window: 200}\n",
       R"(F:3: functions[0].batch.window: '200' has no unit: durations need one, write "200s" or "200ms")"},
      {fn + "schedules:\n  - {name: n, cron: '@daily', function: echo, payload: x, catch_up: 2}\n",
       R"(F:4: schedules[0].catch_up: '2' has no unit: durations need one, write "2s" or "2ms")"},
  };
  for (const auto& [yaml, message] : cases) EXPECT_EQ(error(yaml), message) << yaml;
  std::ofstream(file, std::ios::binary)
      << fn << "    timeout: 10s\n    retries: {backoff: 0, backoff_max: 1m}\n";
  const auto ok = LoadStackConfig(file);
  EXPECT_EQ(ok.functions.at(0).timeout, milliseconds(10'000));
  EXPECT_EQ(ok.functions.at(0).retry.backoff_initial, milliseconds(0));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runnel
