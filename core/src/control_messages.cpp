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

constexpr std::size_t kMaxReplyBytes = std::size_t{256} * 1024 * 1024;
constexpr std::size_t kMaxNameBytes = 255;
constexpr std::size_t kQuoted = 64;  // bytes of an unknown op quoted back

// Each op, its name on the wire and the one field it takes (nullptr: none).
struct OpEntry {
  ControlRequest::Op op;
  std::string_view name;
  const char* field;
};
constexpr std::array<OpEntry, 6> kOps = {{
    {ControlRequest::Op::kStatus, "status", nullptr},
    {ControlRequest::Op::kTrace, "trace", "event"},
    {ControlRequest::Op::kOutcome, "outcome", "event"},
    {ControlRequest::Op::kJobRun, "job.run", "schedule"},
    {ControlRequest::Op::kJobStatus, "job.status", "job"},
    {ControlRequest::Op::kJobList, "job.list", nullptr},
}};

const OpEntry& EntryOf(ControlRequest::Op op) {
  return *std::find_if(kOps.begin(), kOps.end(), [op](const OpEntry& e) { return e.op == op; });
}

// The field the op takes (const or not, as `r` is), or nullptr.
template <typename Request>
auto FieldOf(Request& r) -> decltype(&r.event) {
  switch (r.op) {
    case ControlRequest::Op::kTrace:
    case ControlRequest::Op::kOutcome:
      return &r.event;
    case ControlRequest::Op::kJobRun:
      return &r.schedule;
    case ControlRequest::Op::kJobStatus:
      return &r.job;
    case ControlRequest::Op::kStatus:
    case ControlRequest::Op::kJobList:
      break;
  }
  return nullptr;
}

// The first bytes of a name, for an error message (the caller checked it is UTF-8; a cut inside a
// character is replaced when the reply is written).
std::string Quote(std::string_view s) {
  return s.size() <= kQuoted ? std::string(s) : fmt::format("{}...", s.substr(0, kQuoted));
}

}  // namespace

bool IsEventId(std::string_view s) {
  return !s.empty() && s.size() <= kMaxEventIdBytes && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

std::string_view OpName(ControlRequest::Op op) { return EntryOf(op).name; }

std::string ControlOpsKnown() {
  std::string out;
  for (const auto& e : kOps) out += fmt::format("{}{}", out.empty() ? "" : ", ", e.name);
  return out;
}

std::string Encode(const ControlRequest& r) {
  const OpEntry& e = EntryOf(r.op);
  nlohmann::json j = {{"op", e.name}};
  if (e.field != nullptr) j[e.field] = *FieldOf(r);
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
  const auto it = std::find_if(kOps.begin(), kOps.end(), [&](const OpEntry& e) { return e.name == op; });
  if (it == kOps.end()) {
    return {DecodeErrc::kUnknownCommand, fmt::format("unknown op '{}' ({})", Quote(op), ControlOpsKnown())};
  }
  ControlRequest r;
  r.op = it->op;
  if (it->field != nullptr) {
    const bool is_event = r.op == ControlRequest::Op::kTrace || r.op == ControlRequest::Op::kOutcome;
    if (!f.String(it->field, *FieldOf(r), is_event ? kMaxEventIdBytes : kMaxNameBytes, true))
      return f.Error();
    if (is_event && !IsEventId(r.event)) {
      return {DecodeErrc::kOutOfRange, fmt::format("'{}' is not an event id (1..{} of A-Z a-z 0-9 . _ : -)",
                                                   Quote(r.event), kMaxEventIdBytes)};
    }
  }
  if (f.Failed()) return f.Error();
  return r;
}

std::string ControlOkReply(nlohmann::json body) {
  if (!body.is_object()) body = nlohmann::json::object();
  body["ok"] = true;
  return JsonText(body);
}

std::string ControlErrorReply(std::string_view message) {
  return JsonText({{"ok", false}, {"error", message}});
}

Decoded<ControlReply> DecodeControlReply(std::string_view bytes) {
  auto j = ParseObject(bytes, "the stack's reply", kMaxReplyBytes);
  if (!j) return j.error();
  Fields f(*j, "the stack's reply");
  ControlReply r;
  f.Bool("ok", r.ok, true);
  if (!r.ok) {
    r.error = "the request failed";
    f.String("error", r.error, kMaxReplyBytes, false);
  }
  if (f.Failed()) return f.Error();
  j->erase("ok");
  if (!r.ok) j->erase("error");
  r.body = std::move(*j);
  return r;
}

}  // namespace runnel
