#include "runnel/autoscaler/policy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "runnel/core/duration_text.hpp"

namespace runnel::autoscaler {
namespace {

std::string Seconds(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? fmt::format("{}s", d.count() / 1000) : fmt::format("{}ms", d.count());
}

}  // namespace

Backlog MeasureBacklog(const std::vector<kafka::PartitionOffsets>& partitions,
                       const std::map<std::int32_t, std::int64_t>& positions, std::int64_t queued) {
  Backlog b;
  b.waiting = std::max<std::int64_t>(0, queued);
  for (const auto& p : partitions) {
    b.lost += p.Lost();
    auto it = positions.find(p.partition);
    if (it == positions.end()) {
      b.waiting += p.Lag();
    } else {
      b.waiting += std::max<std::int64_t>(0, p.end - std::max(it->second, p.log_start));
    }
  }
  return b;
}

Decision Decide(const PolicyInput& in) {
  const ScalingSpec& s = in.spec;
  const Load& l = in.load;
  const int concurrency = std::max(1, l.concurrency);
  const bool busy = l.backlog > 0 || l.in_flight > 0 || l.arriving;

  double need = 0;
  std::string why;
  // Not busy: nothing is needed, whatever the decaying arrival average still says (warm and min
  // are added below; the idle period keeps one worker).
  if (busy && l.service_s > 0) {
    const double steady = l.arrival_per_s * l.service_s / (concurrency * kTargetUtilization);
    const double drain_s = std::max(0.001, static_cast<double>(s.target_drain.count()) / 1000.0);
    // More workers than waiting events cannot help the backlog.
    const double drain = std::min(static_cast<double>(l.backlog) * l.service_s / (concurrency * drain_s),
                                  static_cast<double>(l.backlog));
    need = steady + drain;
    why = fmt::format("arrival {:.1f}/s x {} / {} per worker = {:.2f}; backlog {} in {} = {:.2f}",
                      l.arrival_per_s, MillisText(l.service_s * 1000), concurrency, steady, l.backlog,
                      Seconds(s.target_drain), drain);
  } else if (busy) {  // no service time measured yet
    need = static_cast<double>(l.backlog + l.in_flight) / concurrency;
    why = fmt::format("no service time measured yet: {} waiting or running / {} per worker",
                      l.backlog + l.in_flight, concurrency);
  } else {
    why = "nothing to do";
  }
  // The epsilon keeps a float sum such as 2.0000000001 from asking for a third worker.
  int wanted = static_cast<int>(std::min(1e6, std::ceil(need - 1e-9)));
  if (busy && wanted < 1) {
    wanted = 1;
    why += "; at least one while events wait or run";
  }
  if (s.warm > 0) {
    wanted += s.warm;
    why += fmt::format("; +{} warm", s.warm);
  }
  const int unclamped = wanted;
  wanted = std::clamp(wanted, std::min(s.min, s.max), s.max);
  if (wanted != unclamped) why += fmt::format("; clamped to [{}, {}]", s.min, s.max);

  Decision d;
  d.wanted = wanted;
  if (wanted >= in.current) {
    d.desired = wanted;
    d.reason = fmt::format("{}{}: {}", wanted > in.current ? "scale up to " : "keep ", wanted, why);
    return d;
  }
  if (!busy && (!in.ever_active || in.idle_for >= s.idle_to_zero)) {
    d.desired = wanted;
    d.reason = fmt::format("idle for {} (idle_to_zero {}): scale to {}", Seconds(in.idle_for),
                           Seconds(s.idle_to_zero), wanted);
    return d;
  }
  // Scale in only as far as the highest desire of the stabilization window allows, and keep one
  // worker through the idle period.
  int hold = std::max(wanted, in.window_max);
  std::string held =
      fmt::format("highest desire in the last {} is {}", Seconds(s.stabilization), in.window_max);
  if (!busy && hold < 1 && in.current > 0 && s.max > 0) {
    hold = 1;
    held = fmt::format("idle for {} of idle_to_zero {}", Seconds(in.idle_for), Seconds(s.idle_to_zero));
  }
  d.desired = std::min(in.current, hold);
  d.reason = d.desired < in.current
                 ? fmt::format("scale in to {}: {} ({})", d.desired, held, why)
                 : fmt::format("hold {}: {}; wanted {} ({})", d.desired, held, wanted, why);
  return d;
}

void DesireWindow::Add(Clock::time_point at, int wanted) { samples_.emplace_back(at, wanted); }

int DesireWindow::Max(Clock::time_point now, std::chrono::milliseconds window) {
  const auto from = now - window;
  std::erase_if(samples_, [&](const auto& s) { return s.first < from; });
  int m = 0;
  for (const auto& s : samples_) m = std::max(m, s.second);
  return m;
}

}  // namespace runnel::autoscaler
