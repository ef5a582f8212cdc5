// What a decoder of peer bytes returns: the decoded value, or why the bytes are not one (a reason
// from a small closed set, for counters, and a precise message, for logs and error replies).
// Decoders of messages that arrive over ZeroMQ (worker_messages.hpp, control_messages.hpp, the
// task and result headers in wire.hpp) never throw on bad input: a peer's bytes are data, and a
// loop that reads them must go on (docs/protocol.md §3.4).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace runnel {

enum class DecodeErrc {
  kEmpty,           // a frame that must carry bytes is empty
  kOversized,       // over the message's size limit
  kNotUtf8,         // text that is not valid UTF-8
  kNotJson,         // not JSON text
  kWrongType,       // JSON of the wrong type (a string where a number belongs, not an object...)
  kMissingField,    // a required field is absent
  kOutOfRange,      // a value outside its range, or a string that is too long
  kBadHeader,       // a binary task or result header that does not decode
  kBadFrames,       // the wrong number of frames for the command
  kUnknownCommand,  // a command or request this side does not know
  kNoSession,       // a worker message from a connection that never said HELLO
  kForeignToken,    // a result for a task another connection holds
};

// The stable name of a reason, e.g. "wrong-type": the `reason` label of
// runnel_protocol_errors_total (docs/metrics.md).
std::string_view DecodeErrcName(DecodeErrc reason);

struct DecodeError {
  DecodeErrc reason;
  std::string message;
};

// A value or a DecodeError. Check with ok() (or in a boolean context) before using the value.
template <typename T>
class Decoded {
 public:
  Decoded(T value) : v_(std::in_place_index<0>, std::move(value)) {}            // NOLINT: implicit on purpose
  Decoded(DecodeError error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
  Decoded(DecodeErrc reason, std::string message)
      : v_(std::in_place_index<1>, DecodeError{reason, std::move(message)}) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const DecodeError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, DecodeError> v_;
};

// True when `bytes` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
// U+10FFFF), which is what nlohmann::json's dump() accepts. NUL is allowed.
bool IsValidUtf8(std::string_view bytes);

}  // namespace runnel
