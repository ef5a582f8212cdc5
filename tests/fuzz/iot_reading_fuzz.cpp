// iot.ingest's reading parser (functions/src/iot/reading_parser.cpp, its framing, and
// reading_fields.cpp, its field decoding; simdjson on demand). Input: one event's payload (NDJSON,
// a JSON array or one object), parsed with the default params and with a strict schema. Oracle:
// Parse throws FunctionError(kBadInput) or returns a report whose readings and samples lie inside
// the store, with no more errors kept than max_errors.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "iot/params.hpp"
#include "iot/reading_parser.hpp"
#include "runnel/functions/function.hpp"

namespace {

namespace iot = runnel::functions::iot;

constexpr std::int64_t kNow = 1'699'999'980'000;  // 2023-11-14T22:13:20Z

const iot::IngestParams kStrict = iot::ParseIngestParams(nlohmann::json::parse(R"({
  "max_line_bytes": 512, "max_errors": 4,
  "schema": {"required": ["device", "ts", "temp"],
             "metrics": {"temp": {"type": "number", "min": -50, "max": 150},
                         "door": {"type": "bool"}, "count": {"type": "integer"}},
             "allow_unknown_metrics": false}
})"));

// One parser per params, reused across inputs as the function reuses it across calls.
struct Parser {
  explicit Parser(const iot::IngestParams& p) : params(p), parser(params, store) {}
  const iot::IngestParams params;
  iot::ReadingStore store;
  iot::ReadingParser parser;
};

void Check(Parser& p, std::string_view payload) {
  const iot::IngestParams& params = p.params;
  iot::ReadingStore& store = p.store;
  iot::ReadingParser& parser = p.parser;
  parser.Reset();
  try {
    const iot::EventReport report = parser.Parse(payload, 0, kNow);
    if (report.reading_count == 0) std::abort();  // no valid reading must be an error
    if (report.first_reading + report.reading_count != store.readings.size()) std::abort();
    if (report.errors.size() > params.max_errors) std::abort();
    for (const iot::Reading& r : store.readings) {
      if (r.device >= store.devices.Size() || r.first_sample + r.sample_count > store.samples.size())
        std::abort();
    }
    for (const iot::Sample& s : store.samples) {
      if (s.metric >= store.metrics.Size()) std::abort();
    }
  } catch (const runnel::functions::FunctionError& e) {
    if (e.Code() != runnel::Errc::kBadInput) std::abort();
    if (!store.readings.empty()) std::abort();  // a failed event leaves no reading behind
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  static Parser lenient{iot::IngestParams{}};
  static Parser strict{kStrict};
  Check(lenient, payload);
  Check(strict, payload);
  return 0;
}
