#include "iot/params.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <string_view>

#include "runnel/functions/function.hpp"

namespace runnel::functions::iot {
namespace {

[[noreturn]] void Bad(std::string_view key, std::string_view why, const nlohmann::json& got) {
  throw FunctionError(Errc::kBadConfig,
                      fmt::format("iot.ingest: params.{} {}, got {}", key, why, got.dump()));
}

void RejectUnknownKeys(const nlohmann::json& object, std::string_view prefix,
                       std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw FunctionError(Errc::kBadConfig, fmt::format("iot.ingest: unknown param '{}{}' (known: {})",
                                                        prefix, key, fmt::join(known, ", ")));
    }
  }
}

std::int64_t Integer(const nlohmann::json& object, std::string_view key, std::string_view path,
                     std::int64_t fallback, std::int64_t lo, std::int64_t hi) {
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (!it->is_number_integer() || it->get<std::int64_t>() < lo || it->get<std::int64_t>() > hi) {
    Bad(path, fmt::format("must be an integer in {}..{}", lo, hi), *it);
  }
  return it->get<std::int64_t>();
}

std::optional<double> OptionalNumber(const nlohmann::json& object, std::string_view key,
                                     std::string_view path) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) Bad(path, "must be a number", *it);
  return it->get<double>();
}

const nlohmann::json& Object(const nlohmann::json& value, std::string_view path) {
  if (!value.is_object()) Bad(path, "must be an object", value);
  return value;
}

MetricRule ParseRule(const std::string& name, const nlohmann::json& spec) {
  const std::string path = "schema.metrics." + name;
  Object(spec, path);
  RejectUnknownKeys(spec, path + ".", {"type", "min", "max"});
  MetricRule rule{name, MetricType::kNumber, OptionalNumber(spec, "min", path + ".min"),
                  OptionalNumber(spec, "max", path + ".max")};
  if (auto it = spec.find("type"); it != spec.end()) {
    const std::string type = it->is_string() ? it->get<std::string>() : std::string();
    if (type == "number") {
      rule.type = MetricType::kNumber;
    } else if (type == "integer") {
      rule.type = MetricType::kInteger;
    } else if (type == "bool" || type == "boolean") {
      rule.type = MetricType::kBool;
    } else {
      Bad(path + ".type", "must be \"number\", \"integer\" or \"bool\"", *it);
    }
  }
  if (rule.type == MetricType::kBool && (rule.min || rule.max)) {
    Bad(path, "is a bool metric and cannot have min or max", spec);
  }
  if (rule.min && rule.max && *rule.min > *rule.max) Bad(path, "has min above max", spec);
  return rule;
}

void ParseSchema(const nlohmann::json& schema, IngestParams& out) {
  Object(schema, "schema");
  RejectUnknownKeys(schema, "schema.", {"required", "metrics", "allow_unknown_metrics"});
  if (auto it = schema.find("metrics"); it != schema.end()) {
    for (const auto& [name, spec] : Object(*it, "schema.metrics").items()) {
      if (name.empty()) Bad("schema.metrics", "cannot declare an empty metric name", *it);
      out.metrics.push_back(ParseRule(name, spec));
    }
  }
  if (auto it = schema.find("allow_unknown_metrics"); it != schema.end()) {
    if (!it->is_boolean()) Bad("schema.allow_unknown_metrics", "must be true or false", *it);
    out.allow_unknown_metrics = it->get<bool>();
  }
  if (auto it = schema.find("required"); it != schema.end()) {
    if (!it->is_array()) Bad("schema.required", "must be an array of field names", *it);
    for (const auto& name : *it) {
      if (!name.is_string() || name.get<std::string>().empty()) {
        Bad("schema.required", "must hold non-empty strings", name);
      }
      const auto field = name.get<std::string>();
      // device and ts are always required; listing them is allowed and changes nothing.
      if (field == "device" || field == "ts") continue;
      const bool declared = std::any_of(out.metrics.begin(), out.metrics.end(),
                                        [&](const MetricRule& rule) { return rule.name == field; });
      if (!declared && !out.allow_unknown_metrics) {
        Bad("schema.required", fmt::format("names '{}', which schema.metrics does not declare", field), *it);
      }
      out.required.push_back(field);
    }
  }
}

void ParseThresholds(const nlohmann::json& thresholds, IngestParams& out) {
  for (const auto& [name, spec] : Object(thresholds, "thresholds").items()) {
    const std::string path = "thresholds." + name;
    Object(spec, path);
    RejectUnknownKeys(spec, path + ".", {"above", "below"});
    Threshold threshold{name, OptionalNumber(spec, "above", path + ".above"),
                        OptionalNumber(spec, "below", path + ".below")};
    if (!threshold.above && !threshold.below) Bad(path, "needs \"above\" or \"below\"", spec);
    out.thresholds.push_back(std::move(threshold));
  }
}

void ParseAnomaly(const nlohmann::json& anomaly, IngestParams& out) {
  if (anomaly.is_boolean()) {
    out.anomaly_enabled = anomaly.get<bool>();
    return;
  }
  Object(anomaly, "anomaly");
  RejectUnknownKeys(anomaly, "anomaly.", {"enabled", "z", "min_samples"});
  if (auto it = anomaly.find("enabled"); it != anomaly.end()) {
    if (!it->is_boolean()) Bad("anomaly.enabled", "must be true or false", *it);
    out.anomaly_enabled = it->get<bool>();
  }
  if (auto it = anomaly.find("z"); it != anomaly.end()) {
    if (!it->is_number() || !(it->get<double>() > 0.0)) Bad("anomaly.z", "must be a number above 0", *it);
    out.anomaly_z = it->get<double>();
  }
  out.anomaly_min_samples =
      static_cast<std::size_t>(Integer(anomaly, "min_samples", "anomaly.min_samples", 10, 2, 1'000'000));
}

}  // namespace

IngestParams ParseIngestParams(const nlohmann::json& params) {
  IngestParams out;
  if (params.is_null()) return out;
  Object(params, "(root)");
  // Batching moved out of params to the function's own `batch` key (one place for every function).
  for (const std::string_view moved : {"batch_size", "batch_window_ms"}) {
    if (params.contains(moved)) {
      throw FunctionError(
          Errc::kBadConfig,
          fmt::format("iot.ingest: params.{} is no longer a param: set the function's batch key "
                      "instead, e.g. batch: {{size: 100, window: 500ms}} (docs/config.md)",
                      moved));
    }
  }
  RejectUnknownKeys(params, "",
                    {"window_ms", "max_lateness_ms", "max_future_ms", "max_line_bytes", "max_event_bytes",
                     "max_errors", "schema", "thresholds", "anomaly", "alerts_topic"});
  constexpr std::int64_t kWeekMs = 7LL * 24 * 3600 * 1000;
  out.window_ms = Integer(params, "window_ms", "window_ms", out.window_ms, 1, kWeekMs);
  out.max_lateness_ms =
      Integer(params, "max_lateness_ms", "max_lateness_ms", out.max_lateness_ms, 0, 10LL * 365 * 86400000);
  out.max_future_ms = Integer(params, "max_future_ms", "max_future_ms", out.max_future_ms, 0, kWeekMs);
  out.max_line_bytes =
      static_cast<std::size_t>(Integer(params, "max_line_bytes", "max_line_bytes",
                                       static_cast<std::int64_t>(out.max_line_bytes), 16, 64 << 20));
  out.max_event_bytes =
      static_cast<std::size_t>(Integer(params, "max_event_bytes", "max_event_bytes",
                                       static_cast<std::int64_t>(out.max_event_bytes), 16, 1LL << 32));
  out.max_errors = static_cast<std::size_t>(
      Integer(params, "max_errors", "max_errors", static_cast<std::int64_t>(out.max_errors), 0, 100'000));
  if (auto it = params.find("schema"); it != params.end()) ParseSchema(*it, out);
  if (auto it = params.find("thresholds"); it != params.end()) ParseThresholds(*it, out);
  if (auto it = params.find("anomaly"); it != params.end()) ParseAnomaly(*it, out);
  if (auto it = params.find("alerts_topic"); it != params.end()) {
    if (!it->is_string() || it->get<std::string>().empty())
      Bad("alerts_topic", "must be a non-empty string", *it);
    out.alerts_topic = it->get<std::string>();
  }
  return out;
}

}  // namespace runnel::functions::iot
