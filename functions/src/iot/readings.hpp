// The parsed form of a batch's readings: interned device and metric names, flat arrays of readings
// and their metric samples. The parser fills it; the analysis reads it. One per call, never shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace runnel::functions::iot {

// Interns names (device ids, metric names) to dense indices so the hot path stores integers.
// Open addressing with linear probing; names live in `names_` (indices are stable, views are not).
class NameTable {
 public:
  NameTable();
  std::uint32_t Intern(std::string_view name) { return Intern(name, Hash(name)); }
  // The same with the name's Hash, computed earlier: a caller that knows a name well before it
  // needs its index can Prefetch its slot meanwhile (device names: the table is larger than L1).
  std::uint32_t Intern(std::string_view name, std::size_t hash);
  static std::size_t Hash(std::string_view name);
  void Prefetch(std::size_t hash) const { __builtin_prefetch(&slots_[hash & (slots_.size() - 1)]); }
  // kNone when absent.
  std::uint32_t Find(std::string_view name) const;
  std::string_view Name(std::uint32_t index) const { return names_[index]; }
  std::uint32_t Size() const { return static_cast<std::uint32_t>(names_.size()); }
  // Forgets every name but keeps the memory, for the next call.
  void Clear();

  static constexpr std::uint32_t kNone = 0xffffffffu;

 private:
  std::size_t Slot(std::string_view name, std::size_t hash) const;
  void Grow();

  std::vector<std::string> names_;
  std::vector<std::size_t> hashes_;   // by index, for Grow
  std::vector<std::uint64_t> slots_;  // hash tag | index + 1; 0 is empty
};

namespace name_bytes {
// Loads of 8 and 4 bytes at any alignment, of a constant size so they compile to one move each.
inline std::uint64_t Load8(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, 8);
  return word;
}
inline std::uint32_t Load4(const char* p) {
  std::uint32_t word;
  std::memcpy(&word, p, 4);
  return word;
}
}  // namespace name_bytes

// a == b without a call to memcmp (names are compared on every reading): the tail is compared as
// the last 8 (or 4) bytes, overlapping what came before.
inline bool SameName(std::string_view a, std::string_view b) {
  using name_bytes::Load4;
  using name_bytes::Load8;
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  const char* p = a.data();
  const char* q = b.data();
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 < n; i += 8) {
      if (Load8(p + i) != Load8(q + i)) return false;
    }
    return Load8(p + n - 8) == Load8(q + n - 8);
  }
  if (n >= 4) return Load4(p) == Load4(q) && Load4(p + n - 4) == Load4(q + n - 4);
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != q[i]) return false;
  }
  return true;
}

// One metric value of a reading. Bools are stored as 0/1 and keep a flag so thresholds and
// anomaly detection skip them.
struct Sample {
  std::uint32_t metric;
  bool is_bool;
  double value;
};

struct Reading {
  std::int64_t ts;  // epoch ms
  std::uint32_t device;
  std::uint32_t event;     // index of the event in the batch
  std::uint32_t position;  // 1-based NDJSON line, or 0-based index in a JSON array
  std::uint32_t first_sample;
  std::uint32_t sample_count;
  bool late = false;
};

struct ReadingStore {
  NameTable devices;
  NameTable metrics;
  std::vector<Reading> readings;
  std::vector<Sample> samples;

  void Clear() {
    devices.Clear();
    metrics.Clear();
    readings.clear();
    samples.clear();
  }
};

// Where a position in an event's payload points: a line of NDJSON or an element of a JSON array.
enum class PositionKind { kLine, kIndex };

// One rejected reading; `field` is empty when the problem is the whole line.
struct ReadingError {
  std::uint32_t position;
  std::string field;
  std::string reason;
};

// What parsing one event produced. Its readings are store.readings[first_reading, +reading_count).
struct EventReport {
  PositionKind kind = PositionKind::kLine;
  std::uint32_t first_reading = 0;
  std::uint32_t reading_count = 0;  // valid readings (accepted + late once lateness is known)
  std::uint32_t rejected = 0;
  std::uint32_t late = 0;            // set by the analysis
  std::vector<ReadingError> errors;  // the first max_errors rejections
};

}  // namespace runnel::functions::iot
