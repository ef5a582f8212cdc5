#include "runnel/core/state_dir.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "runnel/core/error.hpp"

namespace runnel {
namespace {

class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            fmt::format("runnel-state-{}-{}", ::getpid(),
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::filesystem::path root_;
};

TEST_F(StateDirTest, NoStackIsOneClearError) {
  StateDir dir(root_);
  try {
    dir.KafkaBootstrap();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("no running Runnel stack"));
  }
}

TEST_F(StateDirTest, ConcurrentWritersKeepEveryKey) {
  StateDir dir(root_);
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&dir, t] {
      for (int i = 0; i < 20; ++i) dir.MergeEndpoints({{fmt::format("k{}_{}", t, i), i}});
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(dir.ReadEndpoints().size(), 160u);
  dir.MergeEndpoints({{"kafka", "127.0.0.1:1234"}});
  EXPECT_EQ(dir.KafkaBootstrap(), "127.0.0.1:1234");
}

TEST_F(StateDirTest, RemovingTheLastKeyRemovesTheFile) {
  StateDir dir(root_);
  dir.MergeEndpoints({{"kafka", "x"}, {"results", "y"}});
  dir.RemoveEndpoints({"results"});
  EXPECT_TRUE(std::filesystem::exists(dir.EndpointsFile()));
  dir.RemoveEndpoints({"kafka"});
  EXPECT_FALSE(std::filesystem::exists(dir.EndpointsFile()));
}

TEST_F(StateDirTest, ResolveOrder) {
  EXPECT_EQ(StateDir::Resolve("/flag").Root(), "/flag");
  ::setenv("RUNNEL_STATE_DIR", "/env", 1);
  EXPECT_EQ(StateDir::Resolve("").Root(), "/env");
  ::unsetenv("RUNNEL_STATE_DIR");
  EXPECT_EQ(StateDir::Resolve("").Root(), ".runnel");
}

}  // namespace
}  // namespace runnel
