// Which stacks commit a function's consumer group. A dispatcher of a function that is not shared
// assigns itself every partition of its topic (it does not join the group), so a second stack
// serving the same function against the same Kafka would consume every event again and pull the
// group's offsets backwards. To see one, every commit a dispatcher sends carries a lease as its
// metadata, and it commits every partition it owns at least once a second, also while idle; at
// start a dispatcher refuses to run when another stack's lease is fresh, unless both share the
// function through the group (`scaling.shared`; docs/config.md, "Several stacks per function").
// The leases also name the group's other stacks in `runnel status`.
// Not thread-safe: values and pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runnel/kafka/consumer.hpp"

namespace runnel::broker {

// A lease older than this is a stack that stopped without saying so (killed, its host gone).
inline constexpr std::chrono::milliseconds kLeaseFresh{15'000};

struct GroupLease {
  std::string stack;  // the stack's id (StateDir::StackId): a restart of the same stack is itself
  std::string host;
  std::int64_t pid = 0;
  std::int64_t at_ms = 0;  // when the commit was sent, Unix epoch
  bool stopped = false;    // the stack's last commit, on a stop that drained
  bool shared = false;     // the stack shares the function through the group (scaling.shared)
  bool operator==(const GroupLease&) const = default;
};

std::string EncodeLease(const GroupLease& lease);
// The lease in a commit's metadata; nullopt for metadata that is not one (empty, or another
// client's commit).
std::optional<GroupLease> DecodeLease(std::string_view metadata);

// Whether a lease is another stack's and says that stack still runs at `now_ms` (not stopped, at
// most kLeaseFresh old).
bool LiveOtherStack(const GroupLease& lease, const std::string& own_stack, std::int64_t now_ms);

// The stacks that last committed a group's partitions, one entry per stack (its newest lease),
// with the partitions whose last commit is its, in partition order; entries by stack id. Each
// element of `committed` is a partition and its commit's metadata; metadata that is no lease is
// skipped. This is who serves the function as far as the group's commits tell (`runnel status`).
struct LeaseHolder {
  GroupLease lease;
  std::vector<std::int32_t> partitions;
};
std::vector<LeaseHolder> LeaseHolders(const std::vector<std::pair<std::int32_t, std::string>>& committed);

// Throws ConfigError naming the other stack when one of `committed` holds a live lease of another
// stack (LiveOtherStack) and the two may not share the group: one of them does not share it.
void RefuseOtherLiveStack(const std::vector<kafka::CommittedOffset>& committed, const std::string& own_stack,
                          bool own_shared, const std::string& function, const std::string& group,
                          std::int64_t now_ms);

}  // namespace runnel::broker
