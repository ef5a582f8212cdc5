// iot.ingest's field decoding: turns one record, a JSON object the framing (reading_parser.cpp)
// found in a payload, into a Reading and its Samples in the ReadingStore, or the Problem that
// rejects it. It owns what a reading holds: the `device`, `ts` and `metrics` keys, the flat form,
// value types, the schema's rules (types, integers, min/max, unknown and required metrics) and the
// per-position cache of metric names. It knows nothing of lines, arrays, payloads or limits on them.
// Not thread-safe; one per ReadingParser.
#pragma once

#include <simdjson.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "iot/params.hpp"
#include "iot/readings.hpp"

namespace runnel::functions::iot {

// A reading that cannot be accepted. `malformed` means the JSON itself is broken: a bad line is
// rejected alone, but a broken JSON array cannot be trusted past that point.
struct Problem {
  bool malformed = false;
  std::string field;
  std::string reason;
};

// A JSON type as reasons name it: "array", "object", "number", "string", "bool", "null".
std::string_view TypeName(simdjson::ondemand::json_type type);
// "malformed JSON: <simdjson's message>", with `malformed` set.
Problem Malformed(simdjson::error_code error);
Problem Invalid(std::string field, std::string reason);

// Hidden: the library is compiled -fPIC, where a member of a default-visibility class could be
// interposed, so GCC would neither inline the hot helpers below nor specialise them; hidden, they
// bind locally, as they did as members of reading_parser.cpp's internal class (about 5% of
// iot.ingest's throughput in tests/bench/iot).
class [[gnu::visibility("hidden")]] ReadingDecoder {
 public:
  // Keeps references to both; call Reset before the first reading.
  ReadingDecoder(const IngestParams& params, ReadingStore& store);

  // For a store just cleared: forgets the metric cache and interns the schema's metrics first, so
  // their indices are 0..n-1 in schema order.
  void Reset();

  // Before an event's records: the event's index (its readings carry it), the processing clock
  // (`ts` may be at most max_future_ms ahead of it) and the end of the zero-padded buffer holding
  // the payload (metric names are matched in place, never reading past it).
  void StartEvent(std::uint32_t event, std::int64_t now_ms, const char* buffer_end);

  // Reads one reading found at `position` (a line or an index). On success it is appended to the
  // store; on a problem the store is as before.
  std::optional<Problem> ReadReading(simdjson::ondemand::object & object, std::uint32_t position);

  // Removes the reading the last successful ReadReading appended, with its samples.
  void DropLastReading();

 private:
  // What is wrong with a metric sample, found without building any text (the hot path).
  enum class SampleIssue { kNone, kNameLength, kUnknown, kType, kInteger, kBelow, kAbove, kDuplicate };

  std::optional<Problem> ReadFields(simdjson::ondemand::object & object, Reading & reading);
  std::optional<Problem> ReadTimestamp(simdjson::ondemand::value & value, std::int64_t & ts);
  std::optional<Problem> AddSample(std::string_view name, std::uint32_t metric, Sample sample,
                                   const Reading& reading, std::string_view prefix);
  SampleIssue CheckSample(std::string_view name, std::uint32_t & metric, const Sample& sample,
                          const Reading& reading);
  [[gnu::cold]] Problem SampleProblem(SampleIssue issue, std::string_view name, std::uint32_t metric,
                                      const Sample& sample, std::string_view prefix) const;
  std::uint32_t LookupMetric(std::string_view name, std::size_t position);
  std::uint32_t CachedMetricAt(const char* raw, std::size_t position, std::string_view& name) const;
  bool HasMetric(const Reading& reading, std::uint32_t metric) const;

  const IngestParams& params_;
  ReadingStore& store_;
  std::vector<const MetricRule*> rules_;  // by metric index; nullptr when the schema does not declare it
  std::vector<std::uint32_t> required_;
  std::vector<std::pair<std::string_view, Sample>> flat_;
  struct CachedMetric {
    std::string name;
    std::uint32_t index = NameTable::kNone;
    bool plain = false;  // no quote or backslash in the name
  };
  std::array<CachedMetric, 16> metric_cache_;
  const char* buffer_end_ = nullptr;
  std::int64_t now_ms_ = 0;
  std::uint32_t event_ = 0;
};

}  // namespace runnel::functions::iot
