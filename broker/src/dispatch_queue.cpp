#include "runnel/broker/dispatch_queue.hpp"

namespace runnel::broker {

void DispatchQueue::Push(Slot slot, const std::optional<std::string>& key) {
  if (!key) {
    ready_.push_back(slot);
    return;
  }
  // A key present in blocked_ is taken (its deque holds the events behind the running one).
  auto [it, fresh] = blocked_.try_emplace(*key);
  if (fresh) {
    ready_.push_back(slot);
  } else {
    it->second.push_back(slot);
    ++waiting_;
  }
}

std::optional<DispatchQueue::Slot> DispatchQueue::Pop() {
  if (ready_.empty()) return std::nullopt;
  const Slot slot = ready_.front();
  ready_.pop_front();
  return slot;
}

void DispatchQueue::Requeue(Slot slot) { ready_.push_front(slot); }

void DispatchQueue::Release(const std::optional<std::string>& key) {
  if (!key) return;
  auto it = blocked_.find(*key);
  if (it == blocked_.end()) return;
  if (it->second.empty()) {
    blocked_.erase(it);
    return;
  }
  ready_.push_back(it->second.front());
  it->second.pop_front();
  --waiting_;
}

}  // namespace runnel::broker
