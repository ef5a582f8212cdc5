#include "runnel/workers/watchdog.hpp"

namespace runnel::workers {

void Watchdog::Start(std::uint64_t token, std::chrono::milliseconds budget, Clock::time_point start) {
  std::lock_guard lock(mutex_);
  running_[token] = Entry{start, budget};
}

void Watchdog::Finish(std::uint64_t token) {
  std::lock_guard lock(mutex_);
  running_.erase(token);
}

std::optional<Watchdog::Overdue> Watchdog::FirstOverdue(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  std::optional<Overdue> worst;
  std::optional<Clock::time_point> worst_deadline;
  for (const auto& [token, entry] : running_) {
    if (entry.budget.count() <= 0) continue;
    const auto deadline = entry.start + entry.budget + grace_;
    if (deadline > now) continue;
    if (!worst_deadline || deadline < *worst_deadline) {
      worst_deadline = deadline;
      worst = Overdue{token, entry.budget,
                      std::chrono::duration_cast<std::chrono::milliseconds>(now - entry.start)};
    }
  }
  return worst;
}

std::optional<Watchdog::Clock::time_point> Watchdog::NextDeadline() const {
  std::lock_guard lock(mutex_);
  std::optional<Clock::time_point> next;
  for (const auto& [token, entry] : running_) {
    if (entry.budget.count() <= 0) continue;
    const auto deadline = entry.start + entry.budget + grace_;
    if (!next || deadline < *next) next = deadline;
  }
  return next;
}

std::size_t Watchdog::Running() const {
  std::lock_guard lock(mutex_);
  return running_.size();
}

}  // namespace runnel::workers
