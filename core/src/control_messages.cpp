#include "runnel/core/control_messages.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "json_fields.hpp"
#include "runnel/core/json.hpp"

namespace runnel {
namespace {

using detail::Fields;
using detail::ParseObject;

constexpr std::size_t kMaxEventId = 128;
constexpr std::size_t kMaxReplyBytes = std::size_t{256} * 1024 * 1024;
constexpr std::size_t kQuoted = 64;  // bytes of an unknown request quoted back

// The status socket's requests: the keyword, and whether an event id follows it.
struct StatusKind {
  StatusRequest::Kind kind;
  std::string_view keyword;
  bool takes_event_id;
};
constexpr std::array<StatusKind, 3> kStatusKinds = {{
    {StatusRequest::Kind::kStatus, "status", false},
    {StatusRequest::Kind::kTrace, "trace", true},
    {StatusRequest::Kind::kOutcome, "outcome", true},
}};

constexpr std::array<std::pair<ControlRequest::Op, std::string_view>, 3> kOps = {{
    {ControlRequest::Op::kJobRun, "job.run"},
    {ControlRequest::Op::kJobStatus, "job.status"},
    {ControlRequest::Op::kJobList, "job.list"},
}};

bool IsEventId(std::string_view s) {
  return !s.empty() && s.size() <= kMaxEventId && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

// The first bytes of a request, for an error message (the caller checked it is UTF-8; a cut inside
// a character is replaced when the reply is written).
std::string Quote(std::string_view s) {
  return s.size() <= kQuoted ? std::string(s) : fmt::format("{}...", s.substr(0, kQuoted));
}

}  // namespace

std::string Encode(const StatusRequest& r) {
  for (const auto& k : kStatusKinds) {
    if (k.kind == r.kind)
      return k.takes_event_id ? fmt::format("{} {}", k.keyword, r.event_id) : std::string(k.keyword);
  }
  return "status";
}

std::string StatusRequestsKnown() {
  std::string out;
  for (const auto& k : kStatusKinds) {
    if (!out.empty()) out += ", ";
    out += k.keyword;
    if (k.takes_event_id) out += " <event id>";
  }
  return out;
}

Decoded<StatusRequest> DecodeStatusRequest(std::string_view bytes) {
  if (bytes.empty())
    return {DecodeErrc::kEmpty, fmt::format("empty request (known: {})", StatusRequestsKnown())};
  if (bytes.size() > kMaxRequestBytes) {
    return {DecodeErrc::kOversized,
            fmt::format("request of {} bytes, over the limit of {}", bytes.size(), kMaxRequestBytes)};
  }
  if (!IsValidUtf8(bytes)) return {DecodeErrc::kNotUtf8, "request is not valid UTF-8 text"};
  const auto space = bytes.find(' ');
  const std::string_view keyword = bytes.substr(0, space);
  for (const auto& k : kStatusKinds) {
    if (keyword != k.keyword) continue;
    StatusRequest r;
    r.kind = k.kind;
    if (!k.takes_event_id) {
      if (space != std::string_view::npos) {
        return {DecodeErrc::kOutOfRange, fmt::format("'{}' takes no argument", k.keyword)};
      }
      return r;
    }
    const std::string_view id =
        space == std::string_view::npos ? std::string_view() : bytes.substr(space + 1);
    if (id.empty()) return {DecodeErrc::kMissingField, fmt::format("'{}' needs an event id", k.keyword)};
    if (!IsEventId(id)) {
      return {DecodeErrc::kOutOfRange,
              fmt::format("'{}' is not an event id (1..{} of A-Z a-z 0-9 . _ : -)", Quote(id), kMaxEventId)};
    }
    r.event_id = std::string(id);
    return r;
  }
  return {DecodeErrc::kUnknownCommand,
          fmt::format("unknown request '{}' (known: {})", Quote(bytes), StatusRequestsKnown())};
}

std::string StatusErrorReply(std::string_view message) { return JsonText({{"error", message}}); }

std::string Encode(const ControlRequest& r) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [op, name] : kOps) {
    if (op == r.op) j["op"] = name;
  }
  if (r.op == ControlRequest::Op::kJobRun) j["schedule"] = r.schedule;
  if (r.op == ControlRequest::Op::kJobStatus) j["job"] = r.job;
  return JsonText(j);
}

Decoded<ControlRequest> DecodeControlRequest(std::string_view bytes) {
  auto j = ParseObject(bytes, "request", kMaxRequestBytes);
  if (!j) {
    auto e = j.error();
    e.message += " (a request is a JSON object with \"op\")";
    return e;
  }
  Fields f(*j, "request");
  std::string op;
  if (!f.String("op", op, 64, true)) return f.Error();
  ControlRequest r;
  const auto it =
      std::find_if(kOps.begin(), kOps.end(), [&](const auto& entry) { return entry.second == op; });
  if (it == kOps.end()) {
    return {DecodeErrc::kUnknownCommand, fmt::format("unknown op '{}' (job.run, job.status, job.list)", op)};
  }
  r.op = it->first;
  if (r.op == ControlRequest::Op::kJobRun) f.String("schedule", r.schedule, 255, true);
  if (r.op == ControlRequest::Op::kJobStatus) f.String("job", r.job, 255, true);
  if (f.Failed()) return f.Error();
  return r;
}

std::string ControlErrorReply(std::string_view message) {
  return JsonText({{"ok", false}, {"error", message}});
}

Decoded<ControlReply> DecodeControlReply(std::string_view bytes) {
  auto j = ParseObject(bytes, "the stack's control reply", kMaxReplyBytes);
  if (!j) return j.error();
  Fields f(*j, "the stack's control reply");
  ControlReply r;
  f.Bool("ok", r.ok, true);
  if (!r.ok) {
    r.error = "the request failed";
    f.String("error", r.error, kMaxReplyBytes, false);
  }
  if (f.Failed()) return f.Error();
  r.body = std::move(*j);
  return r;
}

Decoded<nlohmann::json> DecodeStatusReply(std::string_view bytes) {
  return ParseObject(bytes, "the stack's status reply", kMaxReplyBytes);
}

}  // namespace runnel
