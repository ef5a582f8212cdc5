// A shared function's partitions (scaling.shared): the consumer group decides which stack owns
// each one, with librdkafka's cooperative-sticky assignor, so a stack that joins or leaves moves
// only the partitions that must move. An assignment is taken at once. A revocation first lets the
// events running on those partitions finish (within the function's timeout and a grace), commits
// what is done, and only then gives the partitions back; what was not done is handed off: its new
// owner runs it from the committed offset, and a late answer here commits nothing.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "dispatcher_loop.hpp"

namespace runnel::broker {
namespace {

// Past the function's timeout, how long a revocation waits for the events running on its
// partitions before it hands them off.
constexpr auto kRevokeGrace = std::chrono::seconds(5);
// How often a revocation counts what still runs on its partitions (a walk over every held event).
constexpr auto kRevokeCheckInterval = std::chrono::milliseconds(10);

std::set<std::int32_t> Ids(const std::vector<kafka::TopicPartitionOffset>& partitions) {
  std::set<std::int32_t> ids;
  for (const auto& tp : partitions) ids.insert(tp.partition);
  return ids;
}

}  // namespace

bool Dispatcher::Loop::Owns(std::int32_t partition) const {
  if (!shared_) return true;
  return owned_.contains(partition) && !(revoke_ && revoke_->ids.contains(partition));
}

void Dispatcher::Loop::OnRebalances() {
  for (auto& change : consumer_->TakeRebalances()) {
    ++stats_.rebalances;
    // The group moved on before the last revocation was answered (librdkafka rejoins at once on a
    // metadata change): it is answered now, so that it cannot undo the newer assignment.
    if (revoke_) {
      const auto pending = std::move(revoke_->partitions);
      revoke_.reset();
      Release(pending, /*commit=*/true, "the group rebalanced again before the events finished");
    }
    if (change.kind == kafka::Consumer::Rebalance::Kind::kAssigned) {
      TakeAssigned(change.partitions);
    } else if (change.lost) {
      Release(change.partitions, /*commit=*/false,
              "the group gave the partition to another stack (this stack's membership was lost)");
    } else {
      BeginRevoke(change.partitions);
    }
  }
}

void Dispatcher::Loop::TakeAssigned(const std::vector<kafka::TopicPartitionOffset>& partitions) {
  std::vector<kafka::TopicPartitionOffset> fresh;
  for (const auto& tp : partitions) {
    if (!owned_.contains(tp.partition))
      fresh.push_back({opt_.spec.topic, tp.partition, kafka::kOffsetStored});
  }
  // Where each starts: the group's commit (the previous owner's last), else the function's `start`.
  if (!fresh.empty()) PrepareStarts(consumer_->CommittedWithMetadata(fresh));
  consumer_->IncrementalAssign(fresh);
  for (const auto& tp : fresh) {
    owned_.insert(tp.partition);
    assigned_.push_back(tp);
  }
  if (paused_ && !fresh.empty()) consumer_->Pause(fresh);  // full or stopping: they wait like the rest
  log_.info("the group assigned partition(s) {} of {} to this stack; it owns {} now", Ids(fresh),
            opt_.spec.topic, owned_);
}

void Dispatcher::Loop::BeginRevoke(const std::vector<kafka::TopicPartitionOffset>& partitions) {
  Revoke r{partitions, Ids(partitions), Clock::now() + opt_.spec.timeout + kRevokeGrace};
  // What has not started is left to the next owner; what runs finishes here first.
  std::vector<std::uint64_t> waiting;
  std::size_t running = 0;
  for (const auto& [id, slot] : slots_) {
    if (!r.ids.contains(slot.msg.partition) || slot.handed_off) continue;
    if (slot.state == Slot::State::kQueued || slot.state == Slot::State::kBackoff) {
      waiting.push_back(id);
    } else {
      ++running;
    }
  }
  for (const std::uint64_t id : waiting) HandOff(id, "its partition was revoked before it ran");
  log_.info(
      "the group revokes partition(s) {}: {} event(s) running there finish first (at most {} ms), {} not "
      "started are left to the next owner",
      r.ids, running,
      std::chrono::duration_cast<std::chrono::milliseconds>(r.deadline - Clock::now()).count(),
      waiting.size());
  revoke_ = std::move(r);
  next_revoke_check_ = Clock::time_point{};
}

void Dispatcher::Loop::CheckRevoke(Clock::time_point now) {
  if (now < next_revoke_check_) return;
  next_revoke_check_ = now + kRevokeCheckInterval;
  const bool expired = now >= revoke_->deadline;
  if (!expired) {
    for (const auto& [id, slot] : slots_) {
      if (!revoke_->ids.contains(slot.msg.partition) || slot.handed_off) continue;
      if (slot.state == Slot::State::kInFlight || slot.WritingRecords()) return;  // still running there
    }
  }
  const auto partitions = std::move(revoke_->partitions);
  revoke_.reset();
  Release(partitions, /*commit=*/true,
          expired ? "its partition was revoked and it did not finish within the function's timeout"
                  : "its partition was revoked");
}

void Dispatcher::Loop::Release(const std::vector<kafka::TopicPartitionOffset>& partitions, bool commit,
                               const std::string& why) {
  const auto ids = Ids(partitions);
  if (commit) {
    PublishOutcomes();  // an offset is committed only after its outcome went to the feed
    std::vector<kafka::TopicPartitionOffset> offsets;
    for (const std::int32_t p : ids) {
      if (const auto point = tracker_.CommitPoint(p)) offsets.push_back({opt_.spec.topic, p, *point});
    }
    try {
      consumer_->CommitOffsets(offsets);
    } catch (const Error& e) {
      log_.error(
          "committing revoked partition(s) {} failed ({}); their next owner runs again what was done "
          "since the last commit",
          ids, e.what());
    }
  }
  std::vector<std::uint64_t> left;
  for (const auto& [id, slot] : slots_) {
    if (ids.contains(slot.msg.partition) && !slot.handed_off) left.push_back(id);
  }
  for (const std::uint64_t id : left) HandOff(id, why);
  for (const std::int32_t p : ids) {
    tracker_.Forget(p);
    expected_next_.erase(p);
    owned_.erase(p);
  }
  std::erase_if(assigned_, [&ids](const auto& tp) { return ids.contains(tp.partition); });
  consumer_->IncrementalUnassign(partitions);
  log_.info("released partition(s) {} to the group ({}{} event(s) handed off); it owns {} now", ids,
            commit ? "done events committed, " : "lost: nothing committed, ", left.size(), owned_);
}

void Dispatcher::Loop::HandOff(std::uint64_t slot_id, const std::string& reason) {
  auto it = slots_.find(slot_id);
  if (it == slots_.end() || it->second.handed_off) return;
  Slot& slot = it->second;
  slot.handed_off = true;
  ++stats_.handed_off;
  if (opt_.observer) opt_.observer->HandedOff(slot_id, reason);
  switch (slot.state) {
    case Slot::State::kQueued:
      return;  // in the queue, maybe holding its key: Dispatch drops it when it comes up
    case Slot::State::kInFlight:
      // The worker may still answer: its token is unknown then (a late result), and commits nothing.
      by_token_.erase(slot.token);
      if (auto w = workers_.find(slot.connection); w != workers_.end()) w->second.slots.erase(slot_id);
      break;
    case Slot::State::kBackoff:
      break;  // the retry finds no slot
    default:  // writing its records: a late delivery report finds no slot
      if (blocked_slots_.erase(slot_id) > 0 && !Blocked()) {
        stats_.blocked = false;
        stats_.blocked_reason.clear();
      }
      break;
  }
  queue_.Release(slot.msg.key);
  slots_.erase(it);
}

}  // namespace runnel::broker
