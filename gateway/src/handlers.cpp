#include "handlers.hpp"

#include <civetweb.h>
#include <fmt/format.h>

#include "runnel/core/duration.hpp"
#include "runnel/core/log.hpp"
#include "runnel/core/trace_context.hpp"
#include "runnel/scheduler/jobs.hpp"

namespace runnel::gateway {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxKey = 1024;
constexpr std::size_t kMaxContentType = 255;
// The reply-to of async calls and uploads: the stack keeps their outcomes with the output
// (TraceStore's kept outcomes), for GET /outcomes/ID.
constexpr std::string_view kAsyncReplyTo = "gateway.async";
constexpr std::string_view kUploadReplyTo = "gateway.upload";

std::int64_t EpochMsIn(std::chrono::milliseconds from_now) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             (std::chrono::system_clock::now() + from_now).time_since_epoch())
      .count();
}

// The deadline a call asks with X-Runnel-Timeout ("5s", "500ms"), else gateway.timeout; a bad or
// too long one is a 400 reply.
std::variant<std::chrono::milliseconds, Reply> Deadline(mg_connection* conn, const GatewayConfig& config,
                                                        bool has_default) {
  const auto header = Header(conn, "X-Runnel-Timeout");
  if (!header) return has_default ? config.timeout : std::chrono::milliseconds(0);
  const auto parsed = ParseDuration(*header);
  if (!parsed) return JsonError(400, "bad-timeout", "X-Runnel-Timeout: " + parsed.error);
  if (parsed.value.count() < 1) return JsonError(400, "bad-timeout", "X-Runnel-Timeout must be at least 1ms");
  if (parsed.value > config.max_timeout) {
    return JsonError(400, "bad-timeout",
                     fmt::format("X-Runnel-Timeout {} ms is above the gateway's max_timeout ({} ms)",
                                 parsed.value.count(), config.max_timeout.count()));
  }
  return parsed.value;
}

// The Kafka key from X-Runnel-Key, else ?key=; a 400 reply when it is too long or not text.
std::variant<std::optional<std::string>, Reply> Key(mg_connection* conn) {
  auto key = Header(conn, "X-Runnel-Key");
  if (!key) {
    bool too_long = false;
    key = QueryValue(conn, "key", kMaxKey, too_long);
    if (too_long) return JsonError(400, "bad-key", fmt::format("?key= is longer than {} bytes", kMaxKey));
  }
  if (key) {
    if (const auto why = HeaderValueProblem(*key, kMaxKey); !why.empty())
      return JsonError(400, "bad-key", "the Kafka key " + why);
  }
  return key;
}

// The Content-Type to travel with the payload; empty for none.
std::variant<std::string, Reply> ContentType(mg_connection* conn) {
  auto type = Header(conn, "Content-Type").value_or("");
  if (const auto why = HeaderValueProblem(type, kMaxContentType); !why.empty())
    return JsonError(400, "bad-content-type", "Content-Type " + why);
  return type;
}

Reply TooLarge(const std::string& function, std::size_t limit, const std::string& what) {
  Reply r =
      JsonError(413, "too-large", fmt::format("the {} is over {}'s limit of {} bytes", what, function, limit),
                {{"limit", limit}});
  return r;
}

Reply AcceptedReply(const std::string& id, nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json body = {{"id", id}, {"location", "/outcomes/" + id}};
  body.update(extra);
  Reply r = JsonReply(202, body);
  r.headers.emplace_back("Location", "/outcomes/" + id);
  return r;
}

Reply PublishFailed(const Publisher::Failure& f, const std::string& function, std::size_t limit) {
  if (f.too_large) return TooLarge(function, limit, "event (payload and headers) for Kafka");
  Reply r = JsonError(503, "kafka-unavailable", "Kafka did not take the event: " + f.message);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

// The HTTP answer of a call from its outcome.
Reply FromOutcome(const Outcome& o) {
  Reply r;
  if (o.status == OutcomeStatus::kOk) {
    if (o.output.empty() && !o.files_json.empty()) {
      r = JsonReply(200, {{"id", o.id}, {"files", nlohmann::json::parse(o.files_json, nullptr, false)}});
    } else {
      r.status = 200;
      r.content_type = o.content_type.empty() ? "application/octet-stream" : o.content_type;
      r.body = o.output;
    }
  } else {
    const nlohmann::json extra = {
        {"id", o.id}, {"status", StatusName(o.status)}, {"attempts", o.attempts}, {"reason", o.error}};
    if (o.error_kind == "bad-input") {
      r = JsonError(422, "bad-input", o.function + " refused the input: " + o.error, extra);
    } else if (o.error_kind == "expired" || o.error_kind == "timeout") {
      r = JsonError(504, o.error_kind, o.function + " gave no answer by the deadline: " + o.error, extra);
    } else {
      r = JsonError(500, o.error_kind.empty() ? "error" : o.error_kind, o.function + " failed: " + o.error,
                    extra);
    }
  }
  r.headers.emplace_back("X-Runnel-Event-Id", o.id);
  return r;
}

// W3C trace context: a valid `traceparent` of the request continues its trace (the dispatcher
// makes each attempt a child span) and `tracestate` travels with it; without one, or with an
// invalid one (the spec says to restart the trace then), the event starts a trace of its own.
void TraceFromRequest(const mg_connection* conn, Envelope& env) {
  env.trace_id = NewTraceId();
  const auto header = Header(conn, "traceparent");
  if (!header) return;
  std::string why;
  const auto tp = ParseTraceparent(*header, &why);
  if (!tp) {
    log::kGateway->debug("event {}: traceparent dropped ({}); a new trace starts", env.id, why);
    return;
  }
  env.trace_id = tp->trace_id;
  env.span_id = tp->parent_id;
  env.trace_flags = tp->flags;
  if (const auto state = Header(conn, "tracestate"); state && HeaderValueProblem(*state, 512).empty())
    env.extra.push_back({"tracestate", *state});
}

}  // namespace

Reply Handlers::Call(mg_connection* conn, const FunctionSpec& function, bool wait) const {
  // Refused from Content-Length alone: a body over the limit is not read.
  const long long declared = ContentLength(conn);
  if (declared > 0 && static_cast<unsigned long long>(declared) > function.max_payload)
    return TooLarge(function.name, function.max_payload, "payload");
  const auto deadline = Deadline(conn, *d_.config, wait);
  if (const auto* r = std::get_if<Reply>(&deadline)) return *r;
  const auto timeout = std::get<std::chrono::milliseconds>(deadline);
  auto key = Key(conn);
  if (const auto* r = std::get_if<Reply>(&key)) return *r;
  auto type = ContentType(conn);
  if (const auto* r = std::get_if<Reply>(&type)) return *r;
  auto body = ReadBody(conn, function.max_payload);
  if (std::holds_alternative<BodyTooLarge>(body))
    return TooLarge(function.name, function.max_payload, "payload");
  if (const auto* b = std::get_if<BodyBroken>(&body)) return JsonError(400, "bad-body", b->why);

  const auto start = Clock::now();
  Envelope env;
  env.id = NewEventId();
  TraceFromRequest(conn, env);
  env.reply_to = std::string(wait ? kSyncReplyTo : kAsyncReplyTo);
  env.content_type = std::move(std::get<std::string>(type));
  if (timeout.count() > 0) env.deadline_ms = EpochMsIn(timeout);
  const auto publish_timeout = timeout.count() > 0 ? timeout : d_.config->timeout;
  // Registered before the event exists, so its outcome cannot come before anyone waits for it.
  std::unique_ptr<PendingCalls::Expectation> expectation;
  if (wait) expectation = d_.calls->Expect(env.id);
  if (auto failed = d_.publisher->Publish(function.topic, std::get<std::optional<std::string>>(key),
                                          std::move(std::get<std::string>(body)), env, publish_timeout)) {
    return PublishFailed(*failed, function.name, function.max_payload);
  }
  if (!wait) return AcceptedReply(env.id);
  if (auto outcome = expectation->Wait(start + timeout)) return FromOutcome(*outcome);
  Reply r = JsonError(504, "no-outcome",
                      fmt::format("no outcome of {} within {} ms; GET the location for it later",
                                  function.name, timeout.count()),
                      {{"id", env.id}, {"location", "/outcomes/" + env.id}});
  r.headers.emplace_back("X-Runnel-Event-Id", env.id);
  return r;
}

Reply Handlers::Upload(mg_connection* conn, const FunctionSpec& function,
                       const std::string& file_name) const {
  if (const auto why = FileNameProblem(file_name); !why.empty()) return JsonError(400, "bad-file-name", why);
  const long long declared = ContentLength(conn);
  if (declared > 0 && static_cast<unsigned long long>(declared) > d_.config->max_body)
    return TooLarge(function.name, d_.config->max_body, "upload (gateway.max_body)");
  auto type = ContentType(conn);
  if (const auto* r = std::get_if<Reply>(&type)) return *r;
  const std::string id = NewEventId();
  auto stored = d_.uploads->Receive(conn, id, file_name, d_.config->max_body);
  if (std::holds_alternative<UploadStore::TooLarge>(stored))
    return TooLarge(function.name, d_.config->max_body, "upload (gateway.max_body)");
  if (const auto* b = std::get_if<UploadStore::Broken>(&stored)) {
    if (b->server_side) log::kGateway->error("upload {} to {}: {}", id, function.name, b->why);
    return b->server_side ? JsonError(500, "upload-store", b->why) : JsonError(400, "bad-body", b->why);
  }
  const auto& file = std::get<UploadStore::Stored>(stored);
  Envelope env;
  env.id = id;
  TraceFromRequest(conn, env);
  env.reply_to = std::string(kUploadReplyTo);
  std::string& content_type = std::get<std::string>(type);
  env.content_type = content_type.empty() || content_type == "application/octet-stream"
                         ? scheduler::ContentTypeForPath(file.path)
                         : content_type;
  env.file = FileRef{file.path.string(), file.size, file_name};
  if (auto failed = d_.publisher->Publish(function.topic, std::nullopt, "", env, d_.config->timeout)) {
    std::error_code ignored;
    std::filesystem::remove_all(file.path.parent_path(), ignored);
    return PublishFailed(*failed, function.name, d_.config->max_body);
  }
  log::kGateway->info("upload {} to {}: {} bytes in {}", id, function.name, file.size, file.path.string());
  return AcceptedReply(id, {{"path", file.path.string()}, {"bytes", file.size}});
}

Reply Handlers::OutcomeOf(const std::string& id, const Tokens::Grant& grant) const {
  if (const auto why = EventIdProblem(id); !why.empty()) return JsonError(400, "bad-id", why);
  const auto reply = nlohmann::json::parse(d_.outcome_of(id), nullptr, false);
  if (!reply.is_object() || !reply.value("ok", false)) {
    return JsonError(404, "no-outcome", fmt::format("no outcome of event {} yet", id), {{"id", id}});
  }
  nlohmann::json finished = nlohmann::json::array();
  std::string status = "unknown";
  for (const auto& o : reply.value("outcomes", nlohmann::json::array())) {
    if (!o.is_object() || !grant.Allows(o.value("function", ""))) continue;
    status = o.value("status", "");
    if (status == "in progress" || status == "handed off") continue;
    finished.push_back(o);
  }
  if (finished.empty()) {
    return JsonError(404, "no-outcome", fmt::format("no outcome of event {} yet", id),
                     {{"id", id}, {"status", status}});
  }
  return JsonReply(200, {{"id", id}, {"outcomes", std::move(finished)}});
}

}  // namespace runnel::gateway
