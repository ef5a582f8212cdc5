// The Kafka side's shared vocabulary: client config, the exception hierarchy, and versions.
// Public headers of broker/ do not include rdkafka.h; the handles live in src/holders.hpp.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "runnel/core/error.hpp"
#include "runnel/core/secret.hpp"

namespace runnel::kafka {

std::string LibrdkafkaVersion();

// A Kafka error with librdkafka's code (rd_kafka_resp_err_t as int) and whether a retry makes sense.
class KafkaError : public Error {
 public:
  KafkaError(int code, std::string message, bool retriable)
      : Error(std::move(message), retriable), code_(code) {}
  int Code() const noexcept { return code_; }

 private:
  int code_;
};

// A client handle could not be created: bad option or value. Never retriable.
class KafkaConfigError : public KafkaError {
 public:
  explicit KafkaConfigError(std::string message) : KafkaError(-1, std::move(message), false) {}
};

// The broker was not reachable or did not answer in time: retriable.
class KafkaTimeout : public KafkaError {
 public:
  KafkaTimeout(int code, std::string message) : KafkaError(code, std::move(message), true) {}
};

// Throws the right KafkaError subclass for a librdkafka error code; `what` says what was being done.
[[noreturn]] void ThrowKafkaError(int code, const std::string& what);
// True for the codes where the same request may succeed later.
bool IsRetriableKafkaError(int code);

// Connection settings shared by every client Runnel creates.
struct KafkaOptions {
  std::string bootstrap;  // host:port[,host:port...]
  std::string client_id = "runnel";
  // Raw librdkafka options, applied last; they may override Runnel's defaults except the few
  // that correctness depends on (each client sets those in code, after these).
  std::map<std::string, std::string> options;
  // Options whose values are secret (kafka.secrets, and the sensitive ones from kafka.options):
  // applied after `options`, logged and reported as ***.
  std::map<std::string, Secret> secrets{};
};

}  // namespace runnel::kafka
