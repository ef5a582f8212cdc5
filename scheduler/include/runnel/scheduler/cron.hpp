// A cron schedule: a 5-field expression (minute hour day-of-month month day-of-week) or an alias,
// evaluated in an IANA time zone. Parse once, then ask NextFire(after) as often as needed.
//
// Syntax, as Vixie cron: each field is a list of items separated by ','; an item is '*', N, N-M,
// any of those followed by '/STEP', or a name (JAN..DEC, SUN..SAT; 7 is Sunday too). Aliases:
// @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly. Day matching: when either
// day field starts with '*', a day must match both; when both are restricted, a day matching
// either fires (so "0 0 1,15 * MON" fires on the 1st, the 15th and every Monday).
//
// Time zones and DST: fields are matched against local wall-clock time. A local time that does
// not exist (skipped by a spring-forward gap) fires at the first valid instant after the gap (the
// transition itself, e.g. 03:00 for 02:30 in Europe/Berlin); a local time that occurs twice (a
// fall-back hour) fires once, at its first occurrence.
//
// Thread-safety: a CronSchedule is immutable after Parse; share it freely.
#pragma once

#include <bitset>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "runnel/core/error.hpp"

namespace runnel::scheduler {

// A bad expression or an unknown time zone; the message names the field and why, e.g.
// "minute: 61 is outside 0-59".
class CronError : public ConfigError {
 public:
  using ConfigError::ConfigError;
};

class CronSchedule {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  // Throws CronError. `time_zone` is an IANA name ("Europe/Berlin") or "UTC".
  static CronSchedule Parse(std::string_view expression, std::string_view time_zone = "UTC");

  // The first firing instant strictly after `after`, on a whole minute.
  TimePoint NextFire(TimePoint after) const;

  const std::string& TimeZone() const { return time_zone_; }

  struct Zone;  // the loaded time zone (private; defined in cron.cpp)

 private:
  CronSchedule() = default;
  bool DayMatches(int year, int month, int day, int weekday) const;

  std::string expression_;
  std::string time_zone_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;       // 1..31
  std::bitset<13> months_;     // 1..12
  std::bitset<7> weekdays_;    // 0 = Sunday
  bool day_star_ = false;      // the day-of-month field starts with '*'
  bool weekday_star_ = false;  // the day-of-week field starts with '*'
  std::shared_ptr<const Zone> zone_;
};

// "2026-11-22T02:00:00Z": an instant in UTC, to the second (for job ids, records, messages).
std::string FormatUtc(CronSchedule::TimePoint t);
// "20261122T020000Z": the same, compact, for ids.
std::string FormatUtcCompact(CronSchedule::TimePoint t);
// Parses FormatUtc's output; throws CronError.
CronSchedule::TimePoint ParseUtc(std::string_view text);
// An instant as local time in `time_zone` with its offset, "2026-11-22T03:00:00+01:00".
std::string FormatLocal(CronSchedule::TimePoint t, std::string_view time_zone);

}  // namespace runnel::scheduler
