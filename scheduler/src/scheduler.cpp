#include "runnel/scheduler/scheduler.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "runnel/core/log.hpp"

namespace runnel::scheduler {

std::vector<CompiledSchedule> CompileSchedules(const StackConfig& config) {
  std::vector<CompiledSchedule> out;
  for (std::size_t i = 0; i < config.schedules.size(); ++i) {
    const ScheduleSpec& s = config.schedules[i];
    try {
      (void)CronSchedule::Parse(s.cron, "UTC");
    } catch (const CronError& e) {
      throw ConfigError(
          fmt::format("{}:{}: schedules[{}].cron: {}", config.source, s.cron_line, i, e.what()));
    }
    try {
      out.push_back({s, CronSchedule::Parse(s.cron, s.timezone)});
    } catch (const CronError& e) {
      throw ConfigError(
          fmt::format("{}:{}: schedules[{}].timezone: {}", config.source, s.timezone_line, i, e.what()));
    }
  }
  return out;
}

void WriteJsonAtomically(const std::filesystem::path& file, const nlohmann::json& value) {
  std::filesystem::create_directories(file.parent_path());
  const auto tmp = file.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << value.dump(2) << '\n';
    if (!out.flush()) throw Error("cannot write " + tmp, true);
  }
  std::filesystem::rename(tmp, file);
}

Scheduler::Scheduler(std::vector<CompiledSchedule> schedules, std::filesystem::path state_file, TimePoint now)
    : schedules_(std::move(schedules)),
      state_file_(std::move(state_file)),
      state_({{"schedules", nlohmann::json::object()}}) {
  if (std::ifstream in(state_file_); in) {
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = nlohmann::json::parse(text.str(), nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object() ||
        !parsed.value("schedules", nlohmann::json()).is_object()) {
      throw ConfigError(state_file_.string() +
                        " is not a schedules record; fix or remove it (every schedule then starts afresh)");
    }
    state_ = std::move(parsed);
  }
  const auto logger = log::kScheduler.Logger();
  for (const auto& c : schedules_) {
    const std::string& name = c.spec.name;
    std::optional<TimePoint> last;
    if (const auto& rec = state_["schedules"].value(name, nlohmann::json::object());
        rec.contains("last_slot")) {
      last = ParseUtc(rec["last_slot"].get<std::string>());
    }
    TimePoint from = now;
    if (c.spec.catch_up.count() > 0 && last) {  // never fired here: nothing was missed
      TimePoint probe = now - c.spec.catch_up;
      if (last && *last > probe) probe = *last;
      TimePoint missed = c.cron.NextFire(probe);
      if (missed <= now) {
        for (TimePoint n = c.cron.NextFire(missed); n <= now; n = c.cron.NextFire(n)) missed = n;
        catch_up_[name] = missed;
        logger->info(
            "schedule {}: slot {} was missed while the stack was down; firing it now (catch_up {} s)", name,
            FormatUtc(missed), c.spec.catch_up.count() / 1000);
      }
    }
    if (last && *last > from) from = *last;  // the clock went back: never repeat a recorded slot
    next_[name] = c.cron.NextFire(from);
  }
}

std::vector<Scheduler::Firing> Scheduler::Due(TimePoint now) {
  std::vector<Firing> out;
  const auto logger = log::kScheduler.Logger();
  for (const auto& c : schedules_) {
    const std::string& name = c.spec.name;
    if (auto it = catch_up_.find(name); it != catch_up_.end()) {
      out.push_back({name, it->second, true});
      catch_up_.erase(it);
    }
    TimePoint& next = next_[name];
    if (next > now) continue;
    TimePoint slot = next;
    int skipped = 0;
    for (TimePoint n = c.cron.NextFire(slot); n <= now; n = c.cron.NextFire(n)) {
      slot = n;
      ++skipped;
    }
    if (skipped > 0) {
      logger->warn(
          "schedule {}: {} slot(s) passed unseen (was the machine suspended?); firing the latest once", name,
          skipped);
    }
    next = c.cron.NextFire(slot);
    if (!out.empty() && out.back().schedule == name) {
      out.back() = {name, slot, false};  // a catch-up overtaken by a live slot
    } else {
      out.push_back({name, slot, false});
    }
  }
  for (const auto& f : out) state_["schedules"][f.schedule]["last_slot"] = FormatUtc(f.slot);
  if (!out.empty()) Save();
  return out;
}

void Scheduler::NoteJob(const std::string& schedule, const std::string& job_id, TimePoint now) {
  auto& rec = state_["schedules"][schedule];
  rec["last_job"] = job_id;
  rec["last_run_at"] = FormatUtc(now);
  Save();
}

const CompiledSchedule* Scheduler::Find(const std::string& name) const {
  for (const auto& c : schedules_) {
    if (c.spec.name == name) return &c;
  }
  return nullptr;
}

std::optional<TimePoint> Scheduler::NextFire(const std::string& name) const {
  auto it = next_.find(name);
  if (it == next_.end()) return std::nullopt;
  return it->second;
}

nlohmann::json Scheduler::List() const {
  auto out = nlohmann::json::array();
  for (const auto& c : schedules_) {
    const auto rec = state_["schedules"].value(c.spec.name, nlohmann::json::object());
    nlohmann::json j = {{"name", c.spec.name},
                        {"cron", c.spec.cron},
                        {"timezone", c.spec.timezone},
                        {"function", c.spec.function},
                        {"next_fire", FormatUtc(next_.at(c.spec.name))},
                        {"next_fire_local", FormatLocal(next_.at(c.spec.name), c.spec.timezone)},
                        {"last_slot", rec.value("last_slot", "")},
                        {"last_job", rec.value("last_job", "")},
                        {"last_run_at", rec.value("last_run_at", "")}};
    j["source"] = c.spec.files ? fmt::format("files {}/{}{}", c.spec.files->dir,
                                             c.spec.files->recursive ? "**/" : "", c.spec.files->glob)
                               : std::string("payload");
    out.push_back(std::move(j));
  }
  return out;
}

void Scheduler::Save() const { WriteJsonAtomically(state_file_, state_); }

}  // namespace runnel::scheduler
