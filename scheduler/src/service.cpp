#include "runnel/scheduler/service.hpp"

#include <fmt/format.h>

#include <atomic>
#include <mutex>

#include "runnel/core/control_messages.hpp"
#include "runnel/core/errc.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/failpoints.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/log.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/kafka/retention_guard.hpp"
#include "runnel/scheduler/jobs.hpp"

namespace runnel::scheduler {
namespace {

bool IsJobId(const std::string& s) {
  return !s.empty() && s.size() <= limits::kJobMax && s.front() != '.' &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
         });
}

}  // namespace

void JobOutcomes::Add(std::vector<Outcome>& outcomes) {
  std::lock_guard lock(mu_);
  if (outcomes_.empty()) {
    outcomes_.swap(outcomes);
  } else {
    outcomes_.insert(outcomes_.end(), std::make_move_iterator(outcomes.begin()),
                     std::make_move_iterator(outcomes.end()));
  }
  outcomes.clear();
}

void JobOutcomes::Add(Outcome outcome) {
  std::lock_guard lock(mu_);
  outcomes_.push_back(std::move(outcome));
}

std::vector<Outcome> JobOutcomes::Take() {
  std::lock_guard lock(mu_);
  std::vector<Outcome> out;
  out.swap(outcomes_);
  return out;
}

struct SchedulerService::Impl {
  Options opt;
  std::shared_ptr<spdlog::logger> log = log::kScheduler.Logger();
  Scheduler scheduler;
  JobTracker jobs;
  std::unique_ptr<kafka::Producer> producer;
  // Tick (the stack's thread) and Handle (the control socket's) take turns on everything here.
  std::mutex mu;

  // Outcomes of job events, from the dispatchers (and failed deliveries, from the producer's thread).
  std::shared_ptr<JobOutcomes> inbox;
  std::atomic<bool> stop{false};

  explicit Impl(Options o)
      : opt(std::move(o)),
        scheduler(opt.schedules, opt.state_dir / "schedules.json", opt.clock()),
        jobs(opt.state_dir / "jobs"),
        inbox(opt.outcomes ? opt.outcomes : std::make_shared<JobOutcomes>()) {}

  void Deliver(Outcome o) { inbox->Add(std::move(o)); }

  kafka::Producer& Producer() {
    if (!producer) {
      kafka::KafkaOptions config{opt.kafka_bootstrap, "runnel-scheduler", opt.kafka_options,
                                 opt.kafka_secrets};
      kafka::Producer::Options po;
      if (opt.embedded) {
        auto groups = opt.groups;
        po.retention_guard =
            std::make_shared<kafka::RetentionGuard>(config, [groups](const std::string& topic) {
              std::vector<std::string> out;
              if (auto it = groups.find(topic); it != groups.end()) out.push_back(it->second);
              return out;
            });
      }
      producer = std::make_unique<kafka::Producer>(config, po);
    }
    return *producer;
  }

  // Publishes one firing; returns {"job", "items", "function"}.
  nlohmann::json Fire(const CompiledSchedule& c, const std::string& trigger, std::optional<TimePoint> slot) {
    const TimePoint now = opt.clock();
    const std::string job =
        jobs.NewJobId(fmt::format("{}-{}", c.spec.name, FormatUtcCompact(slot.value_or(now))));
    JobTracker::Start start{job, c.spec.name, c.spec.function, trigger, slot};
    scheduler.NoteJob(c.spec.name, job, now);
    std::vector<BatchItem> items;
    try {
      items = ListBatchItems(c.spec);
    } catch (const Error& e) {
      log->error("schedule {}: job {} cannot start: {}", c.spec.name, job, e.what());
      jobs.BeginFailed(start, e.what(), now);
      return {{"job", job}, {"items", 0}, {"function", c.spec.function}, {"error", e.what()}};
    }
    jobs.Begin(start, items, now);  // before publishing: an outcome may come back at once
    const std::string& topic = opt.topics.at(c.spec.function);
    for (auto& item : items) {
      item.envelope.job_id = job;
      Outcome undelivered;
      undelivered.id = item.envelope.id;
      undelivered.function = c.spec.function;
      undelivered.status = OutcomeStatus::kError;
      undelivered.error_kind = ErrcName(Errc::kTransient);
      undelivered.job_id = job;
      auto on_delivery = [this, undelivered](const kafka::Delivery& d) mutable {
        if (d.Ok()) return;
        undelivered.error = "not published: " + d.error_message;
        Deliver(std::move(undelivered));
      };
      try {
        Producer().Produce(
            {topic, kafka::kAnyPartition, std::nullopt, std::move(item.payload), item.envelope.Encode()},
            std::move(on_delivery));
      } catch (const Error& e) {
        undelivered.error = fmt::format("not published: {}", e.what());
        Deliver(std::move(undelivered));
      }
    }
    log->info("schedule {}: job {} ({}) published {} event(s) to {}", c.spec.name, job, trigger, items.size(),
              topic);
    return {{"job", job}, {"items", items.size()}, {"function", c.spec.function}};
  }

  nlohmann::json Answer(const ControlRequest& req) {
    switch (req.op) {
      case ControlRequest::Op::kStatus:
      case ControlRequest::Op::kTrace:
      case ControlRequest::Op::kOutcome:
        break;
      case ControlRequest::Op::kJobRun: {
        return RunNow(req.schedule);
      }
      case ControlRequest::Op::kJobStatus: {
        if (!IsJobId(req.job)) throw ConfigError(fmt::format("'{}' is not a job id", req.job));
        auto record = jobs.Record(req.job);
        if (!record) throw ConfigError(fmt::format("no job {}", req.job));
        return {{"record", *record}};
      }
      case ControlRequest::Op::kJobList:
        return {{"schedules", scheduler.List()}};
    }
    throw ConfigError(fmt::format("'{}' is not a job op", OpName(req.op)));
  }

  nlohmann::json RunNow(const std::string& name) {
    const CompiledSchedule* c = scheduler.Find(name);
    if (c == nullptr) {
      std::string known;
      for (const auto& s : scheduler.Schedules()) known += (known.empty() ? "" : ", ") + s.spec.name;
      throw ConfigError(fmt::format("no schedule '{}' in this stack ({})", name,
                                    known.empty() ? "it has none" : "schedules: " + known));
    }
    return Fire(*c, "manual", std::nullopt);
  }
};

SchedulerService::SchedulerService(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

SchedulerService::~SchedulerService() {
  auto& s = *impl_;
  s.stop.store(true);
  try {
    if (s.producer) s.producer->Flush(std::chrono::seconds(10));
    Tick();  // count what arrived, write the records
    s.jobs.Flush(s.opt.clock(), true);
  } catch (const std::exception& e) {
    s.log->error("scheduler: job records may miss the last outcomes: {}", e.what());
  }
}

nlohmann::json SchedulerService::RunNow(const std::string& schedule) {
  std::lock_guard lock(impl_->mu);
  return impl_->RunNow(schedule);
}

std::string SchedulerService::Handle(const ControlRequest& request) {
  auto& s = *impl_;
  std::lock_guard lock(s.mu);
  try {
    return ControlOkReply(s.Answer(request));
  } catch (const std::exception& e) {
    return ControlErrorReply(e.what());
  }
}

void SchedulerService::Tick() {
  auto& s = *impl_;
  failpoint::Hit("scheduler.tick");
  std::lock_guard lock(s.mu);
  for (const auto& firing :
       s.stop.load() ? std::vector<Scheduler::Firing>{} : s.scheduler.Due(s.opt.clock())) {
    if (const auto* c = s.scheduler.Find(firing.schedule))
      s.Fire(*c, firing.catch_up ? "catch-up" : "cron", firing.slot);
  }
  const std::vector<Outcome> arrived = s.inbox->Take();
  const TimePoint now = s.opt.clock();
  for (const auto& o : arrived) s.jobs.OnOutcome(o, now);
  s.jobs.Flush(now, false);
}

std::string SchedulerService::Summary() const {
  std::lock_guard lock(impl_->mu);
  std::string out;
  for (const auto& j : impl_->scheduler.List()) {
    out += fmt::format("  schedule {:<16} {:<16} {} -> {}  next {}\n", j["name"].get<std::string>(),
                       j["cron"].get<std::string>(), j["timezone"].get<std::string>(),
                       j["function"].get<std::string>(), j["next_fire_local"].get<std::string>());
  }
  return out;
}

}  // namespace runnel::scheduler
