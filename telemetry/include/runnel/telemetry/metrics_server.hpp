// The stack's Prometheus endpoint: HTTP GET /metrics on one address (prometheus-cpp's Exposer,
// civetweb underneath), serving the shared registry (histograms and error counters the event
// journals feed) and the status metrics (StatusMetrics) computed per scrape.
// Thread-safety: the server's own threads answer scrapes; `status` is called from them and must be
// thread-safe. The destructor stops the server.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace prometheus {
class Exposer;
class Registry;
class Collectable;
}  // namespace prometheus

namespace runnel::telemetry {

class MetricsServer {
 public:
  // `listen` is HOST:PORT (PORT 0: any free port). Throws ConfigError when it is malformed or the
  // address cannot be bound.
  MetricsServer(const std::string& listen, std::shared_ptr<prometheus::Registry> registry,
                std::function<nlohmann::json()> status);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // http://HOST:PORT/metrics with the port actually bound.
  const std::string& Url() const { return url_; }
  int Port() const { return port_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> status_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string url_;
  int port_ = 0;
};

}  // namespace runnel::telemetry
