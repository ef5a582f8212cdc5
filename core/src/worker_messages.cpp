#include "runnel/core/worker_messages.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>

#include "json_fields.hpp"
#include "runnel/core/json.hpp"

namespace runnel::wire {
namespace {

using detail::Fields;
using detail::ParseObject;

constexpr std::int64_t kMaxPid = 0x7fffffff;
constexpr std::int64_t kMaxCount = std::int64_t{1} << 53;  // counters and sizes a peer reports

constexpr std::array<std::pair<Command, std::string_view>, 10> kCommands = {{
    {Command::kHello, cmd::kHello},
    {Command::kResults, cmd::kResults},
    {Command::kHeartbeat, cmd::kHeartbeat},
    {Command::kDraining, cmd::kDraining},
    {Command::kBye, cmd::kBye},
    {Command::kCapacity, cmd::kCapacity},
    {Command::kWelcome, cmd::kWelcome},
    {Command::kReject, cmd::kReject},
    {Command::kTasks, cmd::kTasks},
    {Command::kExit, cmd::kExit},
}};

// A name a peer gives (function, worker id): not empty, no control characters.
bool CheckName(Fields& f, const char* key, const std::string& value) {
  if (value.empty()) return f.Fail(DecodeErrc::kOutOfRange, fmt::format("'{}' is empty", key));
  const bool control = std::any_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
  if (control) return f.Fail(DecodeErrc::kOutOfRange, fmt::format("'{}' holds control characters", key));
  return true;
}

Decoded<Reason> DecodeReason(std::string_view body, std::string_view what) {
  if (body.empty()) return Reason{};
  auto j = ParseObject(body, what, kMaxControlBody);
  if (!j) return j.error();
  Fields f(*j, what);
  Reason r;
  f.String("reason", r.reason, kMaxControlBody, false);
  if (f.Failed()) return f.Error();
  return r;
}

}  // namespace

std::optional<Command> ParseCommand(std::string_view frame) {
  for (const auto& [command, name] : kCommands) {
    if (frame == name) return command;
  }
  return std::nullopt;
}

std::string_view CommandName(Command command) {
  for (const auto& [c, name] : kCommands) {
    if (c == command) return name;
  }
  return "?";
}

std::string Encode(const Hello& h) {
  nlohmann::json j = {{"v", h.version},
                      {"function", h.function},
                      {"worker", h.worker},
                      {"pid", h.pid},
                      {"capacity", h.capacity}};
  if (h.draining) j["draining"] = true;
  return JsonText(j);
}

Decoded<Hello> DecodeHello(std::string_view body) {
  auto j = ParseObject(body, "HELLO", kMaxControlBody);
  if (!j) return j.error();
  Fields f(*j, "HELLO");
  Hello h;
  f.Int("v", h.version, 0, kMaxPid, true);
  if (f.String("function", h.function, kMaxName, true)) CheckName(f, "function", h.function);
  if (f.String("worker", h.worker, kMaxName, true)) CheckName(f, "worker", h.worker);
  f.Int("pid", h.pid, 0, kMaxPid, true);
  f.Int("capacity", h.capacity, 0, kMaxCapacity, true);
  f.Bool("draining", h.draining, false);
  if (f.Failed()) return f.Error();
  return h;
}

namespace {

// WELCOME's outputs: {"url": U, "headers": {name: value}, "timeout_ms": N}, held to the rules of
// runnel.yaml's `outputs` so that a worker never PUTs where the config could not have sent it.
Decoded<OutputTarget> DecodeOutputs(const nlohmann::json& j) {
  if (!j.is_object()) {
    return {DecodeErrc::kWrongType,
            fmt::format("WELCOME: 'outputs' must be {{\"url\", \"headers\", \"timeout_ms\"}}, not a {}",
                        j.type_name())};
  }
  Fields f(j, "WELCOME's outputs");
  OutputTarget target;
  std::int64_t timeout_ms = 0;
  f.String("url", target.url, OutputTarget::kMaxUrl, true);
  f.Int("timeout_ms", timeout_ms, OutputTarget::kMinTimeout.count(), OutputTarget::kMaxTimeout.count(), true);
  if (f.Failed()) return f.Error();
  if (const auto why = OutputUrlProblem(target.url); !why.empty())
    return {DecodeErrc::kOutOfRange, fmt::format("WELCOME's outputs: 'url': {}", why)};
  target.url = NormalizeOutputUrl(target.url);
  target.timeout = std::chrono::milliseconds(timeout_ms);
  if (const auto* headers = f.Find("headers"); headers != nullptr) {
    if (!headers->is_object()) {
      return {DecodeErrc::kWrongType,
              fmt::format("WELCOME's outputs: 'headers' must be an object, not a {}", headers->type_name())};
    }
    if (headers->size() > OutputTarget::kMaxHeaders) {
      return {DecodeErrc::kOutOfRange, fmt::format("WELCOME's outputs: {} headers, more than {}",
                                                   headers->size(), OutputTarget::kMaxHeaders)};
    }
    for (const auto& [name, value] : headers->items()) {
      if (!value.is_string()) {
        return {DecodeErrc::kWrongType,
                fmt::format("WELCOME's outputs: header values must be strings, not a {}", value.type_name())};
      }
      const auto& text = value.get_ref<const std::string&>();
      if (const auto why = OutputHeaderProblem(name, text); !why.empty())
        return {DecodeErrc::kOutOfRange, fmt::format("WELCOME's outputs: {}", why)};
      for (const auto& [seen, unused] : target.headers) {
        if (SameHeaderName(seen, name))
          return {DecodeErrc::kOutOfRange, fmt::format("WELCOME's outputs: header {} appears twice", seen)};
      }
      target.headers.emplace_back(name, Secret(text));
    }
  }
  return target;
}

}  // namespace

std::string Encode(const Welcome& w) {
  nlohmann::json j = {{"v", w.version},
                      {"function", w.function},
                      {"heartbeat_ms", w.heartbeat_ms},
                      {"timeout_ms", w.timeout_ms},
                      {"params", w.params},
                      {"max_payload", w.max_payload},
                      {"memory_mb", w.memory_mb},
                      {"output_dir", w.output_dir},
                      {"concurrency", w.concurrency},
                      {"handler_dir", w.handler_dir}};
  if (w.handler) j["handler"] = *w.handler;
  if (w.batch) j["batch"] = {{"size", w.batch->size}, {"window_ms", w.batch->window_ms}};
  if (w.outputs) {
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& [name, value] : w.outputs->headers) headers[name] = value.Reveal();
    j["outputs"] = {
        {"url", w.outputs->url}, {"headers", std::move(headers)}, {"timeout_ms", w.outputs->timeout.count()}};
  }
  return JsonText(j);
}

Decoded<Welcome> DecodeWelcome(std::string_view body) {
  auto j = ParseObject(body, "WELCOME", kMaxWelcomeBody);
  if (!j) return j.error();
  Fields f(*j, "WELCOME");
  Welcome w;
  f.Int("v", w.version, 0, kMaxPid, true);
  f.String("function", w.function, kMaxName, true);
  f.Int("heartbeat_ms", w.heartbeat_ms, 1, 86'400'000, false);  // a day: time arithmetic stays in range
  f.Int("timeout_ms", w.timeout_ms, 0, 0xffffffffLL, false);    // as the task header's u32
  f.Object("params", w.params, false);
  f.Int("max_payload", w.max_payload, 0, kMaxCount, false);
  f.Int("memory_mb", w.memory_mb, 0, kMaxCount, false);
  f.String("output_dir", w.output_dir, 4096, false);
  f.Int("concurrency", w.concurrency, 0, kMaxCapacity, false);
  if (f.Find("handler") != nullptr) {
    std::string handler;
    if (f.String("handler", handler, std::size_t{64} * 1024, true)) w.handler = std::move(handler);
  }
  f.String("handler_dir", w.handler_dir, 4096, false);
  if (const auto* batch = f.Find("batch"); batch != nullptr) {
    if (!batch->is_object()) {
      f.Fail(DecodeErrc::kWrongType,
             fmt::format("'batch' must be {{\"size\": 1..10000, \"window_ms\": 0..60000}}, "
                         "not a {}",
                         batch->type_name()));
    } else {
      Fields b(*batch, "WELCOME's batch");
      WelcomeBatch wb;
      b.Int("size", wb.size, 1, 10'000, true);
      b.Int("window_ms", wb.window_ms, 0, 60'000, true);
      if (b.Failed()) return b.Error();
      w.batch = wb;
    }
  }
  if (const auto* outputs = f.Find("outputs"); outputs != nullptr) {
    auto decoded = DecodeOutputs(*outputs);
    if (!decoded) return decoded.error();
    w.outputs = std::move(*decoded);
  }
  if (f.Failed()) return f.Error();
  return w;
}

std::string Encode(const Heartbeat& h) {
  return JsonText({{"in_flight", h.in_flight}, {"running", h.running}, {"rss_kb", h.rss_kb}});
}

Decoded<Heartbeat> DecodeHeartbeat(std::string_view body) {
  if (body.empty()) return Heartbeat{};
  auto j = ParseObject(body, "HEARTBEAT", kMaxControlBody);
  if (!j) return j.error();
  Fields f(*j, "HEARTBEAT");
  Heartbeat h;
  f.Int("in_flight", h.in_flight, 0, kMaxCount, false);
  f.Int("running", h.running, 0, kMaxCount, false);
  f.Int("rss_kb", h.rss_kb, 0, kMaxCount, false);
  if (f.Failed()) return f.Error();
  return h;
}

std::string Encode(const Capacity& c) { return JsonText({{"capacity", c.capacity}}); }

Decoded<Capacity> DecodeCapacity(std::string_view body) {
  auto j = ParseObject(body, "CAPACITY", kMaxControlBody);
  if (!j) return j.error();
  Fields f(*j, "CAPACITY");
  Capacity c;
  f.Int("capacity", c.capacity, 1, kMaxCapacity, true);
  if (f.Failed()) return f.Error();
  return c;
}

std::string Encode(const Reason& r) { return JsonText({{"reason", r.reason}}); }
Decoded<Reason> DecodeBye(std::string_view body) { return DecodeReason(body, "BYE"); }
Decoded<Reason> DecodeReject(std::string_view body) { return DecodeReason(body, "REJECT"); }
Decoded<Reason> DecodeExit(std::string_view body) { return DecodeReason(body, "EXIT"); }

Decoded<bool> DecodeDraining(std::string_view body) {
  if (!body.empty())
    return {DecodeErrc::kBadFrames, fmt::format("DRAINING: {} unexpected body bytes", body.size())};
  return true;
}

Decoded<TaskHeader> TryDecodeTask(std::string_view frame) {
  try {
    return DecodeTask(frame);
  } catch (const WireError& e) {
    return {DecodeErrc::kBadHeader, e.what()};
  }
}

Decoded<ResultHeader> TryDecodeResult(std::string_view frame) {
  try {
    return DecodeResult(frame);
  } catch (const WireError& e) {
    return {DecodeErrc::kBadHeader, e.what()};
  }
}

}  // namespace runnel::wire
