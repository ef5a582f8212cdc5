#include "runnel/telemetry/trace_store.hpp"

#include <algorithm>
#include <functional>

namespace runnel::telemetry {

nlohmann::json EventTrace::ToJson() const {
  nlohmann::json attempts_json = nlohmann::json::array();
  for (const auto& a : attempts) {
    nlohmann::json j = {
        {"attempt", a.attempt}, {"worker", a.worker}, {"start_ms", a.start_ms}, {"result", a.result}};
    if (a.duration_us >= 0) j["duration_ms"] = static_cast<double>(a.duration_us) / 1000.0;
    if (!a.error_kind.empty()) j["error_kind"] = a.error_kind;
    if (!a.error.empty()) j["error"] = a.error;
    if (a.retry_in_ms >= 0) j["retry_in_ms"] = a.retry_in_ms;
    attempts_json.push_back(std::move(j));
  }
  nlohmann::json j = {{"id", id},
                      {"function", function},
                      {"topic", topic},
                      {"partition", partition},
                      {"offset", offset},
                      {"received_ms", received_ms},
                      {"deliveries", deliveries},
                      {"attempts", std::move(attempts_json)},
                      {"retries", attempts.empty() ? 0 : static_cast<int>(attempts.size()) - 1},
                      {"status", status}};
  if (key) j["key"] = *key;
  if (record_ms >= 0) j["record_ms"] = record_ms;
  if (!error_kind.empty()) j["error_kind"] = error_kind;
  if (!error.empty()) j["error"] = error;
  if (!dead_letter_topic.empty()) j["dead_letter_topic"] = dead_letter_topic;
  if (finished_ms >= 0) j["finished_ms"] = finished_ms;
  if (latency_ms >= 0) j["latency_ms"] = latency_ms;
  return j;
}

namespace {

std::uint32_t HashId(const std::string& id) {
  return static_cast<std::uint32_t>(std::hash<std::string>{}(id));
}

// Back to a new trace's state, keeping the capacity of its strings and attempts.
void Reset(EventTrace& t) {
  t.id.clear();
  t.function.clear();
  t.topic.clear();
  t.partition = -1;
  t.offset = -1;
  t.key.reset();
  t.record_ms = -1;
  t.received_ms = 0;
  t.deliveries = 1;
  t.attempts.clear();
  t.status = "in progress";
  t.error_kind.clear();
  t.error.clear();
  t.dead_letter_topic.clear();
  t.finished_ms = -1;
  t.latency_ms = -1;
}

}  // namespace

TraceStore::TraceStore(std::size_t max_events) : max_events_(max_events == 0 ? 1 : max_events) {
  // Both grow while the ring fills, so a large bound costs memory only once events arrive; the
  // default bound's ring is reserved at once (no moves of filled slots while it fills).
  ring_.reserve(std::min(max_events_, kDefaultMaxEvents));
  index_.resize(1024);
  mask_ = index_.size() - 1;
}

void TraceStore::IndexGrow() {
  std::vector<IndexEntry> old(index_.size() * 2);
  old.swap(index_);
  mask_ = index_.size() - 1;
  for (const IndexEntry& e : old) {
    if (e.slot_plus_1 != 0) IndexInsert(e.slot_plus_1 - 1, e.hash);
  }
}

std::size_t TraceStore::Lookup(const std::string& id, std::uint32_t hash) const {
  for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const IndexEntry& e = index_[i];
    if (e.slot_plus_1 == 0) return std::string::npos;
    if (e.hash == hash && ring_[e.slot_plus_1 - 1].first.id == id) return i;
  }
}

void TraceStore::IndexInsert(std::uint32_t slot, std::uint32_t hash) {
  std::size_t i = hash & mask_;
  while (index_[i].slot_plus_1 != 0) i = (i + 1) & mask_;
  index_[i] = IndexEntry{slot + 1, hash};
}

void TraceStore::IndexErase(std::uint32_t slot) {
  std::size_t hole = ring_[slot].hash & mask_;
  while (index_[hole].slot_plus_1 != slot + 1) hole = (hole + 1) & mask_;
  // Backward-shift deletion: move up every later entry of the run that may not sit past the hole
  // (its home is not cyclically within (hole, j]), so lookups never need tombstones.
  for (std::size_t j = (hole + 1) & mask_; index_[j].slot_plus_1 != 0; j = (j + 1) & mask_) {
    const std::size_t home = index_[j].hash & mask_;
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    index_[hole] = index_[j];
    hole = j;
  }
  index_[hole] = IndexEntry{};
}

TraceRef TraceStore::Batch::Open(const std::string& function, const std::string& id) {
  auto& s = store_;
  const std::uint32_t hash = HashId(id);
  std::uint32_t slot_number = 0;
  if (const std::size_t at = s.Lookup(id, hash); at != std::string::npos) {
    slot_number = s.index_[at].slot_plus_1 - 1;
  } else {
    if (s.ring_.size() < s.max_events_) {
      slot_number = static_cast<std::uint32_t>(s.ring_.size());
      s.ring_.emplace_back();
    } else {
      slot_number = static_cast<std::uint32_t>(s.next_);
      s.next_ = (s.next_ + 1) % s.max_events_;
      s.IndexErase(slot_number);
    }
    Slot& fresh = s.ring_[slot_number];
    fresh.hash = hash;
    fresh.generation = ++s.generation_;
    fresh.used = 0;
    if (s.ring_.size() * 2 > s.index_.size()) s.IndexGrow();  // at most half full
    s.IndexInsert(slot_number, hash);
  }
  Slot& slot = s.ring_[slot_number];
  for (std::size_t i = 0; i < slot.used; ++i) {
    if (slot.Trace(i).function == function) {
      return TraceRef{slot_number, static_cast<std::uint32_t>(i), slot.generation};
    }
  }
  if (slot.used > slot.more.size()) slot.more.emplace_back();
  EventTrace& t = slot.Trace(slot.used);
  Reset(t);
  t.id = id;
  t.function = function;
  return TraceRef{slot_number, static_cast<std::uint32_t>(slot.used++), slot.generation};
}

EventTrace* TraceStore::Batch::At(const TraceRef& ref) {
  auto& s = store_;
  if (ref.slot >= s.ring_.size()) return nullptr;
  Slot& slot = s.ring_[ref.slot];
  if (slot.generation != ref.generation || ref.index >= slot.used) return nullptr;
  return &slot.Trace(ref.index);
}

void TraceStore::Batch::Keep(const std::string& function, const std::string& id, KeptOutcome outcome) {
  auto& s = store_;
  std::string key = function + '\n' + id;
  KeptEntry& entry = s.kept_[key];
  s.kept_bytes_ -= entry.outcome.meta.size() + entry.outcome.output.size();
  s.kept_bytes_ += outcome.meta.size() + outcome.output.size();
  entry.outcome = std::move(outcome);
  entry.sequence = ++s.kept_sequence_;
  s.kept_order_.emplace_back(std::move(key), entry.sequence);
  // The oldest go first; positions left behind by a replacement are skipped. The order holds at
  // most twice the bound's positions, so it stays bounded too.
  while (!s.kept_order_.empty() && (s.kept_bytes_ > kKeptBytesMax || s.kept_.size() > s.max_events_ ||
                                    s.kept_order_.size() > 2 * s.max_events_)) {
    auto& [oldest, sequence] = s.kept_order_.front();
    if (auto it = s.kept_.find(oldest); it != s.kept_.end() && it->second.sequence == sequence) {
      s.kept_bytes_ -= it->second.outcome.meta.size() + it->second.outcome.output.size();
      s.kept_.erase(it);
    }
    s.kept_order_.pop_front();
  }
}

std::optional<KeptOutcome> TraceStore::Kept(const std::string& function, const std::string& id) const {
  std::lock_guard lock(mu_);
  const auto it = kept_.find(function + '\n' + id);
  if (it == kept_.end()) return std::nullopt;
  return it->second.outcome;
}

std::size_t TraceStore::KeptBytes() const {
  std::lock_guard lock(mu_);
  return kept_bytes_;
}

std::vector<EventTrace> TraceStore::Find(const std::string& id) const {
  std::lock_guard lock(mu_);
  std::vector<EventTrace> out;
  if (const std::size_t at = Lookup(id, HashId(id)); at != std::string::npos) {
    const Slot& slot = ring_[index_[at].slot_plus_1 - 1];
    out.reserve(slot.used);
    for (std::size_t i = 0; i < slot.used; ++i) out.push_back(slot.Trace(i));
  }
  return out;
}

std::size_t TraceStore::Size() const {
  std::lock_guard lock(mu_);
  return ring_.size();
}

}  // namespace runnel::telemetry
