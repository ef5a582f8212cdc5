// The names of Runnel's own Kafka record headers (docs/protocol.md §1 and §2), defined once: the
// envelope's, the dead-letter copy's, the results record's and a pipeline event's. Tests keep the
// literals, since they check the wire format.
#pragma once

#include <string_view>

namespace runnel::header {

// The envelope (§1.1), read and written by envelope.cpp.
inline constexpr std::string_view kId = "runnel-id";
inline constexpr std::string_view kContentType = "content-type";
inline constexpr std::string_view kAttempt = "runnel-attempt";
inline constexpr std::string_view kHop = "runnel-hop";
inline constexpr std::string_view kReplyTo = "runnel-reply-to";
inline constexpr std::string_view kDeadline = "runnel-deadline-ms";
inline constexpr std::string_view kTrace = "runnel-trace";
inline constexpr std::string_view kFile = "runnel-file";
inline constexpr std::string_view kFileSize = "runnel-file-size";
inline constexpr std::string_view kFileName = "runnel-file-name";
inline constexpr std::string_view kJob = "runnel-job";
// W3C Trace Context (§1.4): read into the envelope's trace id and span; `tracestate` is carried
// through untouched like any header Runnel does not own.
inline constexpr std::string_view kTraceparent = "traceparent";
inline constexpr std::string_view kTracestate = "tracestate";

// A pipeline event (§4.0): the id of the event that emitted it.
inline constexpr std::string_view kParent = "runnel-parent";

// A dead-letter copy (§2).
inline constexpr std::string_view kError = "runnel-error";
inline constexpr std::string_view kErrorKind = "runnel-error-kind";
inline constexpr std::string_view kOrigin = "runnel-origin";
inline constexpr std::string_view kFunction = "runnel-function";
// Set on an event `runnel dlq --replay` publishes again: how many times it was replayed. The
// dispatcher carries it like any header of the event, onto its next dead letter.
inline constexpr std::string_view kReplayed = "runnel-replayed";
// A copy whose value was cut to fit: the value's original size in bytes.
inline constexpr std::string_view kTruncated = "runnel-truncated";
// A copy that had to leave out headers of the original: how many.
inline constexpr std::string_view kTruncatedHeaders = "runnel-truncated-headers";

// A results-topic record (§4.2): the outcome's meta JSON.
inline constexpr std::string_view kResult = "runnel-result";

}  // namespace runnel::header
