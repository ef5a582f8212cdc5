#include "runnel/broker/offset_tracker.hpp"

namespace runnel::broker {

void OffsetTracker::Assign(std::int32_t partition, std::int64_t offset) {
  auto [it, fresh] = partitions_.try_emplace(partition);
  if (!fresh) return;
  it->second.base = offset;
  it->second.last_committed = offset;
}

bool OffsetTracker::Add(std::int32_t partition, std::int64_t offset) {
  auto [it, fresh] = partitions_.try_emplace(partition);
  Partition& p = it->second;
  if (fresh || !p.consumed) {
    p.base = offset;
    p.consumed = true;
  }
  const std::int64_t next = p.base + static_cast<std::int64_t>(p.done.size());
  if (offset < next) return false;
  // Offsets the broker skipped are done: nothing will ever arrive for them.
  for (std::int64_t gap = next; gap < offset; ++gap) p.done.push_back(1);
  p.done.push_back(0);
  ++pending_;
  while (!p.done.empty() && p.done.front() != 0) {
    p.done.pop_front();
    ++p.base;
  }
  return true;
}

void OffsetTracker::Forget(std::int32_t partition) {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return;
  for (const std::uint8_t done : it->second.done) pending_ -= done == 0 ? 1 : 0;
  partitions_.erase(it);
}

void OffsetTracker::Done(std::int32_t partition, std::int64_t offset) {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return;
  Partition& p = it->second;
  if (offset < p.base || offset >= p.base + static_cast<std::int64_t>(p.done.size())) return;
  auto& flag = p.done[static_cast<std::size_t>(offset - p.base)];
  if (flag != 0) return;
  flag = 1;
  --pending_;
  while (!p.done.empty() && p.done.front() != 0) {
    p.done.pop_front();
    ++p.base;
  }
}

std::optional<std::int64_t> OffsetTracker::CommitPoint(std::int32_t partition) const {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return std::nullopt;
  return it->second.base;
}

std::map<std::int32_t, std::int64_t> OffsetTracker::TakeChangedCommits(bool all) {
  std::map<std::int32_t, std::int64_t> out;
  for (auto& [id, p] : partitions_) {
    if (all || p.base != p.last_committed) {
      out[id] = p.base;
      p.last_committed = p.base;
    }
  }
  return out;
}

}  // namespace runnel::broker
