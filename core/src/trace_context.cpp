#include "runnel/core/trace_context.hpp"

#include <fmt/format.h>

#include <random>

namespace runnel {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZeros(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

std::optional<TraceParent> Bad(std::string* why, std::string reason) {
  if (why) *why = std::move(reason);
  return std::nullopt;
}

}  // namespace

std::optional<TraceParent> ParseTraceparent(std::string_view v, std::string* why) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 characters.
  constexpr std::size_t kLength = 55;
  if (v.size() < 2 || !IsLowerHex(v.substr(0, 2)))
    return Bad(why, "the version is not 2 lowercase hex digits");
  const std::string_view version = v.substr(0, 2);
  if (version == "ff") return Bad(why, "version ff is invalid");
  if (v.size() < kLength) return Bad(why, fmt::format("is {} characters, fewer than 55", v.size()));
  if (version == "00" && v.size() != kLength)
    return Bad(why, fmt::format("is {} characters; version 00 is exactly 55", v.size()));
  if (v.size() > kLength && v[kLength] != '-')
    return Bad(why, "a higher version's fields after the flags do not start with '-'");
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return Bad(why, "the fields are not separated by '-'");
  const std::string_view trace = v.substr(3, 32);
  const std::string_view parent = v.substr(36, 16);
  const std::string_view flags = v.substr(53, 2);
  if (!IsLowerHex(trace)) return Bad(why, "the trace-id is not 32 lowercase hex digits");
  if (AllZeros(trace)) return Bad(why, "the trace-id is all zeros");
  if (!IsLowerHex(parent)) return Bad(why, "the parent-id is not 16 lowercase hex digits");
  if (AllZeros(parent)) return Bad(why, "the parent-id is all zeros");
  if (!IsLowerHex(flags)) return Bad(why, "the trace-flags are not 2 lowercase hex digits");
  return TraceParent{std::string(trace), std::string(parent), std::string(flags)};
}

std::string FormatTraceparent(const TraceParent& tp) {
  return fmt::format("00-{}-{}-{}", tp.trace_id, tp.parent_id, tp.flags);
}

std::string NewSpanId() {
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }()};
  std::uint64_t v = 0;
  while (v == 0) v = rng();
  return fmt::format("{:016x}", v);
}

}  // namespace runnel
