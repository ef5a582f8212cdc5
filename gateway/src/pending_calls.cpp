#include "runnel/gateway/pending_calls.hpp"

namespace runnel::gateway {

std::unique_ptr<PendingCalls::Expectation> PendingCalls::Expect(const std::string& id) {
  auto slot = std::make_shared<Slot>();
  {
    const std::lock_guard lock(mu_);
    slots_[id] = slot;
  }
  return std::make_unique<Expectation>(*this, id, std::move(slot));
}

void PendingCalls::Complete(const Outcome& outcome) {
  if (outcome.reply_to != kSyncReplyTo) return;
  std::shared_ptr<Slot> slot;
  {
    const std::lock_guard lock(mu_);
    const auto it = slots_.find(outcome.id);
    if (it == slots_.end()) return;  // the call gave up, or a redelivery after its answer
    slot = it->second;
  }
  {
    const std::lock_guard lock(slot->mu);
    if (slot->outcome) return;
    slot->outcome = outcome;
  }
  slot->cv.notify_one();
}

std::size_t PendingCalls::Waiting() const {
  const std::lock_guard lock(mu_);
  return slots_.size();
}

void PendingCalls::Close() {
  const std::lock_guard lock(mu_);
  closed_ = true;
  for (auto& [id, slot] : slots_) {
    { const std::lock_guard slot_lock(slot->mu); }  // a waiter checks closed_ under this lock
    slot->cv.notify_all();
  }
}

void PendingCalls::Forget(const std::string& id) {
  const std::lock_guard lock(mu_);
  slots_.erase(id);
}

std::optional<Outcome> PendingCalls::Expectation::Wait(std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(slot_->mu);
  slot_->cv.wait_until(lock, until, [this] { return slot_->outcome.has_value() || owner_->closed_.load(); });
  return std::move(slot_->outcome);
}

}  // namespace runnel::gateway
