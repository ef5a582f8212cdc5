// Turns one event's payload (NDJSON lines, a JSON array of readings, or one JSON object) into
// validated readings in a ReadingStore, with a reason for every reading it rejects.
// Not thread-safe: one call at a time; reusable across calls (it keeps its buffers).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "iot/params.hpp"
#include "iot/readings.hpp"

namespace runnel::functions::iot {

class ReadingParser {
 public:
  // Clears the store (see Reset).
  ReadingParser(const IngestParams& params, ReadingStore& store);
  ~ReadingParser();
  ReadingParser(const ReadingParser&) = delete;
  ReadingParser& operator=(const ReadingParser&) = delete;

  // Appends the payload's valid readings to the store, tagged with `event`. Throws
  // FunctionError(kBadInput) when the payload holds no valid reading (empty, binary, every line
  // rejected) or is a malformed JSON array; the store then holds no reading of this event.
  // Empties the store for a new call, keeping its memory, and interns the schema's metrics first so
  // their indices are 0..n-1 in schema order.
  void Reset();

  EventReport Parse(std::string_view payload, std::uint32_t event, std::int64_t now_ms);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::functions::iot
