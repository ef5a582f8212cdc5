#include "iot/analysis.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string_view>

namespace runnel::functions::iot {
namespace {

constexpr std::uint32_t kNoGroup = std::numeric_limits<std::uint32_t>::max();

// Running sums shifted by the group's first value: as cheap as naive sums (no division per
// sample) but without their cancellation when values are large and close together.
struct Accumulator {
  std::uint32_t device;
  std::uint32_t metric;
  std::int64_t window_start_ms;
  std::uint32_t count = 0;    // a call's samples are indexed by uint32 too
  std::uint32_t numbers = 0;  // samples that are numbers, not bools: only those can be anomalies
  double shift = 0;
  double sum = 0;
  double sum_squares = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();

  void Add(double value, bool is_bool) {
    if (count == 0) shift = value;
    const double d = value - shift;
    ++count;
    numbers += is_bool ? 0 : 1;
    sum += d;
    sum_squares += d * d;
    min = std::min(min, value);
    max = std::max(max, value);
  }
  double Mean() const { return shift + sum / static_cast<double>(count); }
  double M2() const { return std::max(0.0, sum_squares - sum * sum / static_cast<double>(count)); }
};

std::uint64_t Mix(std::uint64_t h) {
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 29;
  return h;
}

// Finds a sample's group. Consecutive readings of a device usually share a window, so a dense
// (device, metric) -> last group cache answers most lookups; the rest go to an open-addressing
// table of (device, metric, window) -> group. Both keep their memory between calls.
class GroupIndex {
 public:
  void Reset(std::uint32_t devices, std::uint32_t metrics, std::size_t samples) {
    metrics_ = metrics;
    const std::uint64_t cells = static_cast<std::uint64_t>(devices) * metrics;
    last_.clear();
    if (cells <= 2 * samples + 4096) last_.assign(static_cast<std::size_t>(cells), Last{});
    used_ = 0;
    if (slots_.empty()) slots_.resize(1024);
    std::fill(slots_.begin(), slots_.end(), Slot{});
  }

  std::uint32_t Find(std::uint32_t device, std::uint32_t metric, std::int64_t window_start,
                     std::vector<Accumulator>& groups) {
    Last* last = last_.empty() ? nullptr : &last_[static_cast<std::size_t>(device) * metrics_ + metric];
    if (last != nullptr && last->window_start == window_start) return last->group;
    const std::uint32_t group = Lookup(device, metric, window_start, groups);
    if (last != nullptr) *last = Last{window_start, group};
    return group;
  }

 private:
  struct Last {
    std::int64_t window_start = std::numeric_limits<std::int64_t>::min();
    std::uint32_t group = 0;
  };
  struct Slot {
    std::int64_t window_start = 0;
    std::uint32_t device = 0;
    std::uint32_t metric = 0;
    std::uint32_t group = kNoGroup;  // kNoGroup: empty
  };

  std::uint32_t Lookup(std::uint32_t device, std::uint32_t metric, std::int64_t window_start,
                       std::vector<Accumulator>& groups) {
    if ((used_ + 1) * 2 > slots_.size()) Grow(groups);
    const std::size_t mask = slots_.size() - 1;
    const std::uint64_t h = Mix((static_cast<std::uint64_t>(device) << 32 | metric) ^
                                Mix(static_cast<std::uint64_t>(window_start)));
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.group == kNoGroup) {
        slot = Slot{window_start, device, metric, static_cast<std::uint32_t>(groups.size())};
        groups.push_back(Accumulator{device, metric, window_start});
        ++used_;
        return slot.group;
      }
      if (slot.device == device && slot.metric == metric && slot.window_start == window_start)
        return slot.group;
    }
  }

  void Grow(const std::vector<Accumulator>& groups) {
    slots_.assign(slots_.size() * 2, Slot{});
    const std::size_t mask = slots_.size() - 1;
    for (std::uint32_t g = 0; g < groups.size(); ++g) {
      const Accumulator& a = groups[g];
      const std::uint64_t h = Mix((static_cast<std::uint64_t>(a.device) << 32 | a.metric) ^
                                  Mix(static_cast<std::uint64_t>(a.window_start_ms)));
      std::size_t i = h & mask;
      while (slots_[i].group != kNoGroup) i = (i + 1) & mask;
      slots_[i] = Slot{a.window_start_ms, a.device, a.metric, g};
    }
  }

  std::uint32_t metrics_ = 0;
  std::size_t used_ = 0;
  std::vector<Last> last_;
  std::vector<Slot> slots_;
};

// z² of `x` against the other samples of its group; infinity when they have zero variance and x
// differs from them. Only used to find groups worth checking sample by sample.
double LeaveOneOutZ2(const Accumulator& group, double x) {
  const auto n = static_cast<double>(group.count);
  const double mean = group.Mean();
  const double others_mean = (n * mean - x) / (n - 1);
  const double variance = std::max(0.0, group.M2() - (x - others_mean) * (x - mean)) / (n - 2);
  const double d = x - others_mean;
  if (variance <= 0) return d == 0 ? 0 : std::numeric_limits<double>::infinity();
  return d * d / variance;
}

// The smallest squared distance from its group's mean at which a sample can be an anomaly, times
// 0.98 for rounding: samples nearer the mean are skipped without the leave-one-out arithmetic.
// With u = x - mean over the group's n samples, the others' mean is off x by d = n u / (n - 1) and
// their M2 is M2 - n u² / (n - 1), so z² = d² (n - 2) / others' M2 grows with u², and exceeds z²
// exactly when u² > z² M2 / (n² (n - 2) / (n - 1)² + z² n / (n - 1)). That bound is below the
// largest possible u² (others' M2 = 0, the zero-variance case), so such samples are kept too.
double NearMeanBound2(const Accumulator& group, double z2) {
  const auto n = static_cast<double>(group.count);
  const double a = n * n * (n - 2) / ((n - 1) * (n - 1)) + z2 * n / (n - 1);
  return 0.98 * z2 * group.M2() / a;
}

// Ranks of names in sorted order, so aggregates sort by integers.
void NameRanks(const NameTable& names, std::vector<std::uint32_t>& order, std::vector<std::uint32_t>& rank) {
  order.resize(names.Size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](std::uint32_t a, std::uint32_t b) { return names.Name(a) < names.Name(b); });
  rank.resize(names.Size());
  for (std::uint32_t i = 0; i < order.size(); ++i) rank[order[i]] = i;
}

}  // namespace

struct Analyzer::Scratch {
  std::vector<std::int64_t> newest;
  std::vector<Accumulator> groups;
  std::vector<std::uint32_t> sample_group;
  std::vector<char> suspect;  // by group: may hold an anomaly
  std::vector<double> near2;  // by suspect group: its NearMeanBound2
  std::vector<const Threshold*> thresholds;
  std::vector<std::uint32_t> order, device_rank, metric_rank;
  GroupIndex index;
};

Analyzer::Analyzer() : scratch_(std::make_unique<Scratch>()) {}
Analyzer::~Analyzer() = default;

std::int64_t WindowStart(std::int64_t ts, std::int64_t window_ms) {
  std::int64_t q = ts / window_ms;
  if (ts % window_ms < 0) --q;
  return q * window_ms;
}

const Analysis& Analyzer::Run(ReadingStore& store, const IngestParams& params) {
  Scratch& s = *scratch_;
  out_.aggregates.clear();
  out_.alerts.clear();
  out_.anomalies.clear();

  // Lateness is relative to the newest reading of the same device in this call.
  s.newest.assign(store.devices.Size(), std::numeric_limits<std::int64_t>::min());
  for (const Reading& reading : store.readings)
    s.newest[reading.device] = std::max(s.newest[reading.device], reading.ts);

  s.thresholds.assign(store.metrics.Size(), nullptr);
  for (const Threshold& threshold : params.thresholds) {
    const std::uint32_t metric = store.metrics.Find(threshold.metric);
    if (metric != NameTable::kNone) s.thresholds[metric] = &threshold;
  }

  // One pass in reading order: marks late readings, checks thresholds on every reading (so alerts
  // are in input order), aggregates the readings that are not late and remembers each sample's
  // group for the anomaly pass.
  s.groups.clear();
  s.sample_group.assign(store.samples.size(), kNoGroup);
  s.index.Reset(store.devices.Size(), store.metrics.Size(), store.samples.size());
  // Readings of a call are mostly in one window or a few: the division is only needed when a
  // reading leaves the window of the reading before.
  std::int64_t window_start = 0;
  bool have_window = false;
  for (std::uint32_t r = 0; r < store.readings.size(); ++r) {
    Reading& reading = store.readings[r];
    reading.late = s.newest[reading.device] - reading.ts > params.max_lateness_ms;
    if (!have_window || reading.ts < window_start || reading.ts - window_start >= params.window_ms) {
      have_window = true;
      window_start = WindowStart(reading.ts, params.window_ms);
    }
    for (std::uint32_t i = reading.first_sample; i < reading.first_sample + reading.sample_count; ++i) {
      const Sample& sample = store.samples[i];
      if (const Threshold* threshold = s.thresholds[sample.metric]; threshold != nullptr && !sample.is_bool) {
        if (threshold->above && sample.value > *threshold->above)
          out_.alerts.push_back({r, sample.metric, sample.value, true, *threshold->above});
        if (threshold->below && sample.value < *threshold->below)
          out_.alerts.push_back({r, sample.metric, sample.value, false, *threshold->below});
      }
      if (reading.late) continue;
      const std::uint32_t group = s.index.Find(reading.device, sample.metric, window_start, s.groups);
      s.groups[group].Add(sample.value, sample.is_bool);
      s.sample_group[i] = group;
    }
  }

  // Anomalies against the leave-one-out statistics of the group.
  const double z2 = params.anomaly_z * params.anomaly_z;
  const auto min_others = static_cast<std::uint64_t>(params.anomaly_min_samples);
  // The leave-one-out z grows with |x - mean|, so a group's most extreme z is at its min or max:
  // groups whose extremes are unremarkable are skipped sample by sample.
  bool any_suspect = false;
  s.suspect.assign(s.groups.size(), 0);
  s.near2.resize(s.groups.size());
  if (params.anomaly_enabled) {
    for (std::size_t g = 0; g < s.groups.size(); ++g) {
      const Accumulator& group = s.groups[g];
      if (group.numbers == 0 || group.count - 1 < min_others) continue;
      s.suspect[g] = static_cast<char>(LeaveOneOutZ2(group, group.min) >= 0.98 * z2 ||
                                       LeaveOneOutZ2(group, group.max) >= 0.98 * z2);
      if (s.suspect[g]) s.near2[g] = NearMeanBound2(group, z2);
      any_suspect |= s.suspect[g] != 0;
    }
  }
  for (std::uint32_t r = 0; r < store.readings.size() && any_suspect; ++r) {
    const Reading& reading = store.readings[r];
    for (std::uint32_t i = reading.first_sample; i < reading.first_sample + reading.sample_count; ++i) {
      const std::uint32_t g = s.sample_group[i];
      if (g == kNoGroup || !s.suspect[g]) continue;
      const Sample& sample = store.samples[i];
      const Accumulator& group = s.groups[g];
      const double x = sample.value;
      const double mean = group.Mean();
      if (sample.is_bool || (x - mean) * (x - mean) < s.near2[g]) continue;
      // Welford's removal step: the mean and M2 of the group without this sample.
      const auto n = static_cast<double>(group.count);
      const double others_mean = (n * mean - x) / (n - 1);
      const double others_m2 = std::max(0.0, group.M2() - (x - others_mean) * (x - mean));
      const double variance = others_m2 / (n - 2);
      const double d = x - others_mean;
      const double scale = std::max(1.0, std::abs(others_mean));
      if (variance <= 1e-18 * scale * scale) {
        // Every other reading is (numerically) equal: any real departure is anomalous; z is undefined.
        if (std::abs(d) > 1e-9 * scale) {
          out_.anomalies.push_back({r, sample.metric, x, std::numeric_limits<double>::quiet_NaN(),
                                    group.window_start_ms, group.count - 1, others_mean, 0.0});
        }
      } else if (d * d > z2 * variance) {
        const double stddev = std::sqrt(variance);
        out_.anomalies.push_back(
            {r, sample.metric, x, d / stddev, group.window_start_ms, group.count - 1, others_mean, stddev});
      }
    }
  }

  NameRanks(store.devices, s.order, s.device_rank);
  NameRanks(store.metrics, s.order, s.metric_rank);
  std::sort(s.groups.begin(), s.groups.end(), [&](const Accumulator& a, const Accumulator& b) {
    if (a.device != b.device) return s.device_rank[a.device] < s.device_rank[b.device];
    if (a.metric != b.metric) return s.metric_rank[a.metric] < s.metric_rank[b.metric];
    return a.window_start_ms < b.window_start_ms;
  });
  for (const Accumulator& g : s.groups) {
    out_.aggregates.push_back(
        {g.device, g.metric, g.window_start_ms, g.count, g.min, g.max, g.Mean(), g.M2()});
  }
  return out_;
}

}  // namespace runnel::functions::iot
