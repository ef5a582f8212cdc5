// The event envelope: what Runnel reads from and writes to a Kafka record's headers.
// docs/protocol.md is the specification; this file and envelope.cpp are its only implementation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runnel/core/error.hpp"
#include "runnel/core/headers.hpp"

namespace runnel {

// One Kafka record header. Kafka allows repeated names and binary values; Runnel's own headers
// are UTF-8 text, others are carried through untouched.
struct Header {
  std::string name;
  std::string value;
  bool operator==(const Header&) const = default;
};
using Headers = std::vector<Header>;

// The header names (header::kId, ...) are in headers.hpp.

namespace limits {
inline constexpr std::size_t kIdMax = 128;
inline constexpr std::size_t kContentTypeMax = 255;
inline constexpr std::size_t kReplyToMax = 255;
inline constexpr std::size_t kFileUriMax = 4096;
inline constexpr std::size_t kFileNameMax = 255;
inline constexpr std::size_t kJobMax = 128;
inline constexpr int kAttemptMax = 1000;
// Hop counts above kMaxHops are decoded (so the event can be dead-lettered with a recursion
// error) but never produced; values above kHopDecodeMax are malformed.
inline constexpr int kMaxHops = 16;
inline constexpr int kHopDecodeMax = 1000;
// Payloads above this size travel as a file reference, not inline.
inline constexpr std::size_t kInlinePayloadMax = 1 << 20;
}  // namespace limits

// A large input that travels by reference: an absolute local path (a file:// URI on the wire), or
// an http:// or https:// URL the worker fetches (for example an object store's presigned URL).
// Exactly one of `path` and `url` is set.
struct FileRef {
  std::string path;  // absolute, decoded; empty when `url` is set
  std::optional<std::uint64_t> size;
  std::string name;      // the original file name, for outputs and humans
  std::string url = {};  // the http(s) URL as sent (it may carry credentials in its query); else empty
  bool IsUrl() const { return !url.empty(); }
  bool operator==(const FileRef&) const = default;
};

// Thrown by Envelope::Decode and the file-URI helpers; the message names the header and why.
class EnvelopeError : public Error {
 public:
  explicit EnvelopeError(std::string message) : Error(std::move(message), false) {}
};

struct Envelope {
  std::string id;  // empty when the producer sent none: the dispatcher derives one from the position
  std::string content_type;  // empty means application/octet-stream
  int attempt = 1;
  int hop = 0;
  std::string reply_to;
  std::optional<std::int64_t> deadline_ms;  // Unix epoch milliseconds
  std::string trace_id;                     // 32 lowercase hex digits, or empty
  // From a valid `traceparent` (§1.4): the sending span (16 lowercase hex digits) and its trace
  // flags (2 lowercase hex digits); both empty without one. Encode writes `traceparent` when
  // trace_id and span_id are both set.
  std::string span_id = {};
  std::string trace_flags = {};
  std::optional<FileRef> file;
  std::string job_id;
  Headers extra;  // every header Runnel does not own, in their original order

  // Headers in a fixed order: Runnel's own first (only those set), then `extra`.
  Headers Encode() const;
  // Validates every Runnel header; throws EnvelopeError naming the first bad one.
  static Envelope Decode(const Headers& headers);

  bool operator==(const Envelope&) const = default;
};

// A random event id: 26 characters, time-ordered (48-bit ms timestamp + 80 random bits, in
// Crockford base32, as ULID), so ids sort by creation time.
std::string NewEventId();
// A random W3C-style trace id: 32 lowercase hex digits.
std::string NewTraceId();

// Why the `traceparent` among `headers` is invalid (Decode drops such a header, and the trace
// restarts, as the W3C spec says), or "" when there is none or it is valid.
std::string InvalidTraceparent(const Headers& headers);
// `headers` with their `runnel-trace` and `traceparent` replaced by ones for trace `trace_id`,
// span `span_id` (a child span of the event's) and `flags` ("" means 00). Other headers, including
// `tracestate`, are kept in order.
Headers WithTraceContext(Headers headers, std::string_view trace_id, std::string_view span_id,
                         std::string_view flags);

// file:// URI <-> absolute path, percent-encoding per RFC 8089/3986.
std::string FileUriFromPath(std::string_view absolute_path);
std::string PathFromFileUri(std::string_view uri);  // throws EnvelopeError

// Checks an http:// or https:// reference (docs/protocol.md §1.2) and returns it unchanged; throws
// EnvelopeError naming the header and the rule it breaks.
std::string CheckHttpUrl(std::string_view url);
bool IsHttpUrl(std::string_view value);  // starts with http:// or https://
// scheme://host[:port]/path of an http(s) URL: what logs and error messages may show. The query
// (where presigned URLs carry their signature) and any userinfo are left out; bytes outside
// 0x21..0x7e are shown as '?'. Anything else than an http(s) URL is shown as "(not an http(s) URL)".
std::string UrlForLogs(std::string_view url);

}  // namespace runnel
