// The synchronous HTTP calls waiting for their outcome, by event id. A call registers (Expect)
// before its event is published; the stack's dispatchers hand every final outcome of an event
// with a reply-to to Complete (telemetry's call sink, on their own threads), and the call that
// waits for that id wakes with it. Outcomes of ids nobody waits for are dropped at once, without a
// copy. Thread-safety: every method from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "runnel/core/outcome.hpp"

namespace runnel::gateway {

// The reply-to of the events the gateway publishes for a synchronous call: only their outcomes
// are looked up in Complete.
inline constexpr std::string_view kSyncReplyTo = "gateway.sync";

class PendingCalls {
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Outcome> outcome;
  };

 public:
  // One registered call; forgets the id when it goes.
  class Expectation {
   public:
    Expectation(PendingCalls& owner, std::string id, std::shared_ptr<Slot> slot)
        : owner_(&owner), id_(std::move(id)), slot_(std::move(slot)) {}
    ~Expectation() { owner_->Forget(id_); }
    Expectation(const Expectation&) = delete;
    Expectation& operator=(const Expectation&) = delete;
    // The outcome, once it came; nullopt when `until` passed first.
    std::optional<Outcome> Wait(std::chrono::steady_clock::time_point until);

   private:
    PendingCalls* owner_;
    std::string id_;
    std::shared_ptr<Slot> slot_;
  };

  std::unique_ptr<Expectation> Expect(const std::string& id);
  void Complete(const Outcome& outcome);
  std::size_t Waiting() const;
  // Every wait, now and later, returns at once without an outcome (the gateway is stopping).
  void Close();

 private:
  void Forget(const std::string& id);

  mutable std::mutex mu_;
  std::atomic<bool> closed_{false};
  std::unordered_map<std::string, std::shared_ptr<Slot>> slots_;
};

}  // namespace runnel::gateway
