// Scheduled batch jobs through a real `runnel up`: `runnel job run NAME --wait` fires a schedule
// now (instead of waiting for its cron slot), every matched file becomes one event tagged with the
// job id, and the report counts items, done and failed (with reasons) from the outcomes.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <fstream>

#include "runnel/testing/stack_process.hpp"
#include "runnel/testing/wait.hpp"

namespace runnel::testing {
namespace {

using ::testing::HasSubstr;

// A valid 2x1 RGB PNG.
const std::string kPng(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\x00\x00\x00\x01\x08\x02"
    "\x00\x00"
    "\x00\x7b\x40\xe8\xdd\x00\x00\x00\x0d\x49\x44\x41\x54\x78\x9c\x63\xf8\xcf\x00\x04\xff\x01\x07\x00\x01\xff"
    "\xe2\x23"
    "\x9e\x59\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    70);

nlohmann::json LastJsonLine(const std::string& out) {
  const auto trimmed = out.substr(0, out.find_last_not_of('\n') + 1);
  const auto line = trimmed.substr(trimmed.rfind('\n') == std::string::npos ? 0 : trimmed.rfind('\n') + 1);
  return nlohmann::json::parse(line);
}

class BatchJob : public ::testing::Test {
 protected:
  void SetUp() override { files_ = TempDir("batch-files"); }
  void TearDown() override { std::filesystem::remove_all(files_); }

  RunResult Job(StackProcess& stack, std::vector<std::string> args) {
    std::vector<std::string> argv = {RunnelBin(), "job"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--state-dir");
    argv.push_back(stack.StateDir().string());
    return RunCommand(argv, std::chrono::seconds(90));
  }

  std::filesystem::path files_;
};

TEST_F(BatchJob, RunNowOverADirectoryReportsEveryFileDone) {
  for (int i = 0; i < 25; ++i) std::ofstream(files_ / fmt::format("reading-{:02}.txt", i)) << "reading " << i;
  std::ofstream(files_ / "ignored.dat") << "not matched by the glob";
  StackProcess stack(fmt::format(R"(
heartbeat: 200ms
functions:
  - name: echo
    workers: 2
schedules:
  - name: nightly
    cron: "0 3 * * *"
    timezone: Europe/Berlin
    function: echo
    files: {{dir: {}, glob: "*.txt"}}
)",
                                 files_.string()));
  EXPECT_THAT(stack.Process().Stdout(), HasSubstr("schedule nightly"));
  ASSERT_TRUE(stack.Endpoints().contains("control"));

  const auto run = Job(stack, {"run", "nightly", "--wait", "--json", "--timeout", "60s"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const auto report = LastJsonLine(run.out);
  const std::string job = report["job"];
  EXPECT_THAT(job, ::testing::StartsWith("nightly-"));
  EXPECT_EQ(report["state"], "done");
  EXPECT_EQ(report["items"], 25);
  EXPECT_EQ(report["done"], 25);
  EXPECT_EQ(report["failed"], 0);
  EXPECT_EQ(report["pending"], 0);
  EXPECT_EQ(report["trigger"], "manual");
  EXPECT_EQ(report["function"], "echo");
  EXPECT_TRUE(report["failures"].empty());
  EXPECT_THAT(run.err, HasSubstr("25/25 finished, 0 failed"))
      << "plain progress lines when not on a terminal";

  // The record in the state dir says the same.
  std::ifstream in(stack.StateDir() / "jobs" / (job + ".json"));
  ASSERT_TRUE(in.good());
  const auto record = nlohmann::json::parse(in);
  EXPECT_EQ(record["done"], 25);
  EXPECT_EQ(record["state"], "done");

  // `job list` shows the schedule with its next fire and this run; `job status` the record.
  const auto list = Job(stack, {"list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  const auto schedules = nlohmann::json::parse(list.out);
  ASSERT_EQ(schedules.size(), 1u);
  EXPECT_EQ(schedules[0]["name"], "nightly");
  EXPECT_EQ(schedules[0]["last_job"], job);
  EXPECT_THAT(schedules[0]["next_fire_local"].get<std::string>(), HasSubstr("T03:00:00+0"));
  const auto status = Job(stack, {"status", job});
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_THAT(status.out, HasSubstr("items     25"));

  // A second run is a new job; without --wait it prints the id and the count.
  const auto again = Job(stack, {"run", "nightly"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("item(s) to echo"));
  EXPECT_THAT(again.out, HasSubstr("25 item(s)"));
  EXPECT_THAT(again.out, ::testing::Not(HasSubstr(job + ":")));

  const auto unknown = Job(stack, {"run", "weekly"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("runnel: no schedule 'weekly' in this stack (schedules: nightly)"));
}

TEST_F(BatchJob, AFailingItemIsReportedWithItsReasonAndExitStatusOne) {
  for (const char* name : {"a.png", "b.png", "c.png"}) std::ofstream(files_ / name, std::ios::binary) << kPng;
  std::ofstream(files_ / "broken.png") << "this is not an image";
  StackProcess stack(fmt::format(R"(
heartbeat: 200ms
functions:
  - name: image.metadata
    workers: 1
schedules:
  - name: photos
    cron: "@daily"
    function: image.metadata
    files: {{dir: {}, glob: "*.png"}}
)",
                                 files_.string()));

  const auto text = Job(stack, {"run", "photos", "--wait", "--timeout", "60s"});
  EXPECT_EQ(text.exit_code, 1) << text.out << text.err;
  EXPECT_THAT(text.out, HasSubstr("items     4"));
  EXPECT_THAT(text.out, HasSubstr("done      3"));
  EXPECT_THAT(text.out, HasSubstr("failed    1"));
  EXPECT_THAT(text.out, HasSubstr("failed: broken.png: bad-input: "));

  const auto json = Job(stack, {"run", "photos", "--wait", "--json", "--timeout", "60s"});
  EXPECT_EQ(json.exit_code, 1) << json.err;
  const auto report = LastJsonLine(json.out);
  EXPECT_EQ(report["state"], "failed");
  EXPECT_EQ(report["done"], 3);
  ASSERT_EQ(report["failures"].size(), 1u);
  EXPECT_EQ(report["failures"][0]["item"], "broken.png");
  EXPECT_EQ(report["failures"][0]["error_kind"], "bad-input");
  EXPECT_FALSE(report["failures"][0]["error"].get<std::string>().empty());
}

TEST_F(BatchJob, WaitingPastTheTimeoutExitsFour) {
  StackProcess stack(R"(
heartbeat: 200ms
functions:
  - name: sleep
    workers: 1
schedules:
  - name: slow
    cron: "0 0 1 1 *"
    function: sleep
    payload: '{"ms": 20000}'
    content_type: application/json
)");
  const auto run = Job(stack, {"run", "slow", "--wait", "--json", "--timeout", "500ms"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  EXPECT_THAT(run.err, HasSubstr("not finished within 0.5 s"));
  const auto report = LastJsonLine(run.out);
  EXPECT_EQ(report["state"], "running");
  EXPECT_EQ(report["pending"], 1);
}

}  // namespace
}  // namespace runnel::testing
