// runnel.yaml's function-level `batch: {size, window}`: accepted forms, environment expansion, and
// each mistake's message with its file, line and key.
#include <gmock/gmock.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runnel/core/config.hpp"
#include "runnel/core/error.hpp"

namespace runnel {
namespace {

using std::chrono::milliseconds;

StackConfig Load(const std::string& yaml) {
  const auto file =
      std::filesystem::temp_directory_path() / ("runnel-batch-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(file) << yaml;
  struct Cleanup {  // NOLINT(cppcoreguidelines-special-member-functions): an aggregate used once
    std::filesystem::path file;
    ~Cleanup() { std::filesystem::remove(file); }
  } cleanup{file};
  return LoadStackConfig(file);
}

// The error with the temporary file's name replaced by "FILE".
std::string LoadError(const std::string& yaml) {
  try {
    Load(yaml);
  } catch (const ConfigError& e) {
    std::string message = e.what();
    return message.substr(message.find(".yaml:") + 1).replace(0, 4, "FILE");
  }
  return "(no error)";
}

std::string WithBatch(const std::string& batch) {
  return "functions:\n  - name: iot.ingest\n    concurrency: 4\n    batch: " + batch + "\n";
}

TEST(BatchConfig, UnsetMeansTheFunctionsOwnDefault) {
  const auto c = Load("functions:\n  - name: iot.ingest\n");
  EXPECT_FALSE(c.functions.at(0).batch.has_value());
  EXPECT_EQ(c.functions.at(0).batch_line, 0);
}

TEST(BatchConfig, SizeAndWindow) {
  const auto c = Load(WithBatch("{size: 50, window: 200ms}"));
  ASSERT_TRUE(c.functions.at(0).batch.has_value());
  EXPECT_EQ(c.functions.at(0).batch->size, 50u);
  EXPECT_EQ(c.functions.at(0).batch->window, milliseconds(200));
  EXPECT_EQ(c.functions.at(0).batch_line, 4);
  const auto block =
      Load("functions:\n  - name: iot.ingest\n    batch:\n      size: 10000\n      window: 1m\n");
  EXPECT_EQ(block.functions.at(0).batch->size, 10000u);
  EXPECT_EQ(block.functions.at(0).batch->window, milliseconds(60'000));
}

TEST(BatchConfig, TheWindowDefaultsToZero) {
  const auto c = Load(WithBatch("{size: 1}"));
  EXPECT_EQ(c.functions.at(0).batch->size, 1u);
  EXPECT_EQ(c.functions.at(0).batch->window, milliseconds(0));
}

TEST(BatchConfig, ValuesComeFromTheEnvironment) {
  ::setenv("RUNNEL_TEST_BATCH", "25", 1);
  ::unsetenv("RUNNEL_TEST_BATCH_WINDOW");
  const auto c =
      Load(WithBatch("{size: \"${RUNNEL_TEST_BATCH}\", window: \"${RUNNEL_TEST_BATCH_WINDOW:-750ms}\"}"));
  EXPECT_EQ(c.functions.at(0).batch->size, 25u);
  EXPECT_EQ(c.functions.at(0).batch->window, milliseconds(750));
  ::unsetenv("RUNNEL_TEST_BATCH");
  EXPECT_EQ(LoadError(WithBatch("{size: \"${RUNNEL_TEST_BATCH}\"}")),
            "FILE:4: functions[0].batch.size: ${RUNNEL_TEST_BATCH} is not set (set it, or give a default: "
            "${RUNNEL_TEST_BATCH:-value})");
}

TEST(BatchConfig, EachMistakeHasAPreciseMessage) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{size: 0}", "FILE:4: functions[0].batch.size: 0 is outside 1..10000"},
      {"{size: 10001}", "FILE:4: functions[0].batch.size: 10001 is outside 1..10000"},
      {"{size: many}", "FILE:4: functions[0].batch.size: 'many' is not a valid integer"},
      {"{window: 500ms}", "FILE:4: functions[0].batch.size: is required (events per call, 1..10000)"},
      {"{size: 10, window: 61s}", "FILE:4: functions[0].batch.window: must be at most 60s"},
      {"{size: 10, window: -1s}", "FILE:4: functions[0].batch.window: '-1s' is negative"},
      {"{size: 10, window: 5x}",
       "FILE:4: functions[0].batch.window: '5x' is not a duration like 500ms, 30s or 2m (units: ms, s, m, "
       "h)"},
      {"{size: 10, max_events: 4}",
       "FILE:4: functions[0].batch.max_events: unknown key (known: size, window)"},
      {"100", "FILE:4: functions[0].batch: must be a mapping like {size: 100, window: 500ms}"},
      {"[100, 500ms]", "FILE:4: functions[0].batch: must be a mapping like {size: 100, window: 500ms}"},
  };
  for (const auto& [batch, message] : cases) EXPECT_EQ(LoadError(WithBatch(batch)), message) << batch;
}

}  // namespace
}  // namespace runnel
