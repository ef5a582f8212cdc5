// Why an event failed. Shared by functions (which raise them), workers (which carry them) and
// dispatchers (which decide on retries): permanent kinds go to the dead-letter topic at once,
// retriable ones are retried with backoff up to the function's max attempts.
//
// Two enums, one table. `Errc` is what a function may raise (FunctionError, the worker protocol's
// error code, the plugin ABI's RunnelStatus: the numbers 1..7 are on the wire). `ErrorKind` is every
// kind that travels (an outcome's error_kind, a dead letter's runnel-error-kind, a trace's attempt):
// Errc's seven with the same numbers, then the kinds only Runnel itself reports (a malformed
// envelope, a lost worker, ...). They are apart so that a function cannot raise "worker-lost" and a
// worker's code 8 stays "internal" as before.
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <system_error>

namespace runnel {

enum class Errc {
  kBadInput = 1,     // corrupt, truncated, wrong format, malformed JSON: permanent
  kLimitExceeded,    // over a configured cap (pixels, bytes, lines): permanent
  kBadConfig,        // params the function cannot work with: permanent
  kUnknownFunction,  // no function of that name: permanent
  kTimeout,          // ran past its deadline: retriable
  kTransient,        // a dependency failed and may recover: retriable
  kInternal,         // a bug or an unexpected exception: retriable
};

enum class ErrorKind {
  kBadInput = 1,
  kLimitExceeded,
  kBadConfig,
  kUnknownFunction,
  kTimeout,
  kTransient,
  kInternal,
  // Reported by Runnel, never raised by a function:
  kMalformedEnvelope,  // the record's runnel-* headers cannot be read: permanent
  kRecursion,          // hop count over the limit (a function triggers itself): permanent
  kWorkerLost,         // the worker died with the event on every attempt: retriable
  kWriteFailed,        // a record the outcome needed could not be written: retriable
  kExpired,            // the record was older than max_record_age: retriable (a replay runs it)
  kUndelivered,        // an attempt sent to a worker that had drained: run again as the same attempt
};

// The one table of error kinds: wire name, whether another try may succeed, and whether the kind
// can end an event (an outcome's or dead letter's kind) rather than only one attempt.
struct ErrorKindInfo {
  ErrorKind kind;
  std::string_view name;  // stable: docs/protocol.md §2
  bool retriable;
  bool final = true;
};
inline constexpr std::array<ErrorKindInfo, 13> kErrorKinds = {{
    {ErrorKind::kBadInput, "bad-input", false},
    {ErrorKind::kLimitExceeded, "limit-exceeded", false},
    {ErrorKind::kBadConfig, "bad-config", false},
    {ErrorKind::kUnknownFunction, "unknown-function", false},
    {ErrorKind::kTimeout, "timeout", true},
    {ErrorKind::kTransient, "transient", true},
    {ErrorKind::kInternal, "internal", true},
    {ErrorKind::kMalformedEnvelope, "malformed-envelope", false},
    {ErrorKind::kRecursion, "recursion", false},
    {ErrorKind::kWorkerLost, "worker-lost", true},
    {ErrorKind::kWriteFailed, "write-failed", true},
    {ErrorKind::kExpired, "expired", true},
    {ErrorKind::kUndelivered, "undelivered", true, false},
}};
inline constexpr int kErrcMax = static_cast<int>(Errc::kInternal);

constexpr ErrorKind KindOf(Errc e) { return static_cast<ErrorKind>(static_cast<int>(e)); }
constexpr const ErrorKindInfo& InfoOf(ErrorKind k) { return kErrorKinds[static_cast<std::size_t>(k) - 1]; }
// The stable wire name of an error kind, e.g. "bad-input" (docs/protocol.md).
constexpr std::string_view KindName(ErrorKind k) { return InfoOf(k).name; }
constexpr std::string_view ErrcName(Errc e) { return KindName(KindOf(e)); }
constexpr bool IsRetriable(ErrorKind k) { return InfoOf(k).retriable; }
constexpr bool IsRetriable(Errc e) { return IsRetriable(KindOf(e)); }

// A name from the table, or nothing. ParseErrc only takes the seven a function may raise.
std::optional<ErrorKind> ParseErrorKind(std::string_view name);
std::optional<Errc> ParseErrc(std::string_view name);
// The error code of the wire (a result header, a plugin's status): 1..7, anything else is internal.
constexpr Errc ErrcFromCode(int code) {
  return code >= 1 && code <= kErrcMax ? static_cast<Errc>(code) : Errc::kInternal;
}

const std::error_category& ErrorCategory();
inline std::error_code make_error_code(Errc e) { return {static_cast<int>(e), ErrorCategory()}; }

}  // namespace runnel

template <>
struct std::is_error_code_enum<runnel::Errc> : std::true_type {};
