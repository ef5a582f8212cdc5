// runnel.yaml's `scaling` map and the legacy `workers` count.
#include <gmock/gmock.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runnel/core/config.hpp"
#include "runnel/core/error.hpp"

namespace runnel {
namespace {

using ::testing::HasSubstr;

StackConfig Load(const std::string& yaml) {
  const auto file =
      std::filesystem::temp_directory_path() / ("runnel-scaling-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(file) << yaml;
  auto cleanup = [&] { std::filesystem::remove(file); };
  try {
    auto c = LoadStackConfig(file);
    cleanup();
    return c;
  } catch (...) {
    cleanup();
    throw;
  }
}

std::string LoadError(const std::string& yaml) {
  try {
    Load(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ScalingConfig, DefaultsScaleFromZeroToFour) {
  const auto c = Load("functions:\n  - name: echo\n");
  const ScalingSpec& s = c.functions.at(0).scaling;
  EXPECT_EQ(s.min, 0);
  EXPECT_EQ(s.max, 4);
  EXPECT_EQ(s.warm, 0);
  EXPECT_EQ(s.target_drain, std::chrono::seconds(10));
  EXPECT_EQ(s.idle_to_zero, std::chrono::seconds(30));
  EXPECT_EQ(s.stabilization, std::chrono::seconds(30));
}

TEST(ScalingConfig, EveryKey) {
  const auto c = Load(R"(functions:
  - name: sleep
    scaling: {min: 1, max: 6, target_drain: 2s, idle_to_zero: 500ms, stabilization: 1m, warm: 2}
)");
  const ScalingSpec& s = c.functions.at(0).scaling;
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 6);
  EXPECT_EQ(s.warm, 2);
  EXPECT_EQ(s.target_drain, std::chrono::seconds(2));
  EXPECT_EQ(s.idle_to_zero, std::chrono::milliseconds(500));
  EXPECT_EQ(s.stabilization, std::chrono::minutes(1));
}

TEST(ScalingConfig, WorkersIsAFixedCount) {
  const auto c = Load("functions:\n  - name: echo\n    workers: 3\n");
  EXPECT_EQ(c.functions.at(0).scaling.min, 3);
  EXPECT_EQ(c.functions.at(0).scaling.max, 3);
}

TEST(ScalingConfig, MinAloneRaisesTheDefaultMax) {
  const auto c = Load("functions:\n  - name: echo\n    scaling: {min: 6}\n");
  EXPECT_EQ(c.functions.at(0).scaling.max, 6);
}

TEST(ScalingConfig, SharedIsOffUnlessSaid) {
  EXPECT_FALSE(Load("functions:\n  - name: echo\n").functions.at(0).scaling.shared);
  EXPECT_TRUE(
      Load("functions:\n  - name: echo\n    scaling: {shared: true}\n").functions.at(0).scaling.shared);
  EXPECT_THAT(LoadError("functions:\n  - name: echo\n    scaling: {shared: 2}\n"),
              HasSubstr(":3: functions[0].scaling.shared: '2' is not a valid boolean"));
}

TEST(ScalingConfig, ErrorsNameFileLineAndKey) {
  EXPECT_THAT(LoadError("functions:\n  - name: echo\n    scaling: {mni: 1}\n"),
              HasSubstr(":3: functions[0].scaling.mni: unknown key (known: idle_to_zero, max, min, shared, "
                        "stabilization, target_drain, warm)"));
  EXPECT_THAT(LoadError("functions:\n  - name: echo\n    scaling: {min: 5, max: 2}\n"),
              HasSubstr(":3: functions[0].scaling.min: 5 is above max 2"));
  EXPECT_THAT(LoadError("functions:\n  - name: echo\n    scaling: {max: 0}\n"),
              HasSubstr("functions[0].scaling.max: 0 is outside 1..1000"));
  EXPECT_THAT(LoadError("functions:\n  - name: echo\n    scaling: {warm: 3, max: 2}\n"),
              HasSubstr("functions[0].scaling.warm: 3 is above max 2"));
  EXPECT_THAT(LoadError("functions:\n  - name: echo\n    scaling: {idle_to_zero: soon}\n"),
              HasSubstr("functions[0].scaling.idle_to_zero: 'soon' is not a duration"));
  EXPECT_THAT(LoadError("functions:\n  - name: echo\n    scaling: {target_drain: 10ms}\n"),
              HasSubstr("functions[0].scaling.target_drain: must be at least 100ms"));
  EXPECT_THAT(LoadError("functions:\n  - name: echo\n    workers: 2\n    scaling: {max: 3}\n"),
              HasSubstr(":3: functions[0].workers: a fixed count; use scaling.min and scaling.max"));
  EXPECT_THAT(LoadError("functions:\n  - name: echo\n    scaling: 3\n"),
              HasSubstr("functions[0].scaling: must be a mapping"));
}

}  // namespace
}  // namespace runnel
