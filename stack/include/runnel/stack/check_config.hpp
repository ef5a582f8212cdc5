// What `runnel up` checks before it starts anything, and `runnel config check` without starting.
#pragma once

#include <vector>

#include "runnel/core/config.hpp"
#include "runnel/scheduler/scheduler.hpp"

namespace runnel::stack {

// Checks what `runnel up` checks before starting anything: every function's handler can be built
// with its params (a builtin created, a plugin loaded and its ABI checked, an exec program found),
// its max_payload fits the producer's message.max.bytes (kafka::CheckRecordLimits), and every
// schedule's cron and time zone parse. Throws ConfigError naming the
// file (and line, for schedules and `batch`). Settles each function's batch (functions::
// EffectiveBatch: the config's, else the function's own), so `config` says what workers will run.
// Returns the compiled schedules.
std::vector<scheduler::CompiledSchedule> CheckConfig(StackConfig& config);

}  // namespace runnel::stack
