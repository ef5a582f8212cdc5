// Checks for the numeric flags of every command, with messages that say what is wanted and what
// was given: `--count: must be a whole number >= 1, got '-1'` (CLI11 prefixes the flag's name).
// CLI11's own Range and NonNegativeNumber print their bounds as doubles (a 309-digit maximum) and
// call a value that is not a number "not in range".
#pragma once

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

namespace runnel::cli {

namespace detail {

// "in 1..1024", or ">= 1" without an upper bound; `help`: the short form --help shows after the
// type ("1..1024", ">=1").
template <typename T>
std::string Bounds(T min, T max, bool help = false) {
  if (max == std::numeric_limits<T>::max())
    return help ? fmt::format(">={}", min) : fmt::format(">= {}", min);
  return help ? fmt::format("{}..{}", min, max) : fmt::format("in {}..{}", min, max);
}

}  // namespace detail

// A whole number in [min, max] (decimal digits, an optional '-'; nothing else).
inline CLI::Validator WholeNumber(long long min, long long max = std::numeric_limits<long long>::max()) {
  const std::string bounds = detail::Bounds(min, max);
  return CLI::Validator(
      [min, max, bounds](std::string& text) -> std::string {
        long long value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec == std::errc() && end == text.data() + text.size() && !text.empty() && value >= min &&
            value <= max) {
          return {};
        }
        return fmt::format("must be a whole number {}, got '{}'", bounds, text);
      },
      detail::Bounds(min, max, true), "WholeNumber");
}

// A finite number in [min, max] (decimal, e.g. 0.5 or 1500; not NaN or infinity).
inline CLI::Validator Number(double min, double max = std::numeric_limits<double>::max()) {
  const std::string bounds = detail::Bounds(min, max);
  return CLI::Validator(
      [min, max, bounds](std::string& text) -> std::string {
        double value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec == std::errc() && end == text.data() + text.size() && !text.empty() && std::isfinite(value) &&
            value >= min && value <= max) {
          return {};
        }
        return fmt::format("must be a number {}, got '{}'", bounds, text);
      },
      detail::Bounds(min, max, true), "Number");
}

}  // namespace runnel::cli
