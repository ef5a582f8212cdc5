// Cron parsing and next-fire computation: a table of cases (month ends, steps, lists, names,
// day-of-month/day-of-week OR, aliases, year rollover, DST in Europe/Berlin and America/New_York)
// and a table of parse errors, each message checked.
#include "runnel/scheduler/cron.hpp"

#include <gmock/gmock.h>

namespace runnel::scheduler {
namespace {

struct NextCase {
  const char* expr;
  const char* tz;
  const char* after;  // UTC
  const char* next;   // UTC
  const char* why;
};

const NextCase kNext[] = {
    {"*/5 * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z", "step from zero; strictly after"},
    {"*/5 * * * *", "UTC", "2026-01-01T00:02:30Z", "2026-01-01T00:05:00Z", "mid-minute"},
    {"30 * * * *", "UTC", "2026-01-01T10:30:00Z", "2026-01-01T11:30:00Z",
     "a slot equal to after is not next"},
    {"1-10/2 * * * *", "UTC", "2026-01-01T00:09:00Z", "2026-01-01T01:01:00Z", "range with step: 1,3,5,7,9"},
    {"5/15 * * * *", "UTC", "2026-01-01T00:50:00Z", "2026-01-01T01:05:00Z",
     "N/STEP runs from N to the maximum"},
    {"0,15,45 9-17 * * *", "UTC", "2026-01-01T17:45:00Z", "2026-01-02T09:00:00Z", "list and hour range"},
    {"0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z", "February and no 31st: skipped"},
    {"0 0 30 * *", "UTC", "2026-01-30T00:00:00Z", "2026-03-30T00:00:00Z", "no 30 February"},
    {"0 0 31 * *", "UTC", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "no 31 April"},
    {"0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z", "29 February: the next leap year"},
    {"0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z", "2100 is not a leap year"},
    {"0 12 * * MON-FRI", "UTC", "2026-01-02T12:00:00Z", "2026-01-05T12:00:00Z", "weekdays: Friday to Monday"},
    {"0 0 1,15 * MON", "UTC", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z",
     "both restricted: OR (a Monday)"},
    {"0 0 1,15 * MON", "UTC", "2026-01-12T00:00:00Z", "2026-01-15T00:00:00Z",
     "both restricted: OR (the 15th, a Thursday)"},
    {"0 0 */2 * MON", "UTC", "2026-01-05T00:00:00Z", "2026-01-19T00:00:00Z",
     "'*/2' day-of-month: AND (odd days that are Mondays)"},
    {"0 0 13 * FRI", "UTC", "2026-02-01T00:00:00Z", "2026-02-06T00:00:00Z",
     "OR: the first Friday comes before the 13th"},
    {"0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z", "7 is Sunday"},
    {"0 0 * * sun", "UTC", "2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z", "names in any case"},
    {"0 0 * * 5-7", "UTC", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z",
     "range ending in 7 includes Sunday"},
    {"0 0 1 JAN,jul *", "UTC", "2026-02-01T00:00:00Z", "2026-07-01T00:00:00Z", "month names in a list"},
    {"0 0 1 1 *", "UTC", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z", "year rollover"},
    {"59 23 31 12 *", "UTC", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z", "last minute of the year"},
    {"@hourly", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", "alias"},
    {"@daily", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "alias"},
    {"@midnight", "UTC", "2026-01-01T00:00:01Z", "2026-01-02T00:00:00Z", "alias"},
    {"@weekly", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z", "alias: Sunday midnight"},
    {"@monthly", "UTC", "2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z", "alias"},
    {"@yearly", "UTC", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z", "alias"},
    {"@annually", "UTC", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z", "alias"},
    {"0 9 * * *", "Asia/Tokyo", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "a zone without DST (UTC+9)"},
    {"0 0 * * *", "Europe/Berlin", "2026-01-01T12:00:00Z", "2026-01-01T23:00:00Z",
     "local midnight in winter (CET)"},
    {"0 0 * * *", "Europe/Berlin", "2026-07-01T12:00:00Z", "2026-07-01T22:00:00Z",
     "local midnight in summer (CEST)"},
    // Europe/Berlin, 29 March 2026: 02:00 CET jumps to 03:00 CEST (01:00Z).
    {"30 2 * * *", "Europe/Berlin", "2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z",
     "spring gap: 02:30 fires at 03:00 CEST"},
    {"30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z",
     "the day after the gap: 02:30 CEST"},
    {"*/30 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z",
     "02:00 and 02:30 collapse into 03:00"},
    {"*/30 * * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z",
     "then 03:30 CEST: no second 03:00"},
    // Europe/Berlin, 25 October 2026: 03:00 CEST falls back to 02:00 CET (01:00Z).
    {"30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z",
     "repeated hour: the first 02:30 (CEST)"},
    {"30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z",
     "repeated hour: not again at 02:30 CET"},
    {"0 * * * *", "Europe/Berlin", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z",
     "hourly: the repeated 02:00 fires once"},
    {"*/20 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", "2026-10-26T01:00:00Z",
     "inside the second pass: wait for tomorrow"},
    // America/New_York, 8 March 2026: 02:00 EST jumps to 03:00 EDT (07:00Z).
    {"30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z",
     "spring gap: 02:30 fires at 03:00 EDT"},
    {"0 3 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z",
     "03:00 EDT, the same instant"},
    // America/New_York, 1 November 2026: 02:00 EDT falls back to 01:00 EST (06:00Z).
    {"30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z",
     "repeated hour: 01:30 EDT"},
    {"30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z",
     "not again at 01:30 EST"},
    {"0 0 * * *", "America/New_York", "2026-12-31T12:00:00Z", "2027-01-01T05:00:00Z",
     "year rollover in local time"},
    {"0 2 * * *", "Europe/Berlin", "2090-03-25T12:00:00Z", "2090-03-26T01:00:00Z",
     "far future (the zone's rule, not its table)"},
};

TEST(CronNextFire, Table) {
  for (const auto& c : kNext) {
    const auto cron = CronSchedule::Parse(c.expr, c.tz);
    EXPECT_EQ(FormatUtc(cron.NextFire(ParseUtc(c.after))), c.next)
        << c.expr << " in " << c.tz << " after " << c.after << ": " << c.why;
  }
}

TEST(CronNextFire, SubSecondAfterStillGivesTheNextWholeMinute) {
  const auto cron = CronSchedule::Parse("* * * * *");
  const auto after = ParseUtc("2026-01-01T00:00:00Z") + std::chrono::milliseconds(1);
  EXPECT_EQ(FormatUtc(cron.NextFire(after)), "2026-01-01T00:01:00Z");
}

TEST(CronNextFire, EveryMinuteAcrossTheBerlinFallBackFiresEachLocalMinuteOnce) {
  const auto cron = CronSchedule::Parse("* * * * *", "Europe/Berlin");
  auto t = ParseUtc("2026-10-24T23:59:00Z");  // 01:59 CEST
  std::vector<std::string> fires;
  for (int i = 0; i < 62; ++i) fires.push_back(FormatUtc(t = cron.NextFire(t)));
  EXPECT_EQ(fires.front(), "2026-10-25T00:00:00Z");  // 02:00 CEST
  EXPECT_EQ(fires[59], "2026-10-25T00:59:00Z");      // 02:59 CEST
  EXPECT_EQ(fires[60], "2026-10-25T02:00:00Z");      // 03:00 CET: the second 02:xx is not repeated
}

struct ErrorCase {
  const char* expr;
  const char* tz;
  const char* message;
};

const ErrorCase kErrors[] = {
    {"61 * * * *", "UTC", "minute: 61 is outside 0-59"},
    {"* 24 * * *", "UTC", "hour: 24 is outside 0-23"},
    {"* * 0 * *", "UTC", "day-of-month: 0 is outside 1-31"},
    {"* * 32 * *", "UTC", "day-of-month: 32 is outside 1-31"},
    {"* * * 13 *", "UTC", "month: 13 is outside 1-12"},
    {"* * * * 8", "UTC", "day-of-week: 8 is outside 0-7"},
    {"* * * FOO *", "UTC", "month: 'FOO' is not a number or a name JAN-DEC"},
    {"* * * * MONDAY", "UTC", "day-of-week: 'MONDAY' is not a number or a name SUN-SAT"},
    {"x * * * *", "UTC", "minute: 'x' is not a number"},
    {"*/0 * * * *", "UTC", "minute: step 0 in '*/0' is outside 1-59"},
    {"*/x * * * *", "UTC", "minute: step 'x' in '*/x' is not a number"},
    {"10-5 * * * *", "UTC", "minute: range '10-5' runs backwards"},
    {"1,,2 * * * *", "UTC", "minute: '1,,2' has an empty list item"},
    {"5- * * * *", "UTC", "minute: an empty value"},
    {"* * * *", "UTC",
     "'* * * *' has 4 field(s); a cron expression has 5 (minute hour day-of-month month day-of-week) or is "
     "an alias such as @daily"},
    {"* * * * * *", "UTC", "has 6 field(s)"},
    {"", "UTC", "has 0 field(s)"},
    {"@fortnightly", "UTC",
     "'@fortnightly' is not a known alias (@yearly, @annually, @monthly, @weekly, @daily, @midnight, "
     "@hourly)"},
    {"0 0 30 2 *", "UTC", "day-of-month: '30' never occurs in month '2'"},
    {"0 0 31 4,6,9,11 *", "UTC", "day-of-month: '31' never occurs in month '4,6,9,11'"},
    {"0 0 * * *", "Mars/Olympus_Mons",
     "time zone: unknown time zone 'Mars/Olympus_Mons' (an IANA name such as Europe/Berlin, or UTC)"},
    {"0 0 * * *", "../etc/passwd", "time zone: '../etc/passwd' is not an IANA time zone name"},
    {"0 0 * * *", "", "time zone: '' is not an IANA time zone name"},
};

TEST(CronParse, ErrorsNameTheFieldAndWhy) {
  for (const auto& c : kErrors) {
    try {
      (void)CronSchedule::Parse(c.expr, c.tz);
      ADD_FAILURE() << "'" << c.expr << "' parsed";
    } catch (const CronError& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr(c.message)) << c.expr;
    }
  }
}

TEST(CronParse, ThirtyFirstWithAWeekdayIsValid) {
  // Both day fields restricted: OR semantics, so it fires on Mondays even in February.
  EXPECT_NO_THROW((void)CronSchedule::Parse("0 0 30 2 MON"));
}

// Found by fuzzing: a year past 2262 does not fit system_clock and came back silently clamped to
// 2262-04-11T23:47:16Z (a scheduler state file holding it would have lost its slot).
TEST(CronFormat, UtcTimesOutsideTheClocksRangeAreRefused) {
  EXPECT_THROW((void)ParseUtc("2320-10-12T02:00:00Z"), CronError);
  EXPECT_THROW((void)ParseUtc("1500-01-01T00:00:00Z"), CronError);
  EXPECT_EQ(FormatUtc(ParseUtc("2261-12-31T23:59:59Z")), "2261-12-31T23:59:59Z");
  EXPECT_EQ(FormatUtc(ParseUtc("1678-01-01T00:00:00Z")), "1678-01-01T00:00:00Z");
}

TEST(CronFormat, LocalTimeShowsTheOffset) {
  EXPECT_EQ(FormatLocal(ParseUtc("2026-07-01T22:00:00Z"), "Europe/Berlin"), "2026-07-02T00:00:00+02:00");
  EXPECT_EQ(FormatUtcCompact(ParseUtc("2026-07-01T22:00:00Z")), "20260701T220000Z");
}

}  // namespace
}  // namespace runnel::scheduler
