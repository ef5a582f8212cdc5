#include "runnel/telemetry/metrics_server.hpp"

#include <fmt/format.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <charconv>

#include "runnel/core/error.hpp"
#include "runnel/core/failpoints.hpp"
#include "runnel/core/log.hpp"
#include "runnel/telemetry/status_metrics.hpp"

namespace runnel::telemetry {
namespace {

class StatusCollectable final : public prometheus::Collectable {
 public:
  explicit StatusCollectable(std::function<nlohmann::json()> status) : status_(std::move(status)) {}
  // A fault while gathering one scrape fails that scrape's status metrics, not the server (an
  // exception would end civetweb's thread, and with it the process).
  std::vector<prometheus::MetricFamily> Collect() const override {
    try {
      failpoint::Hit("metrics.collect");
      return StatusMetrics(status_(), &slots_);
    } catch (const std::exception& e) {
      log::kTelemetry->error("metrics: the status metrics of this scrape failed: {}", e.what());
      return {};
    }
  }

 private:
  std::function<nlohmann::json()> status_;
  mutable WorkerSlots slots_;  // worker slot labels, stable across scrapes
};

}  // namespace

MetricsServer::MetricsServer(const std::string& listen, std::shared_ptr<prometheus::Registry> registry,
                             std::function<nlohmann::json()> status)
    : registry_(std::move(registry)), status_(std::make_shared<StatusCollectable>(std::move(status))) {
  const auto colon = listen.rfind(':');
  int port = -1;
  const std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
  if (colon != std::string::npos) {
    const char* first = listen.data() + colon + 1;
    const char* last = listen.data() + listen.size();
    const auto [ptr, ec] = std::from_chars(first, last, port);
    if (ec != std::errc() || ptr != last || first == last) port = -1;
  }
  if (host.empty() || host.find(':') != std::string::npos || port < 0 || port > 65535) {
    throw ConfigError(fmt::format(
        "metrics address '{}' is not HOST:PORT (e.g. 127.0.0.1:9464; port 0: any free port)", listen));
  }
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(fmt::format("{}:{}", host, port), 2);
  } catch (const std::exception& e) {
    throw ConfigError(fmt::format("cannot serve metrics on {}: {}", listen, e.what()));
  }
  const auto ports = exposer_->GetListeningPorts();
  if (ports.empty()) throw ConfigError(fmt::format("cannot serve metrics on {}: no port bound", listen));
  port_ = ports.front();
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(status_);
  // A wildcard bind is reachable locally on the loopback address: that is what the URL is for.
  url_ = fmt::format("http://{}:{}/metrics", host == "0.0.0.0" ? "127.0.0.1" : host, port_);
}

MetricsServer::~MetricsServer() = default;

}  // namespace runnel::telemetry
