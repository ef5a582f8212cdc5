// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` header, parsed and
// written. docs/protocol.md §1.4 says how it maps onto the envelope's trace id.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace runnel {

struct TraceParent {
  std::string trace_id;      // 32 lowercase hex digits, not all zeros
  std::string parent_id;     // 16 lowercase hex digits, not all zeros: the sender's span
  std::string flags = "00";  // 2 lowercase hex digits (bit 0: sampled)
  bool operator==(const TraceParent&) const = default;
};

// Parses a `traceparent` value strictly: version 00 is exactly
// `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`, lowercase, ids not all zeros. Version
// `ff` is invalid; a higher version is read by its first four fields (anything after them must
// start with '-'). On failure returns nullopt and, when `why` is given, sets it to the reason.
std::optional<TraceParent> ParseTraceparent(std::string_view value, std::string* why = nullptr);
// `00-<trace_id>-<parent_id>-<flags>`: always version 00, the version this implementation knows.
std::string FormatTraceparent(const TraceParent& tp);
// A random span id: 16 lowercase hex digits, not all zeros.
std::string NewSpanId();

}  // namespace runnel
