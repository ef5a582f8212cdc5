// One named logger per subsystem ("broker", "worker", "autoscaler", "kafka", "cli", ...).
// Levels come from RUNNEL_LOG, e.g. RUNNEL_LOG=info,broker=debug (spdlog's env syntax).
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace runnel::log {

// The logger for a subsystem, created on first use with the configured sink and level.
// Thread-safe.
std::shared_ptr<spdlog::logger> Get(const std::string& subsystem);

// Reads RUNNEL_LOG once; later Get() calls honour it. Call at program start.
void ConfigureFromEnv();

}  // namespace runnel::log
