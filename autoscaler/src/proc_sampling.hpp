// What LocalProcessBackend reads from /proc about its workers and standbys, once a second each:
// CPU seconds and memory (resident and peak).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <utility>

namespace runnel::autoscaler {

inline constexpr auto kSampleInterval = std::chrono::seconds(1);  // /proc reads per running process

// CPU seconds (utime + stime) of a process from /proc/<pid>/stat; -1 when it cannot be read.
double ProcCpuSeconds(pid_t pid);
// VmRSS and VmHWM (peak) of a process in KiB from /proc/<pid>/status; zeros when it cannot be read.
std::pair<std::int64_t, std::int64_t> ProcMemoryKb(pid_t pid);

}  // namespace runnel::autoscaler
