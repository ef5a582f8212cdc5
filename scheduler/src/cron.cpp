#include "runnel/scheduler/cron.hpp"

#include <absl/time/civil_time.h>
#include <absl/time/time.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <vector>

namespace runnel::scheduler {

struct CronSchedule::Zone {
  absl::TimeZone tz;
};

namespace {

struct FieldSpec {
  const char* name;
  int lo;
  int hi;
  const char* const* names;  // 3-letter names for lo.., or nullptr
  const char* names_hint;
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

constexpr std::array<FieldSpec, 5> kFields = {{
    {"minute", 0, 59, nullptr, ""},
    {"hour", 0, 23, nullptr, ""},
    {"day-of-month", 1, 31, nullptr, ""},
    {"month", 1, 12, kMonthNames, " or a name JAN-DEC"},
    {"day-of-week", 0, 7, kDayNames, " or a name SUN-SAT"},
}};

[[noreturn]] void Fail(const FieldSpec& f, const std::string& why) {
  throw CronError(fmt::format("{}: {}", f.name, why));
}

int Value(const FieldSpec& f, std::string_view text) {
  if (text.empty()) Fail(f, "an empty value");
  if (f.names != nullptr && std::isalpha(static_cast<unsigned char>(text[0]))) {
    std::string upper(text);
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    const int count = f.hi - f.lo + (f.lo == 0 ? 0 : 1);  // day-of-week: 7 names for 0..6
    for (int i = 0; i < count; ++i) {
      if (upper == f.names[i]) return f.lo + i;
    }
    Fail(f, fmt::format("'{}' is not a number{}", text, f.names_hint));
  }
  int v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    Fail(f, fmt::format("'{}' is not a number{}", text, f.names_hint));
  }
  if (v < f.lo || v > f.hi) Fail(f, fmt::format("{} is outside {}-{}", v, f.lo, f.hi));
  return v;
}

// Sets the bits of one field; returns whether the field starts with '*'.
bool ParseField(const FieldSpec& f, std::string_view text, std::vector<bool>& bits) {
  bits.assign(static_cast<std::size_t>(f.hi) + 1, false);
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string_view item =
        text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty()) Fail(f, fmt::format("'{}' has an empty list item", text));
    std::string_view base = item;
    int step = 1;
    if (const auto slash = item.find('/'); slash != std::string_view::npos) {
      base = item.substr(0, slash);
      const std::string_view step_text = item.substr(slash + 1);
      const auto [end, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      if (step_text.empty() || ec != std::errc() || end != step_text.data() + step_text.size()) {
        Fail(f, fmt::format("step '{}' in '{}' is not a number", step_text, item));
      }
      if (step < 1 || step > f.hi) Fail(f, fmt::format("step {} in '{}' is outside 1-{}", step, item, f.hi));
    }
    int lo = f.lo;
    int hi = f.hi;
    if (base == "*") {
      if (f.lo == 0 && f.hi == 7) hi = 6;  // '*' in day-of-week: 0-6 (7 is Sunday again)
    } else if (const auto dash = base.find('-'); dash != std::string_view::npos) {
      lo = Value(f, base.substr(0, dash));
      hi = Value(f, base.substr(dash + 1));
      if (lo > hi) Fail(f, fmt::format("range '{}' runs backwards", base));
    } else {
      lo = Value(f, base);
      // "N/STEP" means N through the maximum, as cronie reads it.
      hi = item.find('/') == std::string_view::npos ? lo : (f.lo == 0 && f.hi == 7 ? 6 : f.hi);
      if (lo > hi) hi = lo;
    }
    for (int v = lo; v <= hi; v += step) bits[static_cast<std::size_t>(v)] = true;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return text.front() == '*';
}

constexpr int DaysIn(int month) {
  constexpr int kDays[] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};  // February: leap years
  return kDays[month];
}

bool ValidZoneName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '/' || name.find("..") != std::string_view::npos)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' || c == '+';
  });
}

absl::Time Resolve(const absl::TimeZone& tz, const absl::CivilMinute& minute) {
  const auto info = tz.At(absl::CivilSecond(minute));
  switch (info.kind) {
    case absl::TimeZone::TimeInfo::SKIPPED:
      return info.trans;  // the first valid instant after the gap
    case absl::TimeZone::TimeInfo::REPEATED:
    case absl::TimeZone::TimeInfo::UNIQUE:
    default:
      return info.pre;  // the first occurrence
  }
}

}  // namespace

CronSchedule CronSchedule::Parse(std::string_view expression, std::string_view time_zone) {
  CronSchedule c;
  c.expression_ = std::string(expression);
  c.time_zone_ = std::string(time_zone);
  if (!ValidZoneName(time_zone))
    throw CronError(fmt::format("time zone: '{}' is not an IANA time zone name", time_zone));
  auto zone = std::make_shared<Zone>();
  if (!absl::LoadTimeZone(std::string(time_zone), &zone->tz)) {
    throw CronError(fmt::format(
        "time zone: unknown time zone '{}' (an IANA name such as Europe/Berlin, or UTC)", time_zone));
  }
  c.zone_ = std::move(zone);

  std::string text(expression);
  text.erase(0, text.find_first_not_of(" \t"));
  text.erase(text.find_last_not_of(" \t") + 1);
  if (!text.empty() && text.front() == '@') {
    static const std::pair<const char*, const char*> kAliases[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}};
    const auto it = std::find_if(std::begin(kAliases), std::end(kAliases),
                                 [&](const auto& a) { return text == a.first; });
    if (it == std::end(kAliases)) {
      throw CronError(fmt::format(
          "'{}' is not a known alias (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)",
          text));
    }
    text = it->second;
  }
  std::vector<std::string_view> fields;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == ' ' || text[i] == '\t') {
      ++i;
      continue;
    }
    const std::size_t end = text.find_first_of(" \t", i);
    fields.emplace_back(
        std::string_view(text).substr(i, end == std::string::npos ? std::string::npos : end - i));
    i = end == std::string::npos ? text.size() : end;
  }
  if (fields.size() != 5) {
    throw CronError(
        fmt::format("'{}' has {} field(s); a cron expression has 5 (minute hour day-of-month month "
                    "day-of-week) or is an alias such as @daily",
                    expression, fields.size()));
  }
  std::vector<bool> bits;
  ParseField(kFields[0], fields[0], bits);
  for (int v = 0; v < 60; ++v) c.minutes_[static_cast<std::size_t>(v)] = bits[static_cast<std::size_t>(v)];
  ParseField(kFields[1], fields[1], bits);
  for (int v = 0; v < 24; ++v) c.hours_[static_cast<std::size_t>(v)] = bits[static_cast<std::size_t>(v)];
  c.day_star_ = ParseField(kFields[2], fields[2], bits);
  for (int v = 1; v <= 31; ++v) c.days_[static_cast<std::size_t>(v)] = bits[static_cast<std::size_t>(v)];
  ParseField(kFields[3], fields[3], bits);
  for (int v = 1; v <= 12; ++v) c.months_[static_cast<std::size_t>(v)] = bits[static_cast<std::size_t>(v)];
  c.weekday_star_ = ParseField(kFields[4], fields[4], bits);
  for (int v = 0; v <= 6; ++v) c.weekdays_[static_cast<std::size_t>(v)] = bits[static_cast<std::size_t>(v)];
  if (bits[7]) c.weekdays_[0] = true;

  // Days restricted and weekdays not: some chosen day must exist in some chosen month.
  if (!c.day_star_ && c.weekday_star_) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      for (int d = 1; d <= DaysIn(m) && !possible; ++d)
        possible = c.months_[static_cast<std::size_t>(m)] && c.days_[static_cast<std::size_t>(d)];
    }
    if (!possible)
      throw CronError(fmt::format("day-of-month: '{}' never occurs in month '{}'", fields[2], fields[3]));
  }
  return c;
}

bool CronSchedule::DayMatches(int /*year*/, int month, int day, int weekday) const {
  if (!months_[static_cast<std::size_t>(month)]) return false;
  const bool dom = days_[static_cast<std::size_t>(day)];
  const bool dow = weekdays_[static_cast<std::size_t>(weekday)];
  return (day_star_ || weekday_star_) ? (dom && dow) : (dom || dow);
}

CronSchedule::TimePoint CronSchedule::NextFire(TimePoint after) const {
  const absl::TimeZone& tz = zone_->tz;
  const absl::Time after_abs = absl::FromChrono(after);
  const absl::CivilMinute start = absl::ToCivilMinute(after_abs, tz) + 1;
  const absl::CivilDay first_day(start);
  // Every valid expression fires within 8 years (29 February skips 2100); search a little more.
  for (absl::CivilDay day = first_day; day - first_day < 366L * 10; ++day) {
    const int weekday = (static_cast<int>(absl::GetWeekday(day)) + 1) % 7;  // absl: Monday = 0
    if (!DayMatches(static_cast<int>(day.year()), day.month(), day.day(), weekday)) continue;
    const bool today = day == first_day;
    for (int h = today ? start.hour() : 0; h < 24; ++h) {
      if (!hours_[static_cast<std::size_t>(h)]) continue;
      for (int m = (today && h == start.hour()) ? start.minute() : 0; m < 60; ++m) {
        if (!minutes_[static_cast<std::size_t>(m)]) continue;
        const absl::Time t = Resolve(tz, absl::CivilMinute(day.year(), day.month(), day.day(), h, m));
        if (t > after_abs) return absl::ToChronoTime(t);
        // Not after `after`: the second pass of a repeated hour (it fired on the first) or a
        // skipped time whose transition already passed; look further.
      }
    }
  }
  throw CronError(fmt::format("'{}' has no firing time in the next 10 years", expression_));
}

std::string FormatUtc(CronSchedule::TimePoint t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromChrono(t), absl::UTCTimeZone());
}

std::string FormatUtcCompact(CronSchedule::TimePoint t) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", absl::FromChrono(t), absl::UTCTimeZone());
}

CronSchedule::TimePoint ParseUtc(std::string_view text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", std::string(text), absl::UTCTimeZone(), &t, &err)) {
    throw CronError(fmt::format("'{}' is not a UTC time like 2026-11-22T02:00:00Z", text));
  }
  // system_clock counts nanoseconds in 64 bits (1677..2262): past that, ToChronoTime would clamp.
  if (t < absl::FromChrono(CronSchedule::TimePoint::min()) ||
      t > absl::FromChrono(CronSchedule::TimePoint::max())) {
    throw CronError(fmt::format("'{}' is outside the years 1678..2261 this clock can hold", text));
  }
  return absl::ToChronoTime(t);
}

std::string FormatLocal(CronSchedule::TimePoint t, std::string_view time_zone) {
  absl::TimeZone tz;
  if (!absl::LoadTimeZone(std::string(time_zone), &tz)) tz = absl::UTCTimeZone();
  return absl::FormatTime("%Y-%m-%dT%H:%M:%S%Ez", absl::FromChrono(t), tz);
}

}  // namespace runnel::scheduler
