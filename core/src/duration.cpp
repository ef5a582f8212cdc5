#include "runnel/core/duration.hpp"

#include <absl/time/time.h>
#include <fmt/format.h>

#include <algorithm>

namespace runnel {

ParsedDuration ParseDuration(std::string_view text) {
  ParsedDuration out;
  const bool bare_number =
      !text.empty() && std::any_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
      std::all_of(text.begin(), text.end(),
                  [](char c) { return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+'; });
  if (bare_number && text.find_first_not_of('0') != std::string_view::npos) {
    out.error =
        fmt::format("'{}' has no unit: durations need one, write \"{}s\" or \"{}ms\"", text, text, text);
    return out;
  }
  absl::Duration d;
  if (!absl::ParseDuration(std::string(text), &d)) {
    out.error = fmt::format("'{}' is not a duration like 500ms, 30s or 2m (units: ms, s, m, h)", text);
  } else if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) {
    out.error = fmt::format("'{}' is not a finite duration", text);
  } else if (d < absl::ZeroDuration()) {
    out.error = fmt::format("'{}' is negative", text);
  } else if (d > absl::FromChrono(kMaxDuration)) {
    out.error = fmt::format("'{}' is longer than 7 days (168h)", text);
  } else if (d > absl::ZeroDuration() && d < absl::Milliseconds(1)) {
    out.error = fmt::format("'{}' is below 1ms, the smallest duration Runnel counts", text);
  } else {
    out.value = std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
  }
  return out;
}

}  // namespace runnel
