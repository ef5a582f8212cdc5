#include "runnel/core/component_health.hpp"

#include <algorithm>

namespace runnel {

void ComponentHealth::Add(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(components_.begin(), components_.end(),
                         [&](const Component& c) { return c.name == name; });
  if (it == components_.end()) {
    components_.push_back({name, true, {}});
  } else {
    *it = {name, true, {}};
  }
}

void ComponentHealth::Fail(const std::string& name, const std::string& reason) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(components_.begin(), components_.end(),
                         [&](const Component& c) { return c.name == name; });
  if (it == components_.end()) it = components_.insert(components_.end(), Component{name, true, {}});
  if (it->up) {
    it->up = false;
    it->reason = reason;
  }
  if (!first_failure_) first_failure_ = static_cast<std::size_t>(it - components_.begin());
}

std::function<void(const std::string&)> ComponentHealth::Reporter(const std::string& name) {
  return [this, name](const std::string& reason) { Fail(name, reason); };
}

std::vector<ComponentHealth::Component> ComponentHealth::Snapshot() const {
  std::lock_guard lock(mu_);
  return components_;
}

std::optional<ComponentHealth::Component> ComponentHealth::FirstFailure() const {
  std::lock_guard lock(mu_);
  if (!first_failure_) return std::nullopt;
  return components_[*first_failure_];
}

}  // namespace runnel
