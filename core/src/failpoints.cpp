#include "runnel/core/failpoints.hpp"

#include <fmt/format.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "runnel/core/error.hpp"

namespace runnel::failpoint {
namespace {

struct Entry {
  bool on = false;            // NAME=on: a switch Armed() reads; Hit never throws for it
  std::int64_t from_hit = 1;  // the first hit that throws
  std::atomic<std::int64_t> hits{0};
};

struct Table {
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> armed;
  std::string error;  // set when RUNNEL_FAILPOINTS is malformed (nothing is armed then)
};

Table Parse(std::string_view spec) {
  Table t;
  while (!spec.empty()) {
    const auto comma = spec.find(',');
    const std::string_view entry = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (entry.empty()) continue;
    const auto eq = entry.find('=');
    const std::string_view name = entry.substr(0, eq);
    const std::string_view action = eq == std::string_view::npos ? std::string_view() : entry.substr(eq + 1);
    auto armed = std::make_unique<Entry>();
    bool ok = !name.empty() && eq != std::string_view::npos;
    if (ok && action == "on") {
      armed->on = true;
    } else if (ok && action != "throw") {
      constexpr std::string_view kAfter = "throw:";
      ok = action.starts_with(kAfter);
      if (ok) {
        const char* first = action.data() + kAfter.size();
        const char* last = action.data() + action.size();
        const auto [ptr, ec] = std::from_chars(first, last, armed->from_hit);
        ok = ec == std::errc() && ptr == last && first != last && armed->from_hit >= 1;
      }
    }
    if (!ok) {
      t.armed.clear();
      t.error =
          fmt::format("RUNNEL_FAILPOINTS: '{}' is not NAME=throw, NAME=throw:N (N >= 1) or NAME=on", entry);
      return t;
    }
    t.armed[std::string(name)] = std::move(armed);
  }
  return t;
}

const Table& Get() {
  static const Table kTable = [] {
    const char* spec = std::getenv("RUNNEL_FAILPOINTS");
    return spec == nullptr ? Table{} : Parse(spec);
  }();
  return kTable;
}

}  // namespace

void Hit(std::string_view name) {
  const Table& t = Get();
  if (t.armed.empty()) return;
  const auto it = t.armed.find(name);
  if (it == t.armed.end() || it->second->on) return;
  const std::int64_t hit = it->second->hits.fetch_add(1) + 1;
  if (hit >= it->second->from_hit) throw Error(fmt::format("failpoint {}", name), false);
}

bool Armed(std::string_view name) {
  const Table& t = Get();
  if (t.armed.empty()) return false;
  const auto it = t.armed.find(name);
  return it != t.armed.end() && it->second->on;
}

void Validate() {
  if (const Table& t = Get(); !t.error.empty()) throw ConfigError(t.error);
}

}  // namespace runnel::failpoint
