// The stack's control socket (docs/protocol.md §4.3): one REQ/REP exchange per request, one typed
// request, one reply shape. A request is a JSON object with "op":
//
//   {"op": "status"}                          the stack's status (`runnel status`)
//   {"op": "trace",      "event": ID}         where an event went (`runnel trace`)
//   {"op": "outcome",    "event": ID}         its outcome per function (`runnel invoke` waits on it)
//   {"op": "job.run",    "schedule": NAME}    fire a schedule now (`runnel job run`)
//   {"op": "job.status", "job": ID}           a job's record
//   {"op": "job.list"}                        the schedules
//
// Every reply is a JSON object with "ok": true and the answer's fields beside it, or "ok": false
// and "error". A REP socket must answer every request it receives (REQ/REP lockstep), so one that
// does not decode is answered with ControlErrorReply. Adding an op is one entry in
// ControlRequest::Op and one in the table in control_messages.cpp.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "runnel/core/decode.hpp"

namespace runnel {

inline constexpr std::size_t kMaxRequestBytes = std::size_t{64} * 1024;
inline constexpr std::size_t kMaxEventIdBytes = 128;

struct ControlRequest {
  enum class Op { kStatus, kTrace, kOutcome, kJobRun, kJobStatus, kJobList };
  Op op = Op::kStatus;
  std::string event;     // trace, outcome: [A-Za-z0-9._:-]{1,128}
  std::string schedule;  // job.run: the schedule's name
  std::string job;       // job.status: the job id

  static ControlRequest Status() { return {}; }
  static ControlRequest Trace(std::string event_id) { return {Op::kTrace, std::move(event_id), {}, {}}; }
  static ControlRequest OutcomeOf(std::string event_id) {
    return {Op::kOutcome, std::move(event_id), {}, {}};
  }
  static ControlRequest JobRun(std::string schedule) { return {Op::kJobRun, {}, std::move(schedule), {}}; }
  static ControlRequest JobStatus(std::string job) { return {Op::kJobStatus, {}, {}, std::move(job)}; }
  static ControlRequest JobList() { return {Op::kJobList, {}, {}, {}}; }

  // The job ops change or read the scheduler's records; a join token limited to functions may not
  // use them (security domain "jobs", docs/protocol.md §6.1).
  bool IsJobOp() const { return op == Op::kJobRun || op == Op::kJobStatus || op == Op::kJobList; }
  bool operator==(const ControlRequest&) const = default;
};

// The op's name on the wire ("status", "job.run", ...).
std::string_view OpName(ControlRequest::Op op);
// Every op, for error messages: "status, trace, outcome, job.run, job.status, job.list".
std::string ControlOpsKnown();
std::string Encode(const ControlRequest& request);
Decoded<ControlRequest> DecodeControlRequest(std::string_view bytes);
// Whether `s` is an event id as trace and outcome take it.
bool IsEventId(std::string_view s);

// {"ok": true} with `body`'s fields (an object) beside it.
std::string ControlOkReply(nlohmann::json body);
// {"ok": false, "error": MESSAGE}, valid UTF-8 whatever the message holds.
std::string ControlErrorReply(std::string_view message);

// A reply as the client reads it: ok and the answer's fields (without "ok"), or the stack's error.
struct ControlReply {
  bool ok = false;
  std::string error;  // when !ok
  nlohmann::json body = nlohmann::json::object();
};
Decoded<ControlReply> DecodeControlReply(std::string_view bytes);

}  // namespace runnel
