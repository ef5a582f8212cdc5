#include "proc_sampling.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace runnel::autoscaler {

double ProcCpuSeconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(in, line)) return -1;
  // The command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long ticks = ::sysconf(_SC_CLK_TCK);
  return static_cast<double>(utime + stime) / static_cast<double>(ticks > 0 ? ticks : 100);
}

std::pair<std::int64_t, std::int64_t> ProcMemoryKb(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::int64_t rss = 0, hwm = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) rss = std::atoll(line.c_str() + 6);
    if (line.starts_with("VmHWM:")) hwm = std::atoll(line.c_str() + 6);
  }
  return {rss, hwm};
}

}  // namespace runnel::autoscaler
