#include "runnel/broker/group_lease.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>

#include "runnel/core/error.hpp"

namespace runnel::broker {

std::string EncodeLease(const GroupLease& lease) {
  return nlohmann::json{{"runnel_stack", lease.stack}, {"host", lease.host},       {"pid", lease.pid},
                        {"at_ms", lease.at_ms},        {"stopped", lease.stopped}, {"shared", lease.shared}}
      .dump();
}

std::optional<GroupLease> DecodeLease(std::string_view metadata) {
  if (metadata.empty() || metadata.front() != '{') return std::nullopt;
  const auto j = nlohmann::json::parse(metadata, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  const auto stack = j.find("runnel_stack");
  const auto at = j.find("at_ms");
  if (stack == j.end() || !stack->is_string() || stack->get_ref<const std::string&>().empty() ||
      at == j.end() || !at->is_number_integer()) {
    return std::nullopt;
  }
  GroupLease lease;
  lease.stack = stack->get<std::string>();
  lease.at_ms = at->get<std::int64_t>();
  if (const auto host = j.find("host"); host != j.end() && host->is_string())
    lease.host = host->get<std::string>();
  if (const auto pid = j.find("pid"); pid != j.end() && pid->is_number_integer())
    lease.pid = pid->get<std::int64_t>();
  if (const auto stopped = j.find("stopped"); stopped != j.end() && stopped->is_boolean()) {
    lease.stopped = stopped->get<bool>();
  }
  if (const auto shared = j.find("shared"); shared != j.end() && shared->is_boolean()) {
    lease.shared = shared->get<bool>();
  }
  return lease;
}

std::vector<LeaseHolder> LeaseHolders(const std::vector<std::pair<std::int32_t, std::string>>& committed) {
  std::vector<LeaseHolder> out;
  auto sorted = committed;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [partition, metadata] : sorted) {
    auto lease = DecodeLease(metadata);
    if (!lease) continue;
    auto it =
        std::find_if(out.begin(), out.end(), [&](const auto& h) { return h.lease.stack == lease->stack; });
    if (it == out.end()) {
      out.push_back({*lease, {}});
      it = std::prev(out.end());
    } else if (lease->at_ms > it->lease.at_ms) {
      it->lease = *lease;
    }
    it->partitions.push_back(partition);
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.lease.stack < b.lease.stack; });
  return out;
}

bool LiveOtherStack(const GroupLease& lease, const std::string& own_stack, std::int64_t now_ms) {
  return lease.stack != own_stack && !lease.stopped && now_ms - lease.at_ms <= kLeaseFresh.count();
}

void RefuseOtherLiveStack(const std::vector<kafka::CommittedOffset>& committed, const std::string& own_stack,
                          bool own_shared, const std::string& function, const std::string& group,
                          std::int64_t now_ms) {
  std::optional<GroupLease> freshest;
  for (const auto& c : committed) {
    auto lease = DecodeLease(c.metadata);
    if (!lease || !LiveOtherStack(*lease, own_stack, now_ms)) continue;
    if (own_shared && lease->shared) continue;  // both split the partitions through the group
    if (!freshest || lease->at_ms > freshest->at_ms) freshest = std::move(lease);
  }
  if (!freshest) return;
  const double age_s = static_cast<double>(std::max<std::int64_t>(0, now_ms - freshest->at_ms)) / 1000.0;
  const double wait_s = static_cast<double>(kLeaseFresh.count()) / 1000.0 - age_s;
  const std::string who = fmt::format(
      "another stack (id {}, pid {} on {}) committed consumer group {} {:.1f} s ago", freshest->stack,
      freshest->pid, freshest->host.empty() ? "?" : freshest->host, group, age_s);
  const std::string gone =
      fmt::format("if that stack is gone without a drain, start again in {:.0f} s", std::max(1.0, wait_s));
  if (own_shared) {
    throw ConfigError(fmt::format(
        "function {}: {}, and it does not share the function: it takes every partition, so this one "
        "would run its events again. Set scaling.shared: true for the function in that stack's "
        "runnel.yaml too and restart it, or stop it; {}",
        function, who, gone));
  }
  throw ConfigError(fmt::format(
      "function {}: {}. A stack that does not share a function takes every partition of its topic, so "
      "two would run every event twice. Set scaling.shared: true for the function in every stack's "
      "runnel.yaml (they then split its partitions through the group), stop the other stack, give "
      "this one another group (functions[].group), or, {}",
      function, who, gone));
}

}  // namespace runnel::broker
