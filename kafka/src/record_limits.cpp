#include "runnel/kafka/record_limits.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "runnel/core/config_lines.hpp"
#include "runnel/core/headers.hpp"

namespace runnel::kafka {
namespace {

// librdkafka's RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD: varints for the length (5), timestamp delta
// (10), offset delta, key length, value length and header count (5 each), plus the attributes byte.
constexpr std::size_t kRecordOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 5;
constexpr std::string_view kCut = " [cut]";

// Bytes of a zig-zag varint of n, as librdkafka writes header lengths.
std::size_t VarintSize(std::size_t n) {
  std::uint64_t v = static_cast<std::uint64_t>(n) << 1;
  std::size_t bytes = 1;
  while (v > 0x7f) {
    v >>= 7;
    ++bytes;
  }
  return bytes;
}

std::size_t HeaderSize(const Header& h) {
  return h.name.size() + h.value.size() + VarintSize(h.name.size()) + VarintSize(h.value.size());
}

}  // namespace

std::size_t RecordWireSize(const Record& record) {
  std::size_t size = kRecordOverhead + record.value.size() + (record.key ? record.key->size() : 0);
  for (const Header& h : record.headers) size += HeaderSize(h);
  return size;
}

std::size_t MessageMaxBytes(const std::map<std::string, std::string>& options) {
  const auto it = options.find("message.max.bytes");
  if (it == options.end()) return kDefaultMessageMaxBytes;
  const std::string& text = it->second;
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < kMessageMaxBytesMin ||
      value > kMessageMaxBytesMax) {
    throw ConfigError(fmt::format("kafka.options.message.max.bytes: '{}' is not an integer within {}..{}",
                                  text, kMessageMaxBytesMin, kMessageMaxBytesMax));
  }
  return value;
}

std::size_t RequiredMessageMaxBytes(std::size_t max_payload) { return max_payload + kRunnelHeadersAllowance; }

void CheckRecordLimits(const StackConfig& config) {
  const auto option = config.kafka_options.find("message.max.bytes");
  const auto line_of_option = [&] {
    return ConfigLine(config.source,
                      {std::string("kafka"), std::string("options"), std::string("message.max.bytes")});
  };
  std::size_t limit = 0;
  try {
    limit = MessageMaxBytes(config.kafka_options);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}:{}: {}", config.source, line_of_option(), e.what()));
  }
  for (std::size_t i = 0; i < config.functions.size(); ++i) {
    const FunctionSpec& f = config.functions[i];
    const std::size_t need = RequiredMessageMaxBytes(f.max_payload);
    if (need <= limit) continue;
    const std::string fits =
        limit > kRunnelHeadersAllowance ? std::to_string(limit - kRunnelHeadersAllowance) : "0";
    if (option != config.kafka_options.end()) {
      throw ConfigError(
          fmt::format("{}:{}: kafka.options.message.max.bytes: {} is too small for functions[{}] ({}): its "
                      "max_payload of {} "
                      "plus {} bytes for the headers Runnel adds needs {}; raise "
                      "kafka.options.message.max.bytes to at least {}, "
                      "or lower functions[{}].max_payload to at most {}",
                      config.source, line_of_option(), limit, i, f.name, f.max_payload,
                      kRunnelHeadersAllowance, need, need, i, fits));
    }
    throw ConfigError(fmt::format(
        "{}:{}: functions[{}].max_payload: {} plus {} bytes for the headers Runnel adds is over the "
        "producer's "
        "message.max.bytes of {} (Runnel's default); lower functions[{}].max_payload to at most {}, or set "
        "kafka.options.message.max.bytes to at least {} (and the topics' max.message.bytes on the broker to "
        "match)",
        config.source, ConfigLine(config.source, {std::string("functions"), i, std::string("max_payload")}),
        i, f.max_payload, kRunnelHeadersAllowance, limit, i, fits, need));
  }
}

Truncation FitDeadLetter(Record& record, std::size_t own_headers, std::size_t max_bytes) {
  Truncation t;
  t.value_size = record.value.size();
  own_headers = std::min(own_headers, record.headers.size());
  if (RecordWireSize(record) <= max_bytes) return t;

  // 1. The value, cut to what fits beside the headers (and the header saying so).
  if (!record.value.empty()) {
    t.value_cut = true;
    record.headers.push_back({std::string(header::kTruncated), std::to_string(t.value_size)});
    ++own_headers;
    std::string value = std::move(record.value);
    record.value.clear();
    const std::size_t without_value = RecordWireSize(record);
    if (without_value <= max_bytes) {
      value.resize(max_bytes - without_value);
      record.value = std::move(value);
      return t;
    }
  }
  // 2. The original's headers.
  const std::size_t original = record.headers.size() - own_headers;
  if (original > 0) {
    record.headers.erase(record.headers.begin(),
                         record.headers.begin() + static_cast<std::ptrdiff_t>(original));
    t.headers_dropped = original;
    record.headers.push_back({std::string(header::kTruncatedHeaders), std::to_string(original)});
    if (RecordWireSize(record) <= max_bytes) return t;
  }
  // 3. The longest of Runnel's own values (the reason, usually), shortened until it fits.
  for (;;) {
    const std::size_t size = RecordWireSize(record);
    if (size <= max_bytes) return t;
    auto longest =
        std::max_element(record.headers.begin(), record.headers.end(),
                         [](const Header& a, const Header& b) { return a.value.size() < b.value.size(); });
    if (longest == record.headers.end() || longest->value.size() <= kCut.size()) {
      t.fits = false;
      return t;
    }
    const std::size_t over = size - max_bytes;
    const std::size_t keep =
        longest->value.size() > over + kCut.size() ? longest->value.size() - over - kCut.size() : 0;
    longest->value.resize(keep);
    longest->value += kCut;
  }
}

}  // namespace runnel::kafka
