// The scheduler's timing with a fake clock: fires on the slot, once; records the slot in the
// state dir; no double fire after a restart; catch-up within the window or skip; a suspended
// machine fires once for the latest slot.
#include "runnel/scheduler/scheduler.hpp"

#include <gmock/gmock.h>

#include <fstream>

#include "runnel/testing/child_process.hpp"

namespace runnel::scheduler {
namespace {

TimePoint T(const char* utc) { return ParseUtc(utc); }

CompiledSchedule Every5(std::chrono::milliseconds catch_up = {}) {
  ScheduleSpec spec;
  spec.name = "five";
  spec.cron = "*/5 * * * *";
  spec.function = "echo";
  spec.catch_up = catch_up;
  return {spec, CronSchedule::Parse(spec.cron)};
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TempDir("scheduler"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path StateFile() const { return dir_ / "schedules.json"; }
  std::string LastSlot() const {
    std::ifstream in(StateFile());
    return nlohmann::json::parse(in)["schedules"]["five"].value("last_slot", "");
  }
  std::filesystem::path dir_;
};

TEST_F(SchedulerTest, FiresOnceAtTheSlotAndRecordsIt) {
  Scheduler s({Every5()}, StateFile(), T("2026-01-01T00:01:00Z"));
  EXPECT_EQ(FormatUtc(*s.NextFire("five")), "2026-01-01T00:05:00Z");
  EXPECT_TRUE(s.Due(T("2026-01-01T00:04:59Z")).empty());
  EXPECT_FALSE(std::filesystem::exists(StateFile())) << "nothing fired, nothing written";
  const auto due = s.Due(T("2026-01-01T00:05:00Z"));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].schedule, "five");
  EXPECT_EQ(FormatUtc(due[0].slot), "2026-01-01T00:05:00Z");
  EXPECT_FALSE(due[0].catch_up);
  EXPECT_EQ(LastSlot(), "2026-01-01T00:05:00Z");
  EXPECT_TRUE(s.Due(T("2026-01-01T00:05:30Z")).empty());
  EXPECT_EQ(s.Due(T("2026-01-01T00:10:00Z") + std::chrono::milliseconds(200)).size(), 1u);
}

TEST_F(SchedulerTest, ARestartedStackDoesNotFireARecordedSlotAgain) {
  {
    Scheduler s({Every5(std::chrono::minutes(10))}, StateFile(), T("2026-01-01T00:04:00Z"));
    ASSERT_EQ(s.Due(T("2026-01-01T00:05:00Z")).size(), 1u);
  }
  // Restarted 20 s later, with a catch-up window that covers the slot: it was recorded, so no.
  Scheduler again({Every5(std::chrono::minutes(10))}, StateFile(), T("2026-01-01T00:05:20Z"));
  EXPECT_TRUE(again.Due(T("2026-01-01T00:05:20Z")).empty());
  EXPECT_TRUE(again.Due(T("2026-01-01T00:09:59Z")).empty());
  const auto due = again.Due(T("2026-01-01T00:10:00Z"));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(FormatUtc(due[0].slot), "2026-01-01T00:10:00Z");
}

TEST_F(SchedulerTest, ARecordedSlotInTheFutureIsNotRepeatedWhenTheClockWentBack) {
  {
    Scheduler s({Every5()}, StateFile(), T("2026-01-01T00:04:00Z"));
    ASSERT_EQ(s.Due(T("2026-01-01T00:05:00Z")).size(), 1u);
  }
  Scheduler again({Every5()}, StateFile(), T("2026-01-01T00:03:00Z"));
  EXPECT_EQ(FormatUtc(*again.NextFire("five")), "2026-01-01T00:10:00Z");
}

TEST_F(SchedulerTest, MissedSlotsAreSkippedWithoutCatchUp) {
  {
    Scheduler s({Every5()}, StateFile(), T("2026-01-01T00:04:00Z"));
    ASSERT_EQ(s.Due(T("2026-01-01T00:05:00Z")).size(), 1u);
  }
  Scheduler again({Every5()}, StateFile(), T("2026-01-01T00:17:00Z"));
  EXPECT_TRUE(again.Due(T("2026-01-01T00:17:00Z")).empty());
  EXPECT_EQ(FormatUtc(*again.NextFire("five")), "2026-01-01T00:20:00Z");
}

TEST_F(SchedulerTest, TheLatestSlotMissedWithinTheCatchUpWindowFiresOnceAtStart) {
  {
    Scheduler s({Every5(std::chrono::minutes(10))}, StateFile(), T("2026-01-01T00:04:00Z"));
    ASSERT_EQ(s.Due(T("2026-01-01T00:05:00Z")).size(), 1u);
  }
  Scheduler again({Every5(std::chrono::minutes(10))}, StateFile(), T("2026-01-01T00:17:00Z"));
  const auto due = again.Due(T("2026-01-01T00:17:00Z"));
  ASSERT_EQ(due.size(), 1u) << "00:10 and 00:15 were missed: one firing, for the latest";
  EXPECT_EQ(FormatUtc(due[0].slot), "2026-01-01T00:15:00Z");
  EXPECT_TRUE(due[0].catch_up);
  EXPECT_EQ(LastSlot(), "2026-01-01T00:15:00Z");
  EXPECT_TRUE(again.Due(T("2026-01-01T00:18:00Z")).empty());
  EXPECT_EQ(again.Due(T("2026-01-01T00:20:00Z")).size(), 1u);
  // And a second restart does not catch up 00:15 again.
  Scheduler third({Every5(std::chrono::minutes(10))}, StateFile(), T("2026-01-01T00:20:30Z"));
  EXPECT_TRUE(third.Due(T("2026-01-01T00:20:30Z")).empty());
}

TEST_F(SchedulerTest, ANewScheduleCatchesNothingUp) {
  Scheduler s({Every5(std::chrono::minutes(10))}, StateFile(), T("2026-01-01T00:04:00Z"));
  EXPECT_TRUE(s.Due(T("2026-01-01T00:04:00Z")).empty()) << "00:00 passed before the schedule existed here";
}

TEST_F(SchedulerTest, SlotsOlderThanTheCatchUpWindowAreSkipped) {
  {
    Scheduler s({Every5(std::chrono::minutes(2))}, StateFile(), T("2026-01-01T00:04:00Z"));
    ASSERT_EQ(s.Due(T("2026-01-01T00:05:00Z")).size(), 1u);
  }
  Scheduler again({Every5(std::chrono::minutes(2))}, StateFile(), T("2026-01-01T00:18:00Z"));
  EXPECT_TRUE(again.Due(T("2026-01-01T00:18:00Z")).empty()) << "00:15 is 3 minutes back, the window 2";
}

TEST_F(SchedulerTest, ASuspendedMachineFiresOnceForTheLatestSlot) {
  Scheduler s({Every5()}, StateFile(), T("2026-01-01T00:01:00Z"));
  ASSERT_EQ(s.Due(T("2026-01-01T00:05:00Z")).size(), 1u);
  const auto due = s.Due(T("2026-01-01T00:31:00Z"));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(FormatUtc(due[0].slot), "2026-01-01T00:30:00Z");
  EXPECT_EQ(FormatUtc(*s.NextFire("five")), "2026-01-01T00:35:00Z");
}

TEST_F(SchedulerTest, JobsAreListedWithNextFireAndLastRun) {
  Scheduler s({Every5()}, StateFile(), T("2026-01-01T00:01:00Z"));
  s.NoteJob("five", "five-20260101T000130Z", T("2026-01-01T00:01:30Z"));
  const auto list = s.List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "five");
  EXPECT_EQ(list[0]["next_fire"], "2026-01-01T00:05:00Z");
  EXPECT_EQ(list[0]["last_job"], "five-20260101T000130Z");
  EXPECT_EQ(list[0]["last_run_at"], "2026-01-01T00:01:30Z");
  EXPECT_EQ(list[0]["last_slot"], "") << "a manual run is not a slot";
}

TEST_F(SchedulerTest, ACorruptStateFileIsAClearError) {
  std::ofstream(StateFile()) << "{not json";
  try {
    Scheduler s({Every5()}, StateFile(), T("2026-01-01T00:01:00Z"));
    ADD_FAILURE() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("schedules.json is not a schedules record; fix or remove it"));
  }
}

}  // namespace
}  // namespace runnel::scheduler
