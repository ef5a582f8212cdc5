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
    const auto file = dir_ / "runnel.yaml";
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

}  // namespace
}  // namespace runnel
