// Durations as users write them, in runnel.yaml and on the command line: a number with a unit
// ("500ms", "30s", "2m", "1h30m"; units ns, us, ms, s, m, h), parsed by absl::ParseDuration. A bare
// number is refused (is `10` seconds or milliseconds?), except "0". So are NaN, infinities,
// negative values, hex and exponent forms, anything below 1ms but 0, and anything above 7 days.
// Runnel counts durations in whole milliseconds (a fraction of one is dropped).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace runnel {

inline constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(7 * 24);

struct ParsedDuration {
  std::chrono::milliseconds value{0};
  std::string error;  // empty: `value` holds the duration; else why the text is not one, quoting it
  explicit operator bool() const { return error.empty(); }
};

ParsedDuration ParseDuration(std::string_view text);

}  // namespace runnel
