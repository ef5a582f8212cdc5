// The requests of the stack's two REP sockets (docs/protocol.md §4.3, §4.4) as structs, one codec
// each, and the error replies they get. A REP socket must answer every request it receives (REQ/REP
// lockstep), so a request that does not decode is answered with the error reply built here.
//
// Status socket (the autoscaler's): one text frame, `status`, `trace <event id>` or `outcome <event
// id>`. Adding a kind
// is one entry in StatusRequest::Kind and one in the table in control_messages.cpp.
// Control socket (the scheduler's): one JSON object with `op`: job.run, job.status, job.list.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "runnel/core/decode.hpp"

namespace runnel {

inline constexpr std::size_t kMaxRequestBytes = std::size_t{64} * 1024;

struct StatusRequest {
  enum class Kind {
    kStatus,   // `status`: the stack's status JSON
    kTrace,    // `trace <event id>`: where the event went
    kOutcome,  // `outcome <event id>`: its outcome per function, and a kept synchronous call's output
  };
  Kind kind = Kind::kStatus;
  std::string event_id;  // for the kinds that name an event: [A-Za-z0-9._:-]{1,128}
  bool operator==(const StatusRequest&) const = default;
};
std::string Encode(const StatusRequest& request);
Decoded<StatusRequest> DecodeStatusRequest(std::string_view bytes);
// What the status socket knows, for error messages: "status, trace <event id>, outcome <event id>".
std::string StatusRequestsKnown();
// The reply to a request that did not decode (or failed): {"error": MESSAGE}, valid UTF-8 whatever
// the message holds.
std::string StatusErrorReply(std::string_view message);

struct ControlRequest {
  enum class Op { kJobRun, kJobStatus, kJobList };
  Op op = Op::kJobList;
  std::string schedule;  // job.run: the schedule's name
  std::string job;       // job.status: the job id
  bool operator==(const ControlRequest&) const = default;
};
std::string Encode(const ControlRequest& request);
Decoded<ControlRequest> DecodeControlRequest(std::string_view bytes);
// {"ok": false, "error": MESSAGE}, valid UTF-8 whatever the message holds.
std::string ControlErrorReply(std::string_view message);

// A control socket's reply as the client reads it: ok and the object, or the stack's error.
struct ControlReply {
  bool ok = false;
  std::string error;  // when !ok
  nlohmann::json body = nlohmann::json::object();
};
Decoded<ControlReply> DecodeControlReply(std::string_view bytes);

// A status socket's reply as the client reads it: a JSON object (an {"error"} one included).
Decoded<nlohmann::json> DecodeStatusReply(std::string_view bytes);

}  // namespace runnel
