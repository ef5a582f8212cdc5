#include "runnel/autoscaler/external_backend.hpp"

#include <fmt/format.h>

#include "runnel/core/log.hpp"

namespace runnel::autoscaler {
namespace {

constexpr std::string_view kPrefix = "external/";

}  // namespace

void ExternalBackend::Prepare(const std::string& function, const std::string& dispatcher) {
  {
    const std::lock_guard lock(mu_);
    wanted_.try_emplace(function, 0);
  }
  log::kAutoscaler.Logger()->info(
      "function {}: workers run outside this stack (workers.backend: external); they join {} and are "
      "scaled by {}{{function=\"{}\"}}",
      function, dispatcher, kMetric, function);
}

std::string ExternalBackend::Start(const std::string& function, const std::string& /*dispatcher*/) {
  const std::lock_guard lock(mu_);
  const int n = ++wanted_[function];
  return fmt::format("{}{}/{}", kPrefix, function, n);
}

void ExternalBackend::Stop(const std::string& id, std::chrono::milliseconds /*grace*/) {
  // external/<function>/<n>: a function name has no '/', so the last one ends it.
  const auto slash = id.rfind('/');
  if (id.rfind(kPrefix, 0) != 0 || slash == std::string::npos || slash < kPrefix.size()) return;
  const std::string function = id.substr(kPrefix.size(), slash - kPrefix.size());
  const std::lock_guard lock(mu_);
  const auto it = wanted_.find(function);
  if (it != wanted_.end() && it->second > 0) --it->second;
}

std::vector<WorkerInfo> ExternalBackend::List(const std::string& function) const {
  const std::lock_guard lock(mu_);
  std::vector<WorkerInfo> out;
  const auto it = wanted_.find(function);
  if (it == wanted_.end()) return out;
  for (int i = 1; i <= it->second; ++i) {
    WorkerInfo w;
    w.id = fmt::format("{}{}/{}", kPrefix, function, i);
    w.function = function;
    w.state = WorkerState::kRunning;
    out.push_back(std::move(w));
  }
  return out;
}

void ExternalBackend::StopAll(std::chrono::milliseconds /*grace*/) {
  const std::lock_guard lock(mu_);
  if (!wanted_.empty()) {
    log::kAutoscaler.Logger()->info(
        "leaving the workers of {} function(s) to whatever runs them "
        "(workers.backend: external)",
        wanted_.size());
  }
}

std::optional<OrchestratorInfo> ExternalBackend::OrchestratorOf(const std::string& function) const {
  const std::lock_guard lock(mu_);
  const auto it = wanted_.find(function);
  if (it == wanted_.end()) return std::nullopt;
  OrchestratorInfo info;
  info.kind = "external";
  info.target = fmt::format("{}{{function=\"{}\"}} on /metrics", kMetric, function);
  info.replicas_set = it->second;
  info.applied = true;  // published as soon as it is decided: nothing to wait for
  return info;
}

}  // namespace runnel::autoscaler
