#include <fmt/format.h>

#include "holders.hpp"
#include "runnel/core/log.hpp"

namespace runnel::kafka {
namespace {

// librdkafka's syslog levels to spdlog's.
spdlog::level::level_enum LevelOf(int syslog_level) {
  if (syslog_level <= 3) return spdlog::level::err;
  if (syslog_level == 4) return spdlog::level::warn;
  if (syslog_level <= 6) return spdlog::level::info;
  return spdlog::level::debug;
}

// `shown` is how the value appears in errors and logs: the value itself, or a Secret's mask.
template <typename Shown>
void SetConf(rd_kafka_conf_t* conf, const std::string& name, const std::string& value, const Shown& shown) {
  ErrorBuffer err;
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err.data(), err.size()) != RD_KAFKA_CONF_OK) {
    throw KafkaConfigError(fmt::format("Kafka option {}={}: {}", name, shown, err.text()));
  }
}

}  // namespace

void LogCallback(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  static const auto kLogger = log::kKafka.Logger();
  kLogger->log(LevelOf(level), "{}: {}: {}", rd_kafka_name(rk), fac, buf);
}

std::string LibrdkafkaVersion() { return rd_kafka_version_str(); }

bool IsRetriableKafkaError(int code) {
  switch (static_cast<rd_kafka_resp_err_t>(code)) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:  // a topic still being created
      return true;
    default:
      return false;
  }
}

void ThrowKafkaError(int code, const std::string& what) {
  const auto err = static_cast<rd_kafka_resp_err_t>(code);
  std::string message = fmt::format("{}: {} ({})", what, rd_kafka_err2str(err), rd_kafka_err2name(err));
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT ||
      err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
    throw KafkaTimeout(code, std::move(message));
  }
  throw KafkaError(code, std::move(message), IsRetriableKafkaError(code));
}

void CheckError(rd_kafka_error_t* error, const std::string& what) {
  if (error == nullptr) return;
  ErrorHandle holder(error);
  const int code = rd_kafka_error_code(error);
  std::string message = fmt::format("{}: {}", what, rd_kafka_error_string(error));
  throw KafkaError(code, std::move(message),
                   rd_kafka_error_is_retriable(error) || IsRetriableKafkaError(code));
}

ConfHandle MakeConf(const KafkaOptions& cfg, const std::map<std::string, std::string>& defaults,
                    const std::map<std::string, std::string>& forced) {
  ConfHandle conf(rd_kafka_conf_new());
  static const auto kLogger = log::kKafka.Logger();
  auto apply = [&](const std::string& name, const std::string& value, const char* origin) {
    SetConf(conf.get(), name, value, value);
    kLogger->debug("{} option {}={}", origin, name, value);
  };
  // Nagle's algorithm is on by default in librdkafka 2.0; it costs ~40 ms on small exchanges.
  apply("socket.nagle.disable", "true", "default");
  apply("client.id", cfg.client_id, "default");
  // A request to a broker that went away fails after this long (librdkafka's default is 60 s, so
  // a broker restart stalled every client for a minute).
  apply("socket.timeout.ms", "10000", "default");
  if (!cfg.bootstrap.empty()) apply("bootstrap.servers", cfg.bootstrap, "config");
  for (const auto& [name, value] : defaults) apply(name, value, "default");
  for (const auto& [name, value] : cfg.options) {
    if (forced.contains(name) && forced.at(name) != value) {
      throw KafkaConfigError(
          fmt::format("Kafka option {}={} conflicts with Runnel's guarantees (it must be {})", name, value,
                      forced.at(name)));
    }
    apply(name, value, "config");
  }
  for (const auto& [name, secret] : cfg.secrets) {
    SetConf(conf.get(), name, secret.Reveal(), secret);
    kLogger->debug("config option {}={}", name, secret);
  }
  for (const auto& [name, value] : forced) apply(name, value, "required");
  rd_kafka_conf_set_log_cb(conf.get(), LogCallback);
  return conf;
}

ClientHandle MakeClient(rd_kafka_type_t type, ConfHandle conf) {
  ErrorBuffer err;
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err.data(), err.size());
  if (rk == nullptr) throw KafkaConfigError(fmt::format("cannot create Kafka client: {}", err.text()));
  (void)conf.release();  // owned by rk from here on
  return ClientHandle(rk);
}

}  // namespace runnel::kafka
