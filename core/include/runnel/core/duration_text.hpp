// A measured duration in milliseconds as a person reads it: `14 µs`, `2.5 ms`, `1.20 s`, so that a
// sub-millisecond service time (most built-in functions) does not print as `0.0 ms`.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <string>

namespace runnel {

inline std::string MillisText(double ms) {
  if (!std::isfinite(ms)) return "? ms";
  if (ms <= 0) return "0 ms";
  const double us = ms * 1000;
  if (us < 9.95) return fmt::format("{:.1f} µs", us);
  if (us < 999.5) return fmt::format("{:.0f} µs", us);
  if (ms < 999.95) return fmt::format("{:.1f} ms", ms);
  return fmt::format("{:.2f} s", ms / 1000);
}

}  // namespace runnel
