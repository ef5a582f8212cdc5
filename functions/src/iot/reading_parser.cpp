#include "iot/reading_parser.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "iot/timestamp.hpp"
#include "runnel/functions/function.hpp"

namespace runnel::functions::iot {
namespace {

namespace od = simdjson::ondemand;

constexpr std::size_t kMaxDeviceBytes = 256;
constexpr std::size_t kMaxMetricNameBytes = 128;
constexpr std::size_t kErrorsInMessage = 3;

// A reading that cannot be accepted. `malformed` means the JSON itself is broken: a bad line is
// rejected alone, but a broken JSON array cannot be trusted past that point.
struct Problem {
  bool malformed = false;
  std::string field;
  std::string reason;
};

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

// True when the whole document was consumed (this simdjson has no document::at_end()).
bool AtEnd(od::document& doc) { return doc.current_location().error() == simdjson::OUT_OF_BOUNDS; }

bool IsBlank(const char* p, const char* end) {
  for (; p < end; ++p) {
    if (*p != ' ' && *p != '\t' && *p != '\r') return false;
  }
  return true;
}

std::string_view TrimLeft(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  return first == std::string_view::npos ? std::string_view() : text.substr(first);
}

}  // namespace

class ReadingParser::Impl {
 public:
  Impl(const IngestParams& params, ReadingStore& store) : params_(params), store_(store) { Reset(); }

  void Reset() {
    store_.Clear();
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

  EventReport Parse(std::string_view payload, std::uint32_t event, std::int64_t now_ms) {
    now_ms_ = now_ms;
    event_ = event;
    // simdjson reads up to SIMDJSON_PADDING bytes past a document's end: copy the payload once into
    // a zero-padded buffer that every line's view then shares.
    buffer_.resize(payload.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(buffer_.data(), payload.data(), payload.size());
    std::memset(buffer_.data() + payload.size(), 0, simdjson::SIMDJSON_PADDING);
    const std::string_view text(buffer_.data(), payload.size());

    const std::size_t readings_before = store_.readings.size();
    const std::size_t samples_before = store_.samples.size();
    EventReport report;
    report.first_reading = static_cast<std::uint32_t>(readings_before);
    try {
      const std::string_view start = TrimLeft(text);
      if (start.empty()) {
        throw FunctionError(Errc::kBadInput,
                            "iot.ingest: the payload is empty; expected JSON or NDJSON readings");
      }
      if (start.front() == '[') {
        report.kind = PositionKind::kIndex;
        ParseDocument(text, report);
      } else {
        ParseLines(text, report);
        // A single pretty-printed object spans several lines: when no line parsed on its own, try
        // the payload as one document before giving up on it.
        if (report.reading_count == 0 && start.front() == '{' && start.find('\n') != std::string_view::npos) {
          EventReport whole;
          whole.first_reading = report.first_reading;
          try {
            ParseDocument(text, whole);
            report = std::move(whole);
          } catch (const FunctionError&) {
            // not one document either: keep the per-line reasons
            store_.readings.resize(readings_before);
            store_.samples.resize(samples_before);
          }
        }
      }
      if (report.reading_count == 0) {
        throw FunctionError(Errc::kBadInput, NoValidReadingMessage(report));
      }
    } catch (...) {
      store_.readings.resize(readings_before);
      store_.samples.resize(samples_before);
      throw;
    }
    return report;
  }

 private:
  void ParseLines(std::string_view text, EventReport& report) {
    if (ParseStream(text, report)) return;
    ParseLineByLine(text, report);
  }

  static bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

  // The fast path for clean NDJSON: the whole payload through simdjson's iterate_many (stage 1 once
  // over the payload instead of once per line), with the same reading code. Clean means: every
  // document an object alone on its line, only whitespace between them, no line over
  // max_line_bytes, no malformed JSON. At the first thing that is not clean it undoes what it added
  // and returns false, and the line-by-line path parses the payload again, giving every line its
  // own reason; so both paths give the same result for any payload.
  bool ParseStream(std::string_view text, EventReport& report) {
    const std::size_t readings_before = store_.readings.size();
    const std::size_t samples_before = store_.samples.size();
    const EventReport fresh = report;
    const auto give_up = [&] {
      store_.readings.resize(readings_before);
      store_.samples.resize(samples_before);
      report = fresh;
      return false;
    };
    const std::size_t batch =
        std::max<std::size_t>(simdjson::dom::DEFAULT_BATCH_SIZE, 2 * params_.max_line_bytes);
    od::document_stream stream;
    if (parser_.iterate_many(text.data(), text.size(), batch).get(stream)) return give_up();
    const char* const base = text.data();
    std::size_t scanned = 0;  // text[0, scanned) is checked: documents' lines and whitespace
    std::uint32_t line = 1;   // the line at `scanned`
    for (auto it = stream.begin(); it != stream.end(); ++it) {
      auto document = *it;
      if (document.error()) return give_up();
      const std::size_t start = it.current_index();
      if (start < scanned) return give_up();  // a second document on a line
      for (std::size_t i = scanned; i < start; ++i) {
        if (!IsSpace(base[i])) return give_up();  // the rest of a document that spans lines
        line += base[i] == '\n' ? 1 : 0;
      }
      const void* newline = std::memchr(base + start, '\n', text.size() - start);
      const std::size_t end =
          newline ? static_cast<std::size_t>(static_cast<const char*>(newline) - base) : text.size();
      std::size_t line_begin = start;
      while (line_begin > 0 && base[line_begin - 1] != '\n') --line_begin;
      const std::size_t length = end - line_begin - (end > line_begin && base[end - 1] == '\r' ? 1 : 0);
      if (length > params_.max_line_bytes) return give_up();
      od::document_reference doc = document.value_unsafe();
      od::json_type type{};
      if (doc.type().get(type) || type != od::json_type::object) return give_up();
      od::object object;
      if (doc.get_object().get(object)) return give_up();
      if (std::optional<Problem> problem = ReadReading(object, line)) {
        if (problem->malformed) return give_up();
        Reject(report, line, std::move(*problem));
      } else {
        ++report.reading_count;
      }
      scanned = end;
    }
    if (stream.truncated_bytes() != 0) return give_up();
    for (std::size_t i = scanned; i < text.size(); ++i) {
      if (!IsSpace(base[i])) return give_up();
    }
    return true;
  }

  void ParseLineByLine(std::string_view text, EventReport& report) {
    const char* const buffer_end = buffer_.data() + buffer_.size();
    const char* p = text.data();
    const char* const end = p + text.size();
    std::uint32_t line = 0;
    while (p < end) {
      const char* newline = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      if (newline == nullptr) newline = end;
      ++line;
      std::size_t length = static_cast<std::size_t>(newline - p);
      if (length > 0 && p[length - 1] == '\r') --length;
      if (length > params_.max_line_bytes) {
        Reject(report, line,
               Invalid({}, fmt::format("line is {} bytes, over max_line_bytes {}", length,
                                       params_.max_line_bytes)));
      } else if (!IsBlank(p, p + length)) {
        const simdjson::padded_string_view view(p, length, static_cast<std::size_t>(buffer_end - p));
        ParseLine(view, line, report);
      }
      p = newline + 1;
    }
  }

  void ParseLine(const simdjson::padded_string_view& view, std::uint32_t line, EventReport& report) {
    od::document doc;
    if (auto error = parser_.iterate(view).get(doc)) return Reject(report, line, Malformed(error));
    od::json_type type{};
    if (auto error = doc.type().get(type)) return Reject(report, line, Malformed(error));
    if (type != od::json_type::object) {
      return Reject(report, line,
                    Invalid({}, fmt::format("a reading must be a JSON object, got {}", TypeName(type))));
    }
    od::object object;
    if (auto error = doc.get_object().get(object)) return Reject(report, line, Malformed(error));
    if (std::optional<Problem> problem = ReadReading(object, line))
      return Reject(report, line, std::move(*problem));
    if (!AtEnd(doc)) {
      DropLastReading();
      return Reject(report, line, Invalid({}, "malformed JSON: trailing content after the reading"));
    }
    ++report.reading_count;
  }

  // The whole payload as one document: an array of readings, or a single reading.
  void ParseDocument(std::string_view text, EventReport& report) {
    const std::string_view start = TrimLeft(text);
    const auto first_line = static_cast<std::uint32_t>(1 + std::count(text.data(), start.data(), '\n'));
    const simdjson::padded_string_view view(text.data(), text.size(), buffer_.size());
    od::document doc;
    auto fail = [&](const Problem& problem, std::string_view where) {
      throw FunctionError(Errc::kBadInput, fmt::format("iot.ingest: the payload is not valid JSON ({}): {}",
                                                       where, problem.reason));
    };
    if (auto error = parser_.iterate(view).get(doc)) fail(Malformed(error), "at the start");
    if (start.front() == '{') {
      od::object object;
      if (auto error = doc.get_object().get(object)) fail(Malformed(error), "in the object");
      std::optional<Problem> problem = ReadReading(object, first_line);
      if (problem && problem->malformed) fail(*problem, "in the object");
      if (problem) {
        Reject(report, first_line, std::move(*problem));
      } else {
        ++report.reading_count;
      }
    } else {
      od::array array;
      if (auto error = doc.get_array().get(array)) fail(Malformed(error), "at the start");
      std::uint32_t index = 0;
      for (auto element : array) {
        const std::string where = fmt::format("at index {}", index);
        od::value value;
        if (auto error = std::move(element).get(value)) fail(Malformed(error), where);
        od::json_type type{};
        if (auto error = value.type().get(type)) fail(Malformed(error), where);
        if (type != od::json_type::object) {
          Reject(report, index,
                 Invalid({}, fmt::format("a reading must be a JSON object, got {}", TypeName(type))));
        } else {
          od::object object;
          if (auto error = value.get_object().get(object)) fail(Malformed(error), where);
          std::optional<Problem> problem = ReadReading(object, index);
          if (problem && problem->malformed) fail(*problem, where);
          if (problem) {
            Reject(report, index, std::move(*problem));
          } else {
            ++report.reading_count;
          }
        }
        ++index;
      }
      if (index == 0) throw FunctionError(Errc::kBadInput, "iot.ingest: the payload is an empty JSON array");
    }
    if (!AtEnd(doc)) fail(Invalid({}, "trailing content after the document"), "at the end");
  }

  // Reads one reading. On success it is appended to the store; on a problem the store is as before.
  std::optional<Problem> ReadReading(od::object& object, std::uint32_t position) {
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

  void DropLastReading() {
    store_.samples.resize(store_.readings.back().first_sample);
    store_.readings.pop_back();
  }

  std::optional<Problem> ReadFields(od::object& object, Reading& reading) {
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
          return Invalid("device",
                         fmt::format("must be 1..{} bytes, got {}", kMaxDeviceBytes, device.size()));
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
        if (problem && !flat_problem) {
          problem->field = std::string(key);
          flat_problem = std::move(problem);
        }
        if (!problem) flat_.push_back({key, sample});
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

  std::optional<Problem> ReadTimestamp(od::value& value, std::int64_t& ts) {
    if (value.get_int64().get(ts) != simdjson::SUCCESS) {
      if (std::optional<Problem> problem = ReadOtherTimestamp(value, ts)) return problem;
    }
    if (ts < kMinReadingTsMs) {
      const bool looks_like_seconds = ts >= kMinReadingTsMs / 1000 && ts < 100'000'000'000;
      return Invalid("ts", fmt::format("{} is before 2000-01-01T00:00:00Z{}", ts,
                                       looks_like_seconds ? " (seconds instead of milliseconds?)" : ""));
    }
    if (ts - now_ms_ > params_.max_future_ms) {
      return Invalid("ts", fmt::format("{} ({}) is {} ms ahead of the processing clock (max_future_ms {})",
                                       ts, FormatRfc3339Ms(ts), ts - now_ms_, params_.max_future_ms));
    }
    return std::nullopt;
  }

  // A `ts` that is not an integer: an RFC 3339 string, or the reason it is rejected.
  static std::optional<Problem> ReadOtherTimestamp(od::value& value, std::int64_t& ts) {
    od::json_type type{};
    if (auto error = value.type().get(type)) return Malformed(error);
    if (type == od::json_type::number) {
      if (auto error = value.get_int64().get(ts)) {
        if (!IsValueError(error)) return Malformed(error);
        return Invalid("ts",
                       "must be an integer number of milliseconds since the epoch or an RFC 3339 string");
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
  static std::optional<Problem> ReadValue(od::value& value, Sample& sample) {
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

  // What is wrong with a metric sample, found without building any text (the hot path).
  enum class SampleIssue { kNone, kNameLength, kUnknown, kType, kInteger, kBelow, kAbove, kDuplicate };

  // `metric` is the name's index when the caller knows it (a valid, known name), else kNone.
  std::optional<Problem> AddSample(std::string_view name, std::uint32_t metric, Sample sample,
                                   const Reading& reading, std::string_view prefix) {
    const SampleIssue issue = CheckSample(name, metric, sample, reading);
    if (issue != SampleIssue::kNone) return SampleProblem(issue, name, metric, sample, prefix);
    sample.metric = metric;
    store_.samples.push_back(sample);
    return std::nullopt;
  }

  // Resolves `metric` when it is kNone.
  SampleIssue CheckSample(std::string_view name, std::uint32_t& metric, const Sample& sample,
                          const Reading& reading) {
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

  [[gnu::cold]] Problem SampleProblem(SampleIssue issue, std::string_view name, std::uint32_t metric,
                                      const Sample& sample, std::string_view prefix) const {
    std::string field = fmt::format("{}{}", prefix, name.substr(0, kMaxMetricNameBytes));
    const MetricRule* rule = metric < rules_.size() ? rules_[metric] : nullptr;
    switch (issue) {
      case SampleIssue::kNameLength:
        return Invalid(std::move(field),
                       fmt::format("metric names must be 1..{} bytes", kMaxMetricNameBytes));
      case SampleIssue::kUnknown:
        return Invalid(std::move(field), "unknown metric (schema.allow_unknown_metrics is false)");
      case SampleIssue::kType:
        return Invalid(std::move(field), fmt::format("must be a {}, got {}",
                                                     rule->type == MetricType::kBool ? "bool" : "number",
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
  std::uint32_t LookupMetric(std::string_view name, std::size_t position) {
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
  std::uint32_t CachedMetricAt(const char* raw, std::size_t position, std::string_view& name) const {
    if (position >= metric_cache_.size()) return NameTable::kNone;
    const CachedMetric& cached = metric_cache_[position];
    const std::size_t length = cached.name.size();
    if (cached.index == NameTable::kNone || !cached.plain ||
        length >= static_cast<std::size_t>(buffer_.data() + buffer_.size() - raw)) {
      return NameTable::kNone;
    }
    if (!SameName(std::string_view(raw, length), cached.name) || raw[length] != '"') return NameTable::kNone;
    name = std::string_view(raw, length);
    return cached.index;
  }

  bool HasMetric(const Reading& reading, std::uint32_t metric) const {
    for (std::size_t i = reading.first_sample; i < store_.samples.size(); ++i) {
      if (store_.samples[i].metric == metric) return true;
    }
    return false;
  }

  void Reject(EventReport& report, std::uint32_t position, Problem problem) {
    ++report.rejected;
    if (report.errors.size() < params_.max_errors) {
      report.errors.push_back({position, std::move(problem.field), std::move(problem.reason)});
    }
  }

  static std::string NoValidReadingMessage(const EventReport& report) {
    std::string message =
        fmt::format("iot.ingest: no valid reading in the payload ({} rejected)", report.rejected);
    const std::string_view where = report.kind == PositionKind::kLine ? "line" : "index";
    for (std::size_t i = 0; i < report.errors.size() && i < kErrorsInMessage; ++i) {
      const ReadingError& error = report.errors[i];
      fmt::format_to(std::back_inserter(message), "; {} {}: {}{}{}", where, error.position, error.field,
                     error.field.empty() ? "" : ": ", error.reason);
    }
    if (report.rejected > kErrorsInMessage) {
      fmt::format_to(std::back_inserter(message), "; and {} more", report.rejected - kErrorsInMessage);
    }
    return message;
  }

  const IngestParams& params_;
  ReadingStore& store_;
  od::parser parser_;
  std::string buffer_;
  std::vector<const MetricRule*> rules_;  // by metric index; nullptr when the schema does not declare it
  std::vector<std::uint32_t> required_;
  std::vector<std::pair<std::string_view, Sample>> flat_;
  struct CachedMetric {
    std::string name;
    std::uint32_t index = NameTable::kNone;
    bool plain = false;  // no quote or backslash in the name
  };
  std::array<CachedMetric, 16> metric_cache_;
  std::int64_t now_ms_ = 0;
  std::uint32_t event_ = 0;
};

ReadingParser::ReadingParser(const IngestParams& params, ReadingStore& store)
    : impl_(std::make_unique<Impl>(params, store)) {}
ReadingParser::~ReadingParser() = default;

void ReadingParser::Reset() { impl_->Reset(); }

EventReport ReadingParser::Parse(std::string_view payload, std::uint32_t event, std::int64_t now_ms) {
  return impl_->Parse(payload, event, now_ms);
}

}  // namespace runnel::functions::iot
