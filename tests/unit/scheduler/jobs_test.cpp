// Batch jobs: the items a schedule lists (files by glob, recursive or not; a payload), and the
// job record kept from outcomes: counts, failures with reasons, duplicates ignored, interrupted
// jobs marked on restart.
#include "runnel/scheduler/jobs.hpp"

#include <gmock/gmock.h>

#include <fstream>

#include "runnel/scheduler/scheduler.hpp"
#include "runnel/testing/child_process.hpp"

namespace runnel::scheduler {
namespace {

class JobsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TempDir("jobs"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

nlohmann::json ReadFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

TEST_F(JobsTest, FilesAreListedByGlobSortedWithTheirReferences) {
  const auto photos = dir_ / "photos";
  std::filesystem::create_directories(photos / "2026");
  std::ofstream(photos / "b.jpg") << "bb";
  std::ofstream(photos / "a.JPG") << "a";
  std::ofstream(photos / "notes.txt") << "n";
  std::ofstream(photos / ".hidden.jpg") << "h";
  std::ofstream(photos / "2026" / "c.jpg") << "ccc";
  std::ofstream(photos / "with space.jpg") << "s";
  ScheduleSpec spec;
  spec.files = ScheduleSpec::Files{photos.string(), "*.jpg", false};
  auto items = ListBatchItems(spec);
  ASSERT_EQ(items.size(), 2u) << "case-sensitive glob, no hidden files, no subfolders";
  EXPECT_EQ(items[0].label, "b.jpg");
  EXPECT_EQ(items[1].label, "with space.jpg");
  const Envelope& env = items[0].envelope;
  ASSERT_TRUE(env.file.has_value());
  EXPECT_EQ(env.file->path, (photos / "b.jpg").string());
  EXPECT_EQ(env.file->size, 2u);
  EXPECT_EQ(env.file->name, "b.jpg");
  EXPECT_EQ(env.content_type, "image/jpeg");
  EXPECT_EQ(env.id.size(), 26u);
  EXPECT_TRUE(items[0].payload.empty());
  // The envelope encodes (the file URI is percent-encoded) and decodes back.
  Envelope round = Envelope::Decode(items[1].envelope.Encode());
  EXPECT_EQ(round.file->path, (photos / "with space.jpg").string());

  spec.files->recursive = true;
  spec.files->glob = "*.[jJ][pP][gG]";
  items = ListBatchItems(spec);
  std::vector<std::string> labels;
  for (const auto& i : items) labels.push_back(i.label);
  EXPECT_THAT(labels, ::testing::ElementsAre("2026/c.jpg", "a.JPG", "b.jpg", "with space.jpg"));
}

TEST_F(JobsTest, AMissingDirectoryIsAnError) {
  ScheduleSpec spec;
  spec.files = ScheduleSpec::Files{(dir_ / "nope").string(), "*", false};
  EXPECT_THROW((void)ListBatchItems(spec), Error);
}

TEST_F(JobsTest, APayloadIsOneEvent) {
  ScheduleSpec spec;
  spec.payload = "{}";
  spec.content_type = "application/json";
  const auto items = ListBatchItems(spec);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].payload, "{}");
  EXPECT_EQ(items[0].envelope.content_type, "application/json");
  EXPECT_FALSE(items[0].envelope.file.has_value());
}

Outcome Result(const BatchItem& item, const std::string& job, OutcomeStatus status,
               const std::string& error = {}) {
  Outcome o;
  o.id = item.envelope.id;
  o.job_id = job;
  o.status = status;
  o.error = error;
  o.error_kind = error.empty() ? "" : "bad-input";
  return o;
}

TEST_F(JobsTest, TheRecordCountsOutcomesOnceAndEndsWithFailures) {
  ScheduleSpec spec;
  spec.payload = "x";
  std::vector<BatchItem> items;
  for (int i = 0; i < 3; ++i) {
    auto one = ListBatchItems(spec);
    one[0].label = "item" + std::to_string(i);
    items.push_back(one[0]);
  }
  const auto t0 = ParseUtc("2026-01-01T02:00:00Z");
  JobTracker jobs(dir_ / "jobs");
  const std::string id = jobs.NewJobId("nightly-20260101T020000Z");
  EXPECT_EQ(id, "nightly-20260101T020000Z");
  jobs.Begin({id, "nightly", "echo", "cron", t0}, items, t0);
  EXPECT_EQ(jobs.NewJobId("nightly-20260101T020000Z"), "nightly-20260101T020000Z-2");
  auto record = ReadFile(jobs.RecordFile(id));
  EXPECT_EQ(record["state"], "running");
  EXPECT_EQ(record["items"], 3);
  EXPECT_EQ(record["pending"], 3);
  EXPECT_EQ(record["slot"], "2026-01-01T02:00:00Z");

  jobs.OnOutcome(Result(items[0], id, OutcomeStatus::kOk), t0 + std::chrono::seconds(1));
  jobs.OnOutcome(Result(items[0], id, OutcomeStatus::kOk), t0 + std::chrono::seconds(1));  // a duplicate
  jobs.OnOutcome(Result(items[1], "other-job", OutcomeStatus::kOk), t0 + std::chrono::seconds(1));
  jobs.OnOutcome(Result(items[1], id, OutcomeStatus::kError, "not a PNG"), t0 + std::chrono::seconds(2));
  jobs.Flush(t0 + std::chrono::seconds(2), true);
  record = ReadFile(jobs.RecordFile(id));
  EXPECT_EQ(record["done"], 1);
  EXPECT_EQ(record["failed"], 1);
  EXPECT_EQ(record["pending"], 1);
  EXPECT_EQ(record["state"], "running");

  jobs.OnOutcome(Result(items[2], id, OutcomeStatus::kOk), t0 + std::chrono::seconds(3));
  jobs.Flush(t0 + std::chrono::seconds(4), true);
  record = ReadFile(jobs.RecordFile(id));
  EXPECT_EQ(record["state"], "failed");
  EXPECT_EQ(record["done"], 2);
  EXPECT_EQ(record["failed"], 1);
  EXPECT_EQ(record["pending"], 0);
  EXPECT_EQ(record["elapsed_ms"], 3000);
  EXPECT_EQ(record["finished_at"], "2026-01-01T02:00:03Z");
  ASSERT_EQ(record["failures"].size(), 1u);
  EXPECT_EQ(record["failures"][0]["item"], "item1");
  EXPECT_EQ(record["failures"][0]["error"], "not a PNG");
  EXPECT_EQ(record["failures"][0]["error_kind"], "bad-input");
  EXPECT_EQ(jobs.Record(id)->at("state"), "failed") << "from the file once the job left memory";
}

TEST_F(JobsTest, AnEmptyJobIsDoneAndARunningOneIsInterruptedByARestart) {
  const auto t0 = ParseUtc("2026-01-01T02:00:00Z");
  ScheduleSpec spec;
  spec.payload = "x";
  {
    JobTracker jobs(dir_ / "jobs");
    jobs.Begin({"empty-1", "empty", "echo", "manual", std::nullopt}, {}, t0);
    EXPECT_EQ(jobs.Record("empty-1")->at("state"), "done");
    jobs.Begin({"busy-1", "busy", "echo", "manual", std::nullopt}, ListBatchItems(spec), t0);
    jobs.BeginFailed({"broken-1", "broken", "echo", "cron", t0}, "files.dir /x is not a directory", t0);
    EXPECT_EQ(jobs.Record("broken-1")->at("state"), "failed");
    EXPECT_EQ(jobs.Record("broken-1")->at("error"), "files.dir /x is not a directory");
  }
  JobTracker restarted(dir_ / "jobs");
  const auto busy = restarted.Record("busy-1");
  ASSERT_TRUE(busy.has_value());
  EXPECT_EQ(busy->at("state"), "interrupted");
  EXPECT_EQ(restarted.Record("empty-1")->at("state"), "done");
  EXPECT_FALSE(restarted.Record("nope").has_value());
}

}  // namespace
}  // namespace runnel::scheduler
