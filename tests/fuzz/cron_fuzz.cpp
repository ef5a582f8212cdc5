// Cron expressions and time zones (scheduler/src/cron.cpp). Input: an expression; a first line
// "TZ=<name>" sets the time zone (else UTC). Oracle: Parse throws CronError or gives a schedule
// whose next firing times, from a few instants (one in a DST change), are on whole minutes and
// strictly increasing; the UTC time parser gives back what it formats.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runnel/scheduler/cron.hpp"

namespace {

using runnel::scheduler::CronError;
using runnel::scheduler::CronSchedule;

void CheckFirings(const CronSchedule& schedule, CronSchedule::TimePoint from) {
  CronSchedule::TimePoint t = from;
  for (int i = 0; i < 3; ++i) {
    const CronSchedule::TimePoint next = schedule.NextFire(t);
    if (next <= t) std::abort();
    if (std::chrono::duration_cast<std::chrono::seconds>(next.time_since_epoch()).count() % 60 != 0)
      std::abort();
    t = next;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string_view zone = "UTC";
  if (text.starts_with("TZ=")) {
    const std::size_t end = text.find('\n');
    zone = text.substr(3, end == std::string_view::npos ? std::string_view::npos : end - 3);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  }
  try {
    const CronSchedule schedule = CronSchedule::Parse(text, zone);
    CheckFirings(schedule, runnel::scheduler::ParseUtc("2026-03-29T00:30:00Z"));  // Europe's spring forward
    CheckFirings(schedule, runnel::scheduler::ParseUtc("2026-11-01T05:59:59Z"));  // America's fall back
  } catch (const CronError&) {
  }
  try {
    const auto t = runnel::scheduler::ParseUtc(text);
    if (runnel::scheduler::ParseUtc(runnel::scheduler::FormatUtc(t)) != t) std::abort();
  } catch (const CronError&) {
  }
  return 0;
}
