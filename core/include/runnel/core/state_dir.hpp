// Where a running stack leaves what other commands need to find it: <state dir>/endpoints.json,
// e.g. {"kafka": "127.0.0.1:40123", "embedded": true}. Components add their keys as they start.
#pragma once

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "runnel/core/fd.hpp"

namespace runnel {

class StateDir {
 public:
  // The directory from, in order: an explicit flag, $RUNNEL_STATE_DIR, ./.runnel.
  static StateDir Resolve(const std::string& flag_value);
  explicit StateDir(std::filesystem::path root) : root_(std::move(root)) {}

  const std::filesystem::path& Root() const { return root_; }
  std::filesystem::path EndpointsFile() const { return root_ / "endpoints.json"; }

  // Merges `values` (an object) into endpoints.json under an exclusive lock and replaces the file
  // atomically, so concurrent writers never lose each other's keys and readers never see half a file.
  void MergeEndpoints(const nlohmann::json& values) const;
  // Removes the given keys (when a component stops); deletes the file when nothing is left.
  void RemoveEndpoints(const std::vector<std::string>& keys) const;
  // The current endpoints; throws ConfigError with one clear line when no stack runs here.
  nlohmann::json ReadEndpoints() const;
  // The Kafka bootstrap of the running stack ("kafka" key), with the same error.
  std::string KafkaBootstrap() const;
  // This state dir's stack id (<root>/stack.id, made on the first call): what a stack's commits
  // name it by, so that its own restart is not taken for another stack (broker/group_lease.hpp).
  std::string StackId() const;

 private:
  std::filesystem::path root_;
};

// Held by the process that runs a stack (or only its broker) in a state dir, for its lifetime:
// a second one in the same dir fails at once with a clear message. The kernel drops the lock
// when the holder dies, so a crash never leaves a stale lock behind.
class StackLock {
 public:
  // Throws ConfigError naming the holder's pid when the dir is taken.
  StackLock(const StateDir& dir, const std::string& what);

 private:
  UniqueFd fd_;  // the lock is the flock on it
};

}  // namespace runnel
