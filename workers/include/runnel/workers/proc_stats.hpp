// What a worker reports about itself and the limits it puts on itself: resident memory for
// HEARTBEAT, the address-space limit from WELCOME's memory_mb.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace runnel::workers {

// Resident set size of this process in KiB, from /proc/self/statm; 0 if it cannot be read.
std::uint64_t RssKb();

// Caps this process's address space (RLIMIT_AS, soft and hard) at `mb` MiB; 0 leaves it alone.
// Allocations past it fail (std::bad_alloc), which a function call reports as an internal error.
// Throws ConfigError when the kernel refuses (e.g. raising a hard limit without privilege).
void ApplyMemoryLimit(std::uint64_t mb);

}  // namespace runnel::workers
