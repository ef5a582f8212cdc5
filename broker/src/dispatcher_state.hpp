// The dispatcher's bookkeeping types: an event it holds (Slot) and a connected worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "runnel/broker/consumer.hpp"
#include "runnel/broker/producer.hpp"
#include "runnel/core/envelope.hpp"
#include "runnel/core/outcome.hpp"

namespace runnel::broker {

using Clock = std::chrono::steady_clock;

// One consumed event, from the moment it is read until it is done.
struct Slot {
  enum class State { kQueued, kInFlight, kBackoff, kFinishing };

  Message msg;
  std::string id;  // the envelope's id, or <topic>-<partition>-<offset>
  Envelope envelope;
  int attempt = 1;
  State state = State::kQueued;
  std::uint64_t token = 0;  // of the current dispatch
  std::string worker;       // identity of the worker holding it
  Clock::time_point deadline{};
  // Set once the outcome is decided: what gets published when the records it needs are acknowledged.
  std::optional<Outcome> outcome;
  bool needs_dead_letter = false;
  // Events this one leads to (Emit, `next`): produced before the outcome is final.
  std::vector<Record> pipeline;
  std::size_t pipeline_pending = 0;
};

struct Worker {
  std::string identity;  // the ROUTER routing id
  std::string id;        // what the worker calls itself
  int pid = 0;
  int capacity = 0;
  bool draining = false;
  Clock::time_point last_heard{};
  std::set<std::uint64_t> slots;  // events it holds
  std::int64_t completed = 0;
  std::int64_t service_us = 0;
  std::int64_t rss_kb = 0;

  int Free() const { return draining ? 0 : capacity - static_cast<int>(slots.size()); }
};

}  // namespace runnel::broker
