// Reading timestamps: epoch milliseconds, parsed from RFC 3339 text when a device sends strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace runnel::functions::iot {

// 2000-01-01T00:00:00Z: readings before it are refused as absurd (a clock that never synced, or
// seconds sent where milliseconds were meant).
inline constexpr std::int64_t kMinReadingTsMs = 946'684'800'000;

// "2024-05-01T12:00:00Z", "2024-05-01t12:00:00.250+02:00", "2024-05-01 12:00:00.5-05:30" (RFC 3339,
// with its allowed lowercase and space forms). Fractions below a millisecond are truncated; a leap
// second 60 counts as the next minute's second 0. nullopt when the text is not such a timestamp.
std::optional<std::int64_t> ParseRfc3339Ms(std::string_view text);

// Epoch ms as "2024-05-01T12:00:00.000Z", for messages.
std::string FormatRfc3339Ms(std::int64_t ms);

}  // namespace runnel::functions::iot
