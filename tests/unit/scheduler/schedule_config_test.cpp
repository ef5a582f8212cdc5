// The schedules: section of runnel.yaml: a good file, and bad ones whose messages name the file,
// line and key. Cron and time-zone errors come from CompileSchedules, as `runnel up` runs it.
#include <gmock/gmock.h>

#include <fstream>

#include "runnel/core/config.hpp"
#include "runnel/scheduler/scheduler.hpp"
#include "runnel/testing/child_process.hpp"
#include "runnel/testing/config_error.hpp"

namespace runnel::scheduler {
namespace {

class ScheduleConfig : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TempDir("schedule-config"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path Write(const std::string& schedules) {
    auto file = dir_ / "runnel.yaml";
    std::ofstream(file) << "functions:\n  - name: echo\n  - name: sleep\n" << schedules;
    return file;
  }
  // The message of loading and compiling `schedules`, with the file's path replaced by F.
  std::string Error(const std::string& schedules) {
    return testing::ConfigErrorOf(Write(schedules), [](const std::filesystem::path& f) {
      return CompileSchedules(LoadStackConfig(f));
    });
  }

  std::filesystem::path dir_;
};

TEST_F(ScheduleConfig, AGoodFileParses) {
  const auto file = Write(R"(schedules:
  - name: nightly-photos
    cron: "0 2 * * *"
    timezone: Europe/Berlin
    function: echo
    files: {dir: photos, glob: "*.jpg", recursive: true}
    catch_up: 2h
  - name: tick
    cron: "@hourly"
    function: sleep
    payload: '{"ms": 1}'
    content_type: application/json
)");
  const auto config = LoadStackConfig(file);
  ASSERT_EQ(config.schedules.size(), 2u);
  const auto& a = config.schedules[0];
  EXPECT_EQ(a.name, "nightly-photos");
  EXPECT_EQ(a.cron, "0 2 * * *");
  EXPECT_EQ(a.timezone, "Europe/Berlin");
  EXPECT_EQ(a.function, "echo");
  ASSERT_TRUE(a.files.has_value());
  EXPECT_EQ(a.files->dir, (dir_ / "photos").string()) << "relative to the config file's folder";
  EXPECT_EQ(a.files->glob, "*.jpg");
  EXPECT_TRUE(a.files->recursive);
  EXPECT_TRUE(a.payload.empty());
  EXPECT_EQ(a.catch_up, std::chrono::hours(2));
  EXPECT_EQ(a.line, 5);
  EXPECT_EQ(a.cron_line, 6);
  EXPECT_EQ(a.timezone_line, 7);
  const auto& b = config.schedules[1];
  EXPECT_EQ(b.timezone, "UTC");
  EXPECT_EQ(b.payload, R"({"ms": 1})");
  EXPECT_EQ(b.content_type, "application/json");
  EXPECT_EQ(b.catch_up.count(), 0);
  const auto compiled = CompileSchedules(config);
  ASSERT_EQ(compiled.size(), 2u);
  EXPECT_EQ(compiled[0].cron.TimeZone(), "Europe/Berlin");
}

TEST_F(ScheduleConfig, NoSchedulesIsFine) {
  EXPECT_TRUE(LoadStackConfig(Write("")).schedules.empty());
  EXPECT_EQ(Error(""), "(no error)");
}

TEST_F(ScheduleConfig, BadFilesNameFileLineAndKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"schedules: {name: x}\n", "F:4: schedules: must be a list"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    function: echo\n    payload: x\n    every: 5m\n",
       "F:9: schedules[0].every: unknown key (known: catch_up, content_type, cron, files, function, name, "
       "payload, timezone)"},
      {"schedules:\n  - cron: '* * * * *'\n    function: echo\n    payload: x\n",
       "F:5: schedules[0].name: is required"},
      {"schedules:\n  - name: a b\n    cron: '* * * * *'\n    function: echo\n    payload: x\n",
       "F:5: schedules[0].name: 'a b' must be 1..64 of [A-Za-z0-9._-]"},
      {"schedules:\n  - name: a\n    function: echo\n    payload: x\n",
       "F:5: schedules[0].cron: is required (e.g. \"0 2 * * *\" or @daily)"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    payload: x\n",
       "F:5: schedules[0].function: is required"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    function: resize\n    payload: x\n",
       "F:7: schedules[0].function: 'resize' is not a function of this stack (functions: echo, sleep)"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    function: echo\n",
       "F:5: schedules[0]: needs payload (one event) or files (one event per file)"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    function: echo\n    payload: x\n    files: {dir: "
       "/tmp}\n",
       "F:9: schedules[0].files: give either payload or files, not both"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    function: echo\n    files: {glob: '*.jpg'}\n",
       "F:8: schedules[0].files.dir: is required"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    function: echo\n    files: {dir: /tmp, pattern: "
       "x}\n",
       "F:8: schedules[0].files.pattern: unknown key (known: dir, glob, recursive)"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    function: echo\n    files: {dir: /tmp, glob: "
       "'a/*.jpg'}\n",
       "F:8: schedules[0].files.glob: 'a/*.jpg' must be a non-empty file-name pattern without '/'"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    function: echo\n    files: {dir: /tmp, "
       "recursive: maybe}\n",
       "F:8: schedules[0].files.recursive: 'maybe' is not a valid boolean"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    function: echo\n    files: {dir: /tmp}\n    "
       "content_type: text/plain\n",
       "F:9: schedules[0].content_type: applies to payload only (files get theirs from the extension)"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    function: echo\n    payload: x\n    catch_up: "
       "soon\n",
       "F:9: schedules[0].catch_up: 'soon' is not a duration like 500ms, 30s or 2m (units: ms, s, m, h)"},
      {"schedules:\n  - name: a\n    cron: '* * * * *'\n    function: echo\n    payload: x\n"
       "  - name: a\n    cron: '* * * * *'\n    function: echo\n    payload: y\n",
       "F:9: schedules[1].name: 'a' is defined twice"},
      {"schedules:\n  - name: a\n    function: echo\n    payload: x\n    cron: '0 25 * * *'\n",
       "F:8: schedules[0].cron: hour: 25 is outside 0-23"},
      {"schedules:\n  - name: a\n    cron: '0 0 * * *'\n    timezone: Europe/Atlantis\n    function: echo\n  "
       "  payload: x\n",
       "F:7: schedules[0].timezone: time zone: unknown time zone 'Europe/Atlantis' (an IANA name such as "
       "Europe/Berlin, or UTC)"},
  };
  for (const auto& [yaml, message] : cases) EXPECT_EQ(Error(yaml), message) << yaml;
}

}  // namespace
}  // namespace runnel::scheduler
