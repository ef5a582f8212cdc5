#include "iot/readings.hpp"

#include <algorithm>
#include <cstring>

namespace runnel::functions::iot {
namespace {

using name_bytes::Load4;
using name_bytes::Load8;

// A fast hash for short names (device ids are typically 8..40 bytes): 8 bytes per multiply. The
// tail is read as the last 8 (or 4) bytes of the name, overlapping what came before, instead of a
// copy of variable length (a call to memcpy per name).
std::size_t HashName(std::string_view name) {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ name.size();
  const auto mix = [&h](std::uint64_t word) {
    h = (h ^ word) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  };
  const char* p = name.data();
  const std::size_t n = name.size();
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 < n; i += 8) mix(Load8(p + i));
    mix(Load8(p + n - 8));
  } else if (n >= 4) {
    mix(static_cast<std::uint64_t>(Load4(p)) << 32 | Load4(p + n - 4));
  } else if (n > 0) {
    mix(static_cast<std::uint64_t>(static_cast<unsigned char>(p[0])) << 16 |
        static_cast<std::uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 |
        static_cast<unsigned char>(p[n - 1]));
  }
  h *= 0xC4CEB9FE1A85EC53ull;
  return static_cast<std::size_t>(h ^ (h >> 29));
}

}  // namespace

namespace {

// A slot holds the name's index + 1 in its low half (0: empty) and the hash's high half above, so a
// probe rejects other names without reading them.
constexpr std::uint64_t kTagMask = 0xffffffff00000000ull;

std::uint64_t SlotEntry(std::size_t hash, std::size_t index) {
  return (static_cast<std::uint64_t>(hash) & kTagMask) | (static_cast<std::uint64_t>(index) + 1);
}

std::uint32_t EntryIndex(std::uint64_t entry) { return static_cast<std::uint32_t>(entry) - 1; }

}  // namespace

NameTable::NameTable() : slots_(16, 0) {}

std::size_t NameTable::Slot(std::string_view name, std::size_t hash) const {
  const std::size_t mask = slots_.size() - 1;
  const std::uint64_t tag = static_cast<std::uint64_t>(hash) & kTagMask;
  for (std::size_t slot = hash & mask;; slot = (slot + 1) & mask) {
    const std::uint64_t entry = slots_[slot];
    if (entry == 0) return slot;
    if ((entry & kTagMask) == tag && SameName(names_[EntryIndex(entry)], name)) return slot;
  }
}

void NameTable::Clear() {
  names_.clear();
  hashes_.clear();
  std::fill(slots_.begin(), slots_.end(), 0);
}

std::uint32_t NameTable::Find(std::string_view name) const {
  const std::uint64_t entry = slots_[Slot(name, HashName(name))];
  return entry == 0 ? kNone : EntryIndex(entry);
}

std::size_t NameTable::Hash(std::string_view name) { return HashName(name); }

std::uint32_t NameTable::Intern(std::string_view name, std::size_t hash) {
  std::size_t slot = Slot(name, hash);
  if (slots_[slot] != 0) return EntryIndex(slots_[slot]);
  if ((names_.size() + 1) * 2 > slots_.size()) {
    Grow();
    slot = Slot(name, hash);
  }
  names_.emplace_back(name);
  hashes_.push_back(hash);
  slots_[slot] = SlotEntry(hash, names_.size() - 1);
  return static_cast<std::uint32_t>(names_.size() - 1);
}

void NameTable::Grow() {
  std::vector<std::uint64_t> slots(slots_.size() * 2, 0);
  const std::size_t mask = slots.size() - 1;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    std::size_t slot = hashes_[i] & mask;
    while (slots[slot] != 0) slot = (slot + 1) & mask;
    slots[slot] = SlotEntry(hashes_[i], i);
  }
  slots_ = std::move(slots);
}

}  // namespace runnel::functions::iot
