// The slim worker's flags (runnel-worker): the same as `runnel worker`, parsed without CLI11.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runnel/workers/worker_main.hpp"

namespace runnel::workers {
namespace {

TEST(WorkerArgs, ParsesEveryFlagInBothSpellings) {
  const auto parsed = ParseWorkerArgs(
      {"--function", "echo", "--dispatcher=tcp://127.0.0.1:5", "--id=w-7", "--capacity", "8", "--threads=3"});
  ASSERT_TRUE(parsed.options) << parsed.error;
  EXPECT_EQ(parsed.options->function, "echo");
  EXPECT_EQ(parsed.options->dispatcher, "tcp://127.0.0.1:5");
  EXPECT_EQ(parsed.options->id, "w-7");
  EXPECT_EQ(parsed.options->capacity, 8u);
  EXPECT_EQ(parsed.options->threads, 3u);
}

TEST(WorkerArgs, StandbyIsAFlagWithoutValue) {
  const auto parsed =
      ParseWorkerArgs({"--function", "echo", "--dispatcher", "tcp://127.0.0.1:5", "--standby"});
  ASSERT_TRUE(parsed.options) << parsed.error;
  EXPECT_TRUE(parsed.standby);
  EXPECT_FALSE(ParseWorkerArgs({"--function", "echo", "--dispatcher", "d"}).standby);
  EXPECT_EQ(ParseWorkerArgs({"--function", "echo", "--dispatcher", "d", "--standby=1"}).error,
            "unknown argument '--standby=1'");
}

// A standby waits for one byte; the end of its input means it is not needed.
TEST(WorkerArgs, AwaitStartStartsOnAByteAndNotOnTheEndOfInput) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  ASSERT_EQ(::write(fds[0], "g", 1), 1);
  EXPECT_TRUE(AwaitStart(fds[1]));
  // After the byte the descriptor is /dev/null: reading it gives the end of input at once.
  char c = 0;
  EXPECT_EQ(::read(fds[1], &c, 1), 0);
  ::close(fds[1]);
  ::close(fds[0]);

  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  ::close(fds[0]);
  EXPECT_FALSE(AwaitStart(fds[1]));
  ::close(fds[1]);
}

TEST(WorkerArgs, DefaultsMatchRunnelWorker) {
  const auto parsed = ParseWorkerArgs({"--function", "echo", "--dispatcher", "tcp://127.0.0.1:5"});
  ASSERT_TRUE(parsed.options) << parsed.error;
  const WorkerOptions defaults;
  EXPECT_EQ(parsed.options->capacity, defaults.capacity);
  EXPECT_EQ(parsed.options->threads, defaults.threads);
  EXPECT_TRUE(parsed.options->id.empty());
}

TEST(WorkerArgs, RefusesWhatRunnelWorkerRefusesWithTheReason) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"--dispatcher", "tcp://x:1"}, "--function is required"},
      {{"--function", "echo"}, "--dispatcher is required (or --join TOKEN_FILE)"},
      {{"--function", "echo", "--join", "t.json", "--dispatcher", "d"},
       "--join takes the dispatcher and the keys from the token: no --dispatcher or --keys with it"},
      {{"--function", "echo", "--join", "t.json", "--keys", "k"},
       "--join takes the dispatcher and the keys from the token: no --dispatcher or --keys with it"},
      {{"--function", "echo", "--dispatcher", "d", "--keys"}, "--keys needs a value"},
      {{"--function"}, "--function needs a value"},
      {{"--function", "echo", "--dispatcher", "d", "--capacity", "0"},
       "--capacity: must be a whole number in 1..100000, got '0'"},
      {{"--function", "echo", "--dispatcher", "d", "--capacity", "100001"},
       "--capacity: must be a whole number in 1..100000, got '100001'"},
      {{"--function", "echo", "--dispatcher", "d", "--threads", "2x"},
       "--threads: must be a whole number in 1..1024, got '2x'"},
      {{"--function", "echo", "--dispatcher", "d", "--threads", "-1"},
       "--threads: must be a whole number in 1..1024, got '-1'"},
      {{"--function", "echo", "--dispatcher", "d", "extra"}, "unknown argument 'extra'"},
      {{"--function", "echo", "--dispatcher", "d", "--colour=blue"}, "unknown argument '--colour=blue'"},
  };
  for (const auto& c : cases) {
    const auto parsed = ParseWorkerArgs(c.args);
    EXPECT_FALSE(parsed.options);
    EXPECT_EQ(parsed.error, c.error);
  }
}

TEST(WorkerArgs, HelpAndVersionAreMessagesNotErrors) {
  const auto help = ParseWorkerArgs({"--function", "echo", "--help"});
  EXPECT_FALSE(help.options);
  EXPECT_TRUE(help.error.empty());
  EXPECT_NE(help.message.find("--dispatcher ENDPOINT"), std::string::npos);
  const auto version = ParseWorkerArgs({"--version"});
  EXPECT_TRUE(version.error.empty());
  EXPECT_EQ(version.message.rfind("runnel-worker ", 0), 0u) << version.message;
}

}  // namespace
}  // namespace runnel::workers
