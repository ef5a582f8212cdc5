// RAII over librdkafka's C handles: one unique_ptr type per handle, each with its destroy function.
// Ownership quirk: rd_kafka_new() takes ownership of the conf only when it succeeds; MakeClient
// releases the holder exactly then.
#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>

#include "runnel/kafka/kafka.hpp"

namespace runnel::kafka {

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    if (p != nullptr) Fn(p);
  }
};

using ConfHandle = std::unique_ptr<rd_kafka_conf_t, Deleter<rd_kafka_conf_destroy>>;
using TopicPartitionList =
    std::unique_ptr<rd_kafka_topic_partition_list_t, Deleter<rd_kafka_topic_partition_list_destroy>>;
using MessageHandle = std::unique_ptr<rd_kafka_message_t, Deleter<rd_kafka_message_destroy>>;
using EventHandle = std::unique_ptr<rd_kafka_event_t, Deleter<rd_kafka_event_destroy>>;
using QueueHandle = std::unique_ptr<rd_kafka_queue_t, Deleter<rd_kafka_queue_destroy>>;
using ErrorHandle = std::unique_ptr<rd_kafka_error_t, Deleter<rd_kafka_error_destroy>>;
using HeadersHandle = std::unique_ptr<rd_kafka_headers_t, Deleter<rd_kafka_headers_destroy>>;
using AdminOptionsHandle = std::unique_ptr<rd_kafka_AdminOptions_t, Deleter<rd_kafka_AdminOptions_destroy>>;

// rd_kafka_destroy blocks until the handle's threads end; consumers are closed before this runs.
struct ClientDeleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
using ClientHandle = std::unique_ptr<rd_kafka_t, ClientDeleter>;

// The error text librdkafka's C calls write into a caller's buffer (`errstr, errstr_size`):
// `ErrorBuffer err; rd_kafka_new(type, conf, err.data(), err.size()); ... err.text()`.
class ErrorBuffer {
 public:
  char* data() { return text_; }
  std::size_t size() const { return sizeof text_; }
  const char* text() const { return text_; }

 private:
  char text_[512] = {};
};

// Builds a conf from Runnel's defaults, then cfg.options and cfg.secrets, then `forced` (correctness
// settings that config may not override). Logs every option as applied, each Secret as ***.
// librdkafka's own log lines go to the "kafka" logger.
ConfHandle MakeConf(const KafkaOptions& cfg, const std::map<std::string, std::string>& defaults,
                    const std::map<std::string, std::string>& forced);

ClientHandle MakeClient(rd_kafka_type_t type, ConfHandle conf);

// librdkafka's log lines into spdlog's `kafka` logger (the log callback MakeConf installs).
void LogCallback(const rd_kafka_t* rk, int level, const char* fac, const char* buf);

// Throws for a non-null rd_kafka_error_t (which it destroys).
void CheckError(rd_kafka_error_t* error, const std::string& what);

}  // namespace runnel::kafka
