#include "iot/readings.hpp"

#include <algorithm>
#include <cstring>

namespace runnel::functions::iot {
namespace {

// A fast hash for short names (device ids are typically 8..40 bytes): 8 bytes per multiply.
std::size_t HashName(std::string_view name) {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ name.size();
  const char* p = name.data();
  std::size_t left = name.size();
  while (left > 0) {
    std::uint64_t word = 0;
    const std::size_t n = left < 8 ? left : 8;
    std::memcpy(&word, p, n);
    h = (h ^ word) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    p += n;
    left -= n;
  }
  h *= 0xC4CEB9FE1A85EC53ull;
  return static_cast<std::size_t>(h ^ (h >> 29));
}

}  // namespace

NameTable::NameTable() : slots_(16, 0) {}

std::size_t NameTable::Slot(std::string_view name, std::size_t hash) const {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t slot = hash & mask;; slot = (slot + 1) & mask) {
    const std::uint32_t entry = slots_[slot];
    if (entry == 0) return slot;
    if (hashes_[entry - 1] == hash && names_[entry - 1] == name) return slot;
  }
}

void NameTable::Clear() {
  names_.clear();
  hashes_.clear();
  std::fill(slots_.begin(), slots_.end(), 0u);
}

std::uint32_t NameTable::Find(std::string_view name) const {
  const std::uint32_t entry = slots_[Slot(name, HashName(name))];
  return entry == 0 ? kNone : entry - 1;
}

std::uint32_t NameTable::Intern(std::string_view name) {
  const std::size_t hash = HashName(name);
  std::size_t slot = Slot(name, hash);
  if (slots_[slot] != 0) return slots_[slot] - 1;
  if ((names_.size() + 1) * 2 > slots_.size()) {
    Grow();
    slot = Slot(name, hash);
  }
  names_.emplace_back(name);
  hashes_.push_back(hash);
  slots_[slot] = static_cast<std::uint32_t>(names_.size());
  return static_cast<std::uint32_t>(names_.size() - 1);
}

void NameTable::Grow() {
  std::vector<std::uint32_t> slots(slots_.size() * 2, 0);
  const std::size_t mask = slots.size() - 1;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    std::size_t slot = hashes_[i] & mask;
    while (slots[slot] != 0) slot = (slot + 1) & mask;
    slots[slot] = static_cast<std::uint32_t>(i + 1);
  }
  slots_ = std::move(slots);
}

}  // namespace runnel::functions::iot
