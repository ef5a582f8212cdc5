// Which offsets of each partition are done, and so what may be committed: the committed offset of
// a partition is the lowest offset below which every event has a final outcome.
// Not thread-safe: owned by one dispatcher thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>

namespace runnel::broker {

class OffsetTracker {
 public:
  // Registers a consumed offset. Offsets skipped between the previous one and this one no longer
  // exist on the broker (retention, compaction, transaction markers) and count as done. An offset
  // at or below one already registered (a redelivery) is ignored; returns false then.
  bool Add(std::int32_t partition, std::int64_t offset);
  // A partition that starts at `offset` (its committed offset, or where it starts without one),
  // before any record: TakeChangedCommits(true) repeats that offset until records move it, so
  // that a stack's commits go on naming it while it idles (group_lease.hpp). The first Add then
  // starts the partition at that record's offset, as without Assign.
  void Assign(std::int32_t partition, std::int64_t offset);
  // Drops a partition this consumer no longer owns (a group revoked it): its offsets not done stop
  // counting as pending, a later Done for it is ignored and it is in no commit. Assign or Add starts
  // it afresh.
  void Forget(std::int32_t partition);
  // Marks an offset done. Unknown offsets are ignored (a late duplicate outcome).
  void Done(std::int32_t partition, std::int64_t offset);
  // The lowest offset not yet done (what to commit), or nullopt before the first Add.
  std::optional<std::int64_t> CommitPoint(std::int32_t partition) const;
  // Commit points that moved since the last call; with `all`, every partition's point (to repeat a
  // commit that may have failed: asynchronous commits are not confirmed one by one).
  std::map<std::int32_t, std::int64_t> TakeChangedCommits(bool all = false);
  // Offsets registered and not yet done, over all partitions.
  std::size_t Pending() const { return pending_; }

 private:
  struct Partition {
    std::int64_t base = 0;          // lowest offset not done; every offset below it is done
    std::deque<std::uint8_t> done;  // done[i] tells whether base + i is done
    std::int64_t last_committed = -1;
    bool consumed = false;  // a record was added (false: only assigned)
  };
  std::map<std::int32_t, Partition> partitions_;
  std::size_t pending_ = 0;
};

}  // namespace runnel::broker
