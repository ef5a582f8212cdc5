// iot.ingest's field decoding (see reading_fields.hpp): one JSON object in, one Reading and its
// Samples (or the Problem that rejects it) out. The framing that finds the objects is in
// reading_parser.cpp.
#include "iot/reading_fields.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "iot/timestamp.hpp"

namespace runnel::functions::iot {
namespace {

namespace od = simdjson::ondemand;

constexpr std::size_t kMaxDeviceBytes = 256;
constexpr std::size_t kMaxMetricNameBytes = 128;

// Errors that concern one value's content rather than the document's structure.
bool IsValueError(simdjson::error_code error) {
  return error == simdjson::INCORRECT_TYPE || error == simdjson::NUMBER_ERROR ||
         error == simdjson::NUMBER_OUT_OF_RANGE;
}

// A key's text. Keys almost never hold escapes, so read them in place instead of unescaping a
// copy (unescaped_key) for every key of every reading.
simdjson::error_code KeyText(od::field& field, std::string_view& key) {
  const char* const begin = field.key().raw();
  const char* end = begin;
  // Stage 1 has validated the document, so the closing quote exists.
  while (*end != '"') {
    if (*end == '\\') return field.unescaped_key().get(key);
    ++end;
  }
  key = std::string_view(begin, static_cast<std::size_t>(end - begin));
  return simdjson::SUCCESS;
}

// key == literal, compiled to a length check and one or two loads instead of a call to memcmp.
template <std::size_t N>
bool KeyIs(std::string_view key, const char (&literal)[N]) {
  return key.size() == N - 1 && std::memcmp(key.data(), literal, N - 1) == 0;
}

// The top-level keys of a reading.
enum class Key { kDevice, kTs, kMetrics, kOther };

Key KeyOf(std::string_view key) {
  if (KeyIs(key, "device")) return Key::kDevice;
  if (KeyIs(key, "ts")) return Key::kTs;
  if (KeyIs(key, "metrics")) return Key::kMetrics;
  return Key::kOther;
}

// The same for a key as it stands in the document (after its opening quote), without finding its
// end first: its bytes and then its closing quote. kOther also for an escaped spelling of a known
// key; KeyOf(KeyText) decides those. Reads at most 8 bytes: the document has its colon and value
// after the key, and the buffer is padded.
Key RawKeyOf(const char* raw) {
  if (std::memcmp(raw, "device\"", 7) == 0) return Key::kDevice;
  if (std::memcmp(raw, "ts\"", 3) == 0) return Key::kTs;
  if (std::memcmp(raw, "metrics\"", 8) == 0) return Key::kMetrics;
  return Key::kOther;
}

// A `ts` that is not an integer: an RFC 3339 string, or the reason it is rejected.
std::optional<Problem> ReadOtherTimestamp(od::value& value, std::int64_t& ts) {
  od::json_type type{};
  if (auto error = value.type().get(type)) return Malformed(error);
  if (type == od::json_type::number) {
    if (auto error = value.get_int64().get(ts)) {
      if (!IsValueError(error)) return Malformed(error);
      return Invalid("ts", "must be an integer number of milliseconds since the epoch or an RFC 3339 string");
    }
  } else if (type == od::json_type::string) {
    std::string_view text;
    if (auto error = value.get_string().get(text)) return Malformed(error);
    std::optional<std::int64_t> parsed = ParseRfc3339Ms(text);
    if (!parsed) {
      return Invalid("ts", fmt::format("\"{}\" is not an RFC 3339 timestamp such as 2024-05-01T12:00:00Z",
                                       text.substr(0, 64)));
    }
    ts = *parsed;
  } else {
    return Invalid("ts",
                   fmt::format("must be epoch milliseconds or an RFC 3339 string, got {}", TypeName(type)));
  }
  return std::nullopt;
}

// A metric value: a number or a bool (stored as 1/0). The caller names the field.
std::optional<Problem> ReadValue(od::value& value, Sample& sample) {
  if (value.get_double().get(sample.value) == simdjson::SUCCESS) return std::nullopt;
  od::json_type type{};
  if (auto error = value.type().get(type)) return Malformed(error);
  if (type == od::json_type::number) {
    if (auto error = value.get_double().get(sample.value)) {
      if (!IsValueError(error)) return Malformed(error);
      return Invalid({}, "is not a finite number");
    }
    return std::nullopt;
  }
  if (type == od::json_type::boolean) {
    bool flag = false;
    if (auto error = value.get_bool().get(flag)) return Malformed(error);
    sample.is_bool = true;
    sample.value = flag ? 1.0 : 0.0;
    return std::nullopt;
  }
  return Invalid({}, fmt::format("must be a number or a bool, got {}", TypeName(type)));
}

}  // namespace

std::string_view TypeName(od::json_type type) {
  switch (type) {
    case od::json_type::array:
      return "array";
    case od::json_type::object:
      return "object";
    case od::json_type::number:
      return "number";
    case od::json_type::string:
      return "string";
    case od::json_type::boolean:
      return "bool";
    case od::json_type::null:
      return "null";
  }
  return "unknown";
}

Problem Malformed(simdjson::error_code error) {
  return {true, {}, fmt::format("malformed JSON: {}", simdjson::error_message(error))};
}

Problem Invalid(std::string field, std::string reason) {
  return {false, std::move(field), std::move(reason)};
}

ReadingDecoder::ReadingDecoder(const IngestParams& params, ReadingStore& store)
    : params_(params), store_(store) {}

void ReadingDecoder::Reset() {
  for (CachedMetric& cached : metric_cache_) cached.index = NameTable::kNone;
  rules_.clear();
  required_.clear();
  for (const MetricRule& rule : params_.metrics) {
    const std::uint32_t index = store_.metrics.Intern(rule.name);
    if (rules_.size() <= index) rules_.resize(index + 1, nullptr);
    rules_[index] = &rule;
  }
  for (const std::string& name : params_.required) required_.push_back(store_.metrics.Intern(name));
}

void ReadingDecoder::StartEvent(std::uint32_t event, std::int64_t now_ms, const char* buffer_end) {
  event_ = event;
  now_ms_ = now_ms;
  buffer_end_ = buffer_end;
}

std::optional<Problem> ReadingDecoder::ReadReading(od::object& object, std::uint32_t position) {
  Reading reading{};
  reading.event = event_;
  reading.position = position;
  reading.first_sample = static_cast<std::uint32_t>(store_.samples.size());
  std::optional<Problem> problem = ReadFields(object, reading);
  if (problem) {
    store_.samples.resize(reading.first_sample);
    return problem;
  }
  reading.sample_count = static_cast<std::uint32_t>(store_.samples.size()) - reading.first_sample;
  store_.readings.push_back(reading);
  return std::nullopt;
}

void ReadingDecoder::DropLastReading() {
  store_.samples.resize(store_.readings.back().first_sample);
  store_.readings.pop_back();
}

std::optional<Problem> ReadingDecoder::ReadFields(od::object& object, Reading& reading) {
  bool have_device = false, have_ts = false, have_metrics = false;
  // The device is interned once the reading is read whole, so that its slot's cache miss
  // overlaps the reading of the other fields.
  std::string_view device_name;
  std::size_t device_hash = 0;
  flat_.clear();
  std::optional<Problem> flat_problem;
  for (auto field_result : object) {
    // value_unsafe() after the error check: copying the field out (get()) costs a store-forwarding
    // stall per field on this hot path.
    if (auto error = field_result.error()) return Malformed(error);
    od::field& field = field_result.value_unsafe();
    std::string_view key;  // only read for keys other than the three known ones
    Key kind = RawKeyOf(field.key().raw());
    if (kind == Key::kOther) {
      if (auto error = KeyText(field, key)) return Malformed(error);
      kind = KeyOf(key);
    }
    od::value& value = field.value();
    // Each value is first read as the type a clean reading has; only when that fails is its JSON
    // type looked up, for the reason. A failed get_* leaves the value unread.
    if (kind == Key::kDevice) {
      if (have_device) return Invalid("device", "duplicate field");
      have_device = true;
      std::string_view device;
      if (auto error = value.get_string().get(device)) {
        if (error != simdjson::INCORRECT_TYPE) return Malformed(error);
        od::json_type type{};
        if (auto type_error = value.type().get(type)) return Malformed(type_error);
        return Invalid("device", fmt::format("must be a string, got {}", TypeName(type)));
      }
      if (device.empty() || device.size() > kMaxDeviceBytes) {
        return Invalid("device", fmt::format("must be 1..{} bytes, got {}", kMaxDeviceBytes, device.size()));
      }
      device_name = device;
      device_hash = NameTable::Hash(device);
      store_.devices.Prefetch(device_hash);
    } else if (kind == Key::kTs) {
      if (have_ts) return Invalid("ts", "duplicate field");
      have_ts = true;
      if (std::optional<Problem> problem = ReadTimestamp(value, reading.ts)) return problem;
    } else if (kind == Key::kMetrics) {
      if (have_metrics) return Invalid("metrics", "duplicate field");
      have_metrics = true;
      od::object metrics;
      if (auto error = value.get_object().get(metrics)) {
        if (error != simdjson::INCORRECT_TYPE) return Malformed(error);
        od::json_type type{};
        if (auto type_error = value.type().get(type)) return Malformed(type_error);
        return Invalid("metrics", fmt::format("must be an object, got {}", TypeName(type)));
      }
      for (auto metric_result : metrics) {
        if (auto error = metric_result.error()) return Malformed(error);
        od::field& metric = metric_result.value_unsafe();
        std::string_view name;
        std::uint32_t index =
            CachedMetricAt(metric.key().raw(), store_.samples.size() - reading.first_sample, name);
        if (index == NameTable::kNone) {
          if (auto error = KeyText(metric, name)) return Malformed(error);
        }
        Sample sample{};
        od::value& metric_value = metric.value();
        if (metric_value.get_double().get(sample.value) != simdjson::SUCCESS) {
          if (std::optional<Problem> problem = ReadValue(metric_value, sample)) {
            problem->field = fmt::format("metrics.{}", name);
            return problem;
          }
        }
        if (std::optional<Problem> problem = AddSample(name, index, sample, reading, "metrics."))
          return problem;
      }
    } else {
      // Flat form candidates: only metrics when the reading has no "metrics" object (decided at
      // the end, since "metrics" may come last). In the nested form other fields are metadata.
      Sample sample{};
      std::optional<Problem> problem = ReadValue(value, sample);
      if (problem && problem->malformed) return problem;
      if (!problem) {
        flat_.push_back({key, sample});
      } else if (!flat_problem) {
        problem->field = std::string(key);
        flat_problem = std::move(problem);
      }
    }
  }
  if (!have_device) return Invalid("device", "missing required field");
  if (!have_ts) return Invalid("ts", "missing required field");
  if (!have_metrics) {
    if (flat_problem) {
      flat_problem->reason += " (a reading without a \"metrics\" object has its metrics at the top level)";
      return flat_problem;
    }
    for (const auto& [name, sample] : flat_) {
      if (std::optional<Problem> problem = AddSample(name, NameTable::kNone, sample, reading, ""))
        return problem;
    }
  }
  for (const std::uint32_t metric : required_) {
    if (!HasMetric(reading, metric)) {
      return Invalid(fmt::format("{}{}", have_metrics ? "metrics." : "", store_.metrics.Name(metric)),
                     "missing required metric");
    }
  }
  reading.device = store_.devices.Intern(device_name, device_hash);
  return std::nullopt;
}

std::optional<Problem> ReadingDecoder::ReadTimestamp(od::value& value, std::int64_t& ts) {
  if (value.get_int64().get(ts) != simdjson::SUCCESS) {
    if (std::optional<Problem> problem = ReadOtherTimestamp(value, ts)) return problem;
  }
  if (ts < kMinReadingTsMs) {
    const bool looks_like_seconds = ts >= kMinReadingTsMs / 1000 && ts < 100'000'000'000;
    return Invalid("ts", fmt::format("{} is before 2000-01-01T00:00:00Z{}", ts,
                                     looks_like_seconds ? " (seconds instead of milliseconds?)" : ""));
  }
  if (ts - now_ms_ > params_.max_future_ms) {
    return Invalid("ts", fmt::format("{} ({}) is {} ms ahead of the processing clock (max_future_ms {})", ts,
                                     FormatRfc3339Ms(ts), ts - now_ms_, params_.max_future_ms));
  }
  return std::nullopt;
}

// `metric` is the name's index when the caller knows it (a valid, known name), else kNone.
std::optional<Problem> ReadingDecoder::AddSample(std::string_view name, std::uint32_t metric, Sample sample,
                                                 const Reading& reading, std::string_view prefix) {
  const SampleIssue issue = CheckSample(name, metric, sample, reading);
  if (issue != SampleIssue::kNone) return SampleProblem(issue, name, metric, sample, prefix);
  sample.metric = metric;
  store_.samples.push_back(sample);
  return std::nullopt;
}

// Resolves `metric` when it is kNone.
ReadingDecoder::SampleIssue ReadingDecoder::CheckSample(std::string_view name, std::uint32_t& metric,
                                                        const Sample& sample, const Reading& reading) {
  if (name.empty() || name.size() > kMaxMetricNameBytes) return SampleIssue::kNameLength;
  if (metric == NameTable::kNone) metric = LookupMetric(name, store_.samples.size() - reading.first_sample);
  if (metric == NameTable::kNone) return SampleIssue::kUnknown;
  if (metric < rules_.size() && rules_[metric] != nullptr) {
    const MetricRule& rule = *rules_[metric];
    if ((rule.type == MetricType::kBool) != sample.is_bool) return SampleIssue::kType;
    if (rule.type == MetricType::kInteger && std::trunc(sample.value) != sample.value) {
      return SampleIssue::kInteger;
    }
    if (rule.min && sample.value < *rule.min) return SampleIssue::kBelow;
    if (rule.max && sample.value > *rule.max) return SampleIssue::kAbove;
  }
  if (HasMetric(reading, metric)) return SampleIssue::kDuplicate;
  return SampleIssue::kNone;
}

Problem ReadingDecoder::SampleProblem(SampleIssue issue, std::string_view name, std::uint32_t metric,
                                      const Sample& sample, std::string_view prefix) const {
  std::string field = fmt::format("{}{}", prefix, name.substr(0, kMaxMetricNameBytes));
  const MetricRule* rule = metric < rules_.size() ? rules_[metric] : nullptr;
  switch (issue) {
    case SampleIssue::kNameLength:
      return Invalid(std::move(field), fmt::format("metric names must be 1..{} bytes", kMaxMetricNameBytes));
    case SampleIssue::kUnknown:
      return Invalid(std::move(field), "unknown metric (schema.allow_unknown_metrics is false)");
    case SampleIssue::kType:
      return Invalid(std::move(field),
                     fmt::format("must be a {}, got {}", rule->type == MetricType::kBool ? "bool" : "number",
                                 sample.is_bool ? "bool" : "number"));
    case SampleIssue::kInteger:
      return Invalid(std::move(field), fmt::format("must be an integer, got {}", sample.value));
    case SampleIssue::kBelow:
      return Invalid(std::move(field), fmt::format("{} is below the minimum {}", sample.value, *rule->min));
    case SampleIssue::kAbove:
      return Invalid(std::move(field), fmt::format("{} is above the maximum {}", sample.value, *rule->max));
    case SampleIssue::kDuplicate:
    case SampleIssue::kNone:
      break;
  }
  return Invalid(std::move(field), "duplicate metric");
}

// Readings of one stream list the same metrics in the same order, so the name seen at this
// position last time usually answers without hashing.
std::uint32_t ReadingDecoder::LookupMetric(std::string_view name, std::size_t position) {
  CachedMetric* cached = position < metric_cache_.size() ? &metric_cache_[position] : nullptr;
  if (cached != nullptr && cached->index != NameTable::kNone && SameName(cached->name, name))
    return cached->index;
  const std::uint32_t metric =
      params_.allow_unknown_metrics ? store_.metrics.Intern(name) : store_.metrics.Find(name);
  if (cached != nullptr && metric != NameTable::kNone) {
    cached->name.assign(name);
    cached->index = metric;
    cached->plain = name.find_first_of("\"\\") == std::string_view::npos;
  }
  return metric;
}

// The metric cached at this position when the key at `raw` (after its opening quote) spells its
// name and ends there, with `name` set to it; else kNone. Only names without quotes or
// backslashes are matched this way, so equal bytes followed by a quote are the whole key.
std::uint32_t ReadingDecoder::CachedMetricAt(const char* raw, std::size_t position,
                                             std::string_view& name) const {
  if (position >= metric_cache_.size()) return NameTable::kNone;
  const CachedMetric& cached = metric_cache_[position];
  const std::size_t length = cached.name.size();
  if (cached.index == NameTable::kNone || !cached.plain ||
      length >= static_cast<std::size_t>(buffer_end_ - raw)) {
    return NameTable::kNone;
  }
  if (!SameName(std::string_view(raw, length), cached.name) || raw[length] != '"') return NameTable::kNone;
  name = std::string_view(raw, length);
  return cached.index;
}

bool ReadingDecoder::HasMetric(const Reading& reading, std::uint32_t metric) const {
  for (std::size_t i = reading.first_sample; i < store_.samples.size(); ++i) {
    if (store_.samples[i].metric == metric) return true;
  }
  return false;
}

}  // namespace runnel::functions::iot
