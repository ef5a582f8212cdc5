// The dispatcher <-> worker control messages of docs/protocol.md §3.1 as structs, one codec each:
// Encode builds the body frame (JSON), Decode<Message> reads one without throwing and says
// precisely what is wrong with it (decode.hpp). The task and result headers of TASKS and RESULTS
// are binary and live in wire.hpp (wire::TryDecodeTask, wire::TryDecodeResult).
//
// Each decoder takes the bytes of the frame after the command (empty when there is none), so a
// fuzz target can call it directly. Decoders check types, ranges and sizes; what a message means
// for the receiver (a version or function that does not match, capacity 0 without draining) is
// the receiver's decision.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "runnel/core/decode.hpp"
#include "runnel/core/output_target.hpp"
#include "runnel/core/wire.hpp"

namespace runnel::wire {

// Body limits: a control body from a worker, and WELCOME (which carries the function's params).
inline constexpr std::size_t kMaxControlBody = std::size_t{64} * 1024;
inline constexpr std::size_t kMaxWelcomeBody = std::size_t{1024} * 1024;
// Names (function, worker id) and the capacity a worker may announce.
inline constexpr std::size_t kMaxName = 255;
inline constexpr std::int64_t kMaxCapacity = 1'000'000;

enum class Command {
  kHello,
  kResults,
  kHeartbeat,
  kDraining,
  kBye,
  kCapacity,
  kWelcome,
  kReject,
  kTasks,
  kExit
};
// The command a first frame names, or nullopt for anything else.
std::optional<Command> ParseCommand(std::string_view frame);
std::string_view CommandName(Command command);

// worker -> dispatcher, the first message.
struct Hello {
  std::int64_t version = kVersion;
  std::string function;
  std::string worker;  // the worker's id: printable UTF-8, 1..kMaxName bytes
  std::int64_t pid = 0;
  std::int64_t capacity = 0;  // 0..kMaxCapacity
  bool draining = false;
  bool operator==(const Hello&) const = default;
};
std::string Encode(const Hello& hello);
Decoded<Hello> DecodeHello(std::string_view body);

// dispatcher -> worker: the answer to HELLO, the function's config.
struct WelcomeBatch {
  std::int64_t size = 1;       // 1..10000
  std::int64_t window_ms = 0;  // 0..60000
  bool operator==(const WelcomeBatch&) const = default;
};
struct Welcome {
  std::int64_t version = kVersion;
  std::string function;
  std::int64_t heartbeat_ms = 1000;  // 1..86400000 (a day)
  std::int64_t timeout_ms = 0;       // 0: none
  nlohmann::json params = nlohmann::json::object();
  std::int64_t max_payload = 0;  // 0: no limit
  std::int64_t memory_mb = 0;    // 0: no limit
  std::string output_dir;
  std::int64_t concurrency = 0;        // 0: the worker's default
  std::optional<std::string> handler;  // absent: builtin:<function>
  std::string handler_dir;
  std::optional<WelcomeBatch> batch;  // absent: the function's own
  // {"url", "headers", "timeout_ms"}: PUT output files there (docs/protocol.md §3.1); absent: they
  // stay in output_dir. Decoded to the rules of runnel.yaml's `outputs` (output_target.hpp).
  std::optional<OutputTarget> outputs;
  bool operator==(const Welcome&) const = default;
};
std::string Encode(const Welcome& welcome);
Decoded<Welcome> DecodeWelcome(std::string_view body);

// worker -> dispatcher, every heartbeat interval (the dispatcher's HEARTBEAT has no body).
struct Heartbeat {
  std::int64_t in_flight = 0;
  std::int64_t running = 0;
  std::int64_t rss_kb = 0;
  bool operator==(const Heartbeat&) const = default;
};
std::string Encode(const Heartbeat& heartbeat);
// An empty body is a heartbeat without figures.
Decoded<Heartbeat> DecodeHeartbeat(std::string_view body);

// worker -> dispatcher: the worker now holds up to `capacity` events.
struct Capacity {
  std::int64_t capacity = 1;  // 1..kMaxCapacity
  bool operator==(const Capacity&) const = default;
};
std::string Encode(const Capacity& capacity);
Decoded<Capacity> DecodeCapacity(std::string_view body);

// BYE (worker -> dispatcher), REJECT and EXIT (dispatcher -> worker): a reason, for people (and
// BYE's "drained", which the dispatcher acts on). An empty body or an absent reason: "".
struct Reason {
  std::string reason;
  bool operator==(const Reason&) const = default;
};
std::string Encode(const Reason& reason);
Decoded<Reason> DecodeBye(std::string_view body);
Decoded<Reason> DecodeReject(std::string_view body);
Decoded<Reason> DecodeExit(std::string_view body);

// DRAINING carries no body; one that does is malformed.
Decoded<bool> DecodeDraining(std::string_view body);

// The task and result headers as values (wire.hpp's DecodeTask and DecodeResult throw WireError).
Decoded<TaskHeader> TryDecodeTask(std::string_view frame);
Decoded<ResultHeader> TryDecodeResult(std::string_view frame);

}  // namespace runnel::wire
