// When schedules fire: the timing logic of `runnel up`'s scheduler, with the clock passed in
// (tests drive it with a fake one) and the last fired slot per schedule kept in
// <state dir>/schedules.json, so a restarted stack does not fire a slot twice.
//
// Rules (README "Scheduled batch jobs"):
// - A slot is recorded in the state file (atomically) before Due() returns it: a stack that dies
//   right after recording loses that firing rather than repeating it (at most once per slot).
// - At start, slots at or before the last recorded one never fire again, and slots missed while
//   the stack was down are skipped, unless the schedule has `catch_up`: then the latest slot
//   missed within that window before the start fires once, at start (only for a schedule that
//   has fired here before: a new schedule has missed nothing).
// - Several slots passing between two calls (a suspended machine) fire once, for the latest.
// Thread-safety: none; one thread calls it (the stack's supervision loop).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runnel/core/config.hpp"
#include "runnel/scheduler/cron.hpp"

namespace runnel::scheduler {

using TimePoint = std::chrono::system_clock::time_point;

struct CompiledSchedule {
  ScheduleSpec spec;
  CronSchedule cron;
};

// Parses every schedule's cron expression and time zone; throws ConfigError
// "<file>:<line>: schedules[i].cron: minute: 61 is outside 0-59" (or .timezone).
std::vector<CompiledSchedule> CompileSchedules(const StackConfig& config);

class Scheduler {
 public:
  struct Firing {
    std::string schedule;
    TimePoint slot;
    bool catch_up = false;  // a slot missed while the stack was down, fired at start
  };

  // Reads `state_file` (absent: nothing fired yet); throws ConfigError if it is not valid JSON.
  Scheduler(std::vector<CompiledSchedule> schedules, std::filesystem::path state_file, TimePoint now);

  // The firings due at `now`, each already recorded as the schedule's last slot.
  std::vector<Firing> Due(TimePoint now);
  // Notes a job started for `schedule` (by cron or by `runnel job run`) for `runnel job list`.
  void NoteJob(const std::string& schedule, const std::string& job_id, TimePoint now);

  const CompiledSchedule* Find(const std::string& name) const;
  const std::vector<CompiledSchedule>& Schedules() const { return schedules_; }
  std::optional<TimePoint> NextFire(const std::string& name) const;
  // One object per schedule: name, cron, timezone, function, next_fire, last_slot, last_job, last_run_at.
  nlohmann::json List() const;

 private:
  void Save() const;

  std::vector<CompiledSchedule> schedules_;
  std::filesystem::path state_file_;
  nlohmann::json state_;  // {"schedules": {name: {"last_slot", "last_job", "last_run_at"}}}
  std::map<std::string, TimePoint> next_;
  std::map<std::string, TimePoint> catch_up_;  // fire once at the first Due()
};

// Writes JSON to `file` through a temporary file and rename(2), so readers never see half of it.
void WriteJsonAtomically(const std::filesystem::path& file, const nlohmann::json& value);

}  // namespace runnel::scheduler
