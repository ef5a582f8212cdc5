// Why an event failed. Shared by functions (which raise them), workers (which carry them) and
// dispatchers (which decide on retries): permanent kinds go to the dead-letter topic at once,
// retriable ones are retried with backoff up to the function's max attempts.
#pragma once

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
inline constexpr int kErrcMax = 7;

const std::error_category& ErrorCategory();
inline std::error_code make_error_code(Errc e) { return {static_cast<int>(e), ErrorCategory()}; }
// The stable wire name of an error kind, e.g. "bad-input" (docs/protocol.md).
std::string_view ErrcName(Errc e);
bool IsRetriable(Errc e);

}  // namespace runnel

template <>
struct std::is_error_code_enum<runnel::Errc> : std::true_type {};
