// The final outcome of one event, as the results feed carries it (docs/protocol.md §4).
// ZeroMQ frames: [topic][meta JSON][output bytes], where topic is "<function>/<reply-to>" so a
// subscriber filters by prefix: "<function>/" for every outcome of a function, the full topic
// for the answer to one synchronous call.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runnel {

enum class OutcomeStatus { kOk, kError, kDeadLetter };
std::string_view StatusName(OutcomeStatus s);

struct Outcome {
  std::string id;
  std::string function;
  OutcomeStatus status = OutcomeStatus::kOk;
  int attempts = 1;
  std::string error;       // set unless ok
  std::string error_kind;  // bad-input, timeout, ..., malformed-envelope, recursion, worker-lost, expired
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::optional<std::string> key;
  std::string content_type;
  std::string output;      // the function's output (for errors: empty)
  std::string files_json;  // JSON array of output files, or empty
  std::int64_t duration_us = 0;
  std::string worker;
  std::string reply_to;
  std::string trace_id;
  std::string span_id = {};  // the dispatcher's span for the attempt (16 hex), a child of the event's
  std::string job_id;

  std::string Topic() const { return function + "/" + reply_to; }
  // The meta frame: every field but output, as one compact JSON object with sorted keys.
  std::string MetaJson() const;
  // The same bytes built through nlohmann::json: MetaJson's fallback, and its reference in tests.
  std::string MetaJsonGeneric() const;
  static Outcome FromFrames(std::string_view meta_json, std::string output);
  // One JSON object as `runnel results --json` prints it; output as text, or base64 with a flag.
  nlohmann::json ToJson(bool output_base64) const;
};

std::string Base64Encode(std::string_view bytes);
// The bytes Base64Encode gave `text`; nullopt when it is not padded standard base64.
std::optional<std::string> Base64Decode(std::string_view text);
// True when `bytes` is valid UTF-8 without NUL, so it can be printed as JSON text.
bool IsPrintableUtf8(std::string_view bytes);

}  // namespace runnel
