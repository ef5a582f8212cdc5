// The dispatcher <-> worker protocol over ZeroMQ (ROUTER on the dispatcher, DEALER on the worker).
// docs/protocol.md §3 specifies it; this codec turns its frames into structs and back. It knows
// nothing about sockets: callers send and receive the frames.
//
// Every message is multipart; its first frame is the command (after the ROUTER's identity frame).
//   worker -> dispatcher: HELLO <json> | RESULTS (<result header> <output>)+ | HEARTBEAT <json>
//                         | DRAINING | BYE <json>
//   dispatcher -> worker: WELCOME <json> | REJECT <json> | TASKS (<task header> <payload>)+
//                         | HEARTBEAT | EXIT <json>
// Task and result headers are binary (little-endian fixed-width integers, strings as u32 length +
// bytes) because they are on the hot path; the rare control messages are JSON.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runnel/core/envelope.hpp"
#include "runnel/core/error.hpp"

namespace runnel::wire {

inline constexpr int kVersion = 1;

namespace cmd {
inline constexpr std::string_view kHello = "HELLO";
inline constexpr std::string_view kResults = "RESULTS";
inline constexpr std::string_view kHeartbeat = "HEARTBEAT";
inline constexpr std::string_view kDraining = "DRAINING";
inline constexpr std::string_view kBye = "BYE";
inline constexpr std::string_view kCapacity = "CAPACITY";
inline constexpr std::string_view kWelcome = "WELCOME";
inline constexpr std::string_view kReject = "REJECT";
inline constexpr std::string_view kTasks = "TASKS";
inline constexpr std::string_view kExit = "EXIT";
}  // namespace cmd

// A frame that does not decode: truncated, a bad length, an unknown value. Never retriable: the
// peer speaks another protocol or is broken.
class WireError : public Error {
 public:
  explicit WireError(std::string message) : Error(std::move(message), false) {}
};

// One event handed to a worker. `token` identifies this dispatch (a re-dispatch gets a new one),
// so a late answer to an earlier dispatch is recognised and ignored.
struct TaskHeader {
  std::uint64_t token = 0;
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  bool has_key = false;
  std::string key;
  std::uint32_t attempt = 1;
  std::uint32_t timeout_ms = 0;  // the worker's budget for this call; 0 = the function's default
  Headers headers;               // the record's headers as read from Kafka (decoded by the worker)
  bool operator==(const TaskHeader&) const = default;
};

enum class ResultStatus : std::uint8_t { kOk = 0, kError = 1 };

// An event a function published with Context::Emit. The dispatcher produces it (hop count + 1,
// the source's trace and job) before the source event's offset is committed.
struct EmitRecord {
  std::string topic;
  bool has_key = false;
  std::string key;
  Headers headers;
  std::string payload;
  bool operator==(const EmitRecord&) const = default;
};

struct ResultHeader {
  std::uint64_t token = 0;
  ResultStatus status = ResultStatus::kOk;
  std::uint8_t error_code = 0;  // runnel::Errc (core/errc.hpp) when status is kError
  std::uint32_t duration_us = 0;
  std::string error;                // the function's message when status is kError
  std::string content_type;         // of the output frame
  std::string files_json;           // JSON array of output files, or empty
  std::vector<EmitRecord> emitted;  // only with kOk
  bool operator==(const ResultHeader&) const = default;
};

std::string Encode(const TaskHeader& task);
TaskHeader DecodeTask(std::string_view frame);
std::string Encode(const ResultHeader& result);
ResultHeader DecodeResult(std::string_view frame);

}  // namespace runnel::wire
