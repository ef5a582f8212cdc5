// Environment variable expansion for runnel.yaml values, so secrets and paths can come from the
// environment: `${VAR}`, `${VAR:-default}` (used when VAR is unset or empty), `${VAR:?message}`
// (an error with that message when VAR is unset or empty) and `$$` for a literal `$`. A default may
// itself hold expansions, nested up to 16 deep. Any other `$` is an error, so `$HOME` is never left
// silently unexpanded. Values from the environment are inserted as they are, never expanded again.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace runnel {

// Looks a variable up; nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment (getenv).
std::optional<std::string> ProcessEnv(const std::string& name);

// Expands `text`. Throws ConfigError with a message that names the variable (never its value), e.g.
// "${KAFKA_PASSWORD} is not set (set it, or give a default: ${KAFKA_PASSWORD:-value})".
std::string ExpandEnv(std::string_view text, const EnvLookup& lookup = ProcessEnv);

}  // namespace runnel
