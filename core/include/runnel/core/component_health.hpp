// Which long-running components of a process are up: the stack's dispatchers, autoscaler,
// scheduler, results feed and metrics server. A component registers when it starts and reports
// the fault that leaves it unable to go on; the process's supervision loop (`runnel up`) checks for
// the first failure and exits with it, and `runnel status` and /metrics report every component.
// Thread-safety: every member may be called from any thread.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace runnel {

class ComponentHealth {
 public:
  struct Component {
    std::string name;  // e.g. "dispatcher echo", "autoscaler"
    bool up = true;
    std::string reason;  // why it failed; empty while up
  };

  // Registers `name` as up (again, if it was registered before).
  void Add(const std::string& name);
  // Marks `name` down with `reason` (the first reason stays). A name never added is added down.
  void Fail(const std::string& name, const std::string& reason);
  // A callback that fails `name`: what a component's Options::on_failure takes.
  std::function<void(const std::string&)> Reporter(const std::string& name);
  // Every component, in the order they were added.
  std::vector<Component> Snapshot() const;
  // The first component that failed, if any.
  std::optional<Component> FirstFailure() const;

 private:
  mutable std::mutex mu_;
  std::vector<Component> components_;
  std::optional<std::size_t> first_failure_;
};

}  // namespace runnel
