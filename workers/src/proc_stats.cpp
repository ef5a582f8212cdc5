#include "runnel/workers/proc_stats.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "runnel/core/error.hpp"

namespace runnel::workers {

std::uint64_t RssKb() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size_pages = 0;
  std::uint64_t resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) return 0;
  const long page = ::sysconf(_SC_PAGESIZE);
  return resident_pages * static_cast<std::uint64_t>(page > 0 ? page : 4096) / 1024;
}

void ApplyMemoryLimit(std::uint64_t mb) {
  if (mb == 0) return;
  const rlim_t bytes = static_cast<rlim_t>(mb) * 1024 * 1024;
  const rlimit limit{bytes, bytes};
  if (::setrlimit(RLIMIT_AS, &limit) != 0) {
    throw ConfigError(fmt::format("cannot limit memory to {} MiB: {}", mb, std::strerror(errno)));
  }
}

}  // namespace runnel::workers
