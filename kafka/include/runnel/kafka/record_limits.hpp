// What fits in one Kafka record: the size librdkafka compares with the producer's
// message.max.bytes, Runnel's default for that option, the start-up check of a function's
// max_payload against it, and cutting a dead-letter copy down to what fits (docs/protocol.md §2).
// Pure functions: no client, no broker.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "runnel/core/config.hpp"
#include "runnel/kafka/producer.hpp"

namespace runnel::kafka {

// Runnel's producers use this message.max.bytes unless kafka.options sets it: a 1 MiB payload
// (max_payload's default, the protocol's inline limit) plus kRunnelHeadersAllowance. librdkafka's
// own default, 1,000,000 bytes, is below a 1 MiB payload.
inline constexpr std::size_t kDefaultMessageMaxBytes = (std::size_t{1} << 20) + (std::size_t{64} << 10);
// What `runnel up` reserves beyond a function's max_payload for the headers of its dead-letter
// copy (the original headers, the reason, the origin) and of its results record.
inline constexpr std::size_t kRunnelHeadersAllowance = std::size_t{64} << 10;
// librdkafka's bounds for message.max.bytes.
inline constexpr std::size_t kMessageMaxBytesMin = 1000;
inline constexpr std::size_t kMessageMaxBytesMax = 1'000'000'000;

// The size librdkafka 2.0 checks against message.max.bytes (rd_kafka_msg_max_wire_size): the
// value, the key, every header with its two varint lengths, and 36 bytes of record overhead.
std::size_t RecordWireSize(const Record& record);

// message.max.bytes as Runnel's producers apply it: `options`' value, else kDefaultMessageMaxBytes.
// Throws ConfigError naming kafka.options.message.max.bytes when the value is not an integer
// within librdkafka's bounds.
std::size_t MessageMaxBytes(const std::map<std::string, std::string>& options);

// What a function's dead-letter copy needs at most: its max_payload plus kRunnelHeadersAllowance.
std::size_t RequiredMessageMaxBytes(std::size_t max_payload);

// `runnel up`'s check at start: every function's max_payload plus kRunnelHeadersAllowance fits
// the producer's message.max.bytes (MessageMaxBytes of kafka.options), so that a dead-letter copy
// of any input the function accepts is written whole. Throws ConfigError naming the file, the
// line and the key to change: kafka.options.message.max.bytes when the config sets it, else the
// function's max_payload.
void CheckRecordLimits(const StackConfig& config);

// What FitDeadLetter did.
struct Truncation {
  bool fits = true;
  std::size_t value_size = 0;       // the value's original size
  bool value_cut = false;           // the value was shortened (header runnel-truncated)
  std::size_t headers_dropped = 0;  // original headers left out (header runnel-truncated-headers)
};

// Makes a dead-letter copy fit `max_bytes`. Its headers are the original's followed by the last
// `own_headers` ones, which Runnel added (the reason, origin...). In order, while it does not fit:
// cuts the value to what fits (adding runnel-truncated with the original size); drops the
// original's headers (adding runnel-truncated-headers with their count); shortens the longest of
// Runnel's own header values. `fits` is false only when even that is over (a limit under about
// a kilobyte).
Truncation FitDeadLetter(Record& record, std::size_t own_headers, std::size_t max_bytes);

}  // namespace runnel::kafka
