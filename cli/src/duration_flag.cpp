#include <fmt/format.h>

#include "commands.hpp"
#include "runnel/core/duration.hpp"

namespace runnel::cli {

CLI::Validator DurationSeconds() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        const auto parsed = ParseDuration(input);
        if (!parsed) return parsed.error;
        input = fmt::format("{}", static_cast<double>(parsed.value.count()) / 1000.0);
        return {};
      },
      "DURATION", "duration");
}

}  // namespace runnel::cli
