// Holds events until they may run. Events with the same key run one at a time, in the order they
// were pushed (offset order); keyless events run whenever a worker is free. A key stays taken
// from the moment its event becomes ready until Release, including while that event waits to be
// retried, so a retry never lets a later event of the same key overtake it.
// Not thread-safe: owned by one dispatcher thread.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>

namespace runnel::broker {

class DispatchQueue {
 public:
  using Slot = std::uint64_t;

  void Push(Slot slot, const std::optional<std::string>& key);
  // The next event that may run now.
  std::optional<Slot> Pop();
  // Puts an event that holds its key back in the ready queue (a retry that is due, or a
  // re-dispatch after its worker died), ahead of events that have not run yet.
  void Requeue(Slot slot);
  // The event holding `key` has its final outcome: the key's next event becomes ready.
  void Release(const std::optional<std::string>& key);

  std::size_t Ready() const { return ready_.size(); }
  std::size_t Waiting() const { return waiting_; }

 private:
  std::deque<Slot> ready_;
  std::unordered_map<std::string, std::deque<Slot>> blocked_;  // key -> events waiting behind it
  std::size_t waiting_ = 0;
};

}  // namespace runnel::broker
