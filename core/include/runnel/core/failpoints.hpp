// Failpoints: faults injected into a running process for tests, so that supervision and error
// paths are exercised through the real binaries. Compiled in everywhere and inert unless the
// environment variable RUNNEL_FAILPOINTS names some, read once, at the first use:
//
//   RUNNEL_FAILPOINTS=dispatcher.loop=throw,autoscaler.loop=throw:50
//
// Each entry is NAME=ACTION; ACTION is `throw` (every hit throws a runnel::Error saying
// "failpoint NAME"), `throw:N` (the Nth hit and every later one throw, N >= 1) or `on` (a switch:
// Armed(NAME) is true, Hit(NAME) never throws; for faults that are a behaviour, not an exception,
// such as `results.feed.drop`). The names a process knows are listed in core/README.md. A
// malformed value arms nothing; Validate() reports it (long-running commands call it at start, so
// a typo is an error, not a silent no-op).
// Thread-safety: Hit, Armed and Validate may be called from any thread.
#pragma once

#include <string_view>

namespace runnel::failpoint {

// Throws runnel::Error when the failpoint `name` is armed and due; does nothing otherwise (one
// branch when RUNNEL_FAILPOINTS is unset).
void Hit(std::string_view name);
// True when RUNNEL_FAILPOINTS holds `name=on` (and is well formed); never throws.
bool Armed(std::string_view name);
// Throws ConfigError naming the entry when RUNNEL_FAILPOINTS is set but malformed.
void Validate();

}  // namespace runnel::failpoint
