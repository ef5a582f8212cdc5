#include "runnel/core/outcome.hpp"

#include <absl/strings/escaping.h>
#include <simdjson.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "runnel/core/error.hpp"
#include "runnel/core/json.hpp"

namespace runnel {

std::string_view StatusName(OutcomeStatus s) {
  switch (s) {
    case OutcomeStatus::kOk:
      return "ok";
    case OutcomeStatus::kError:
      return "error";
    case OutcomeStatus::kDeadLetter:
      return "dead-letter";
  }
  return "error";
}

namespace {

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out += '"';
  out += name;
  out += "\":";
  AppendJsonString(out, value);
  out += ',';
}

void AppendField(std::string& out, std::string_view name, std::int64_t value) {
  out += '"';
  out += name;
  out += "\":";
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
  out += ',';
}

}  // namespace

std::string Outcome::MetaJsonGeneric() const {
  nlohmann::json j = {{"id", id},
                      {"function", function},
                      {"status", StatusName(status)},
                      {"attempts", attempts},
                      {"topic", topic},
                      {"partition", partition},
                      {"offset", offset},
                      {"content_type", content_type},
                      {"duration_us", duration_us}};
  if (key) {
    if (IsPrintableUtf8(*key)) {
      j["key"] = *key;
    } else {
      j["key_base64"] = Base64Encode(*key);
    }
  }
  if (status != OutcomeStatus::kOk) {
    j["error"] = error;
    j["error_kind"] = error_kind;
  }
  if (!files_json.empty()) j["files"] = nlohmann::json::parse(files_json, nullptr, false);
  if (!worker.empty()) j["worker"] = worker;
  if (!reply_to.empty()) j["reply_to"] = reply_to;
  if (!trace_id.empty()) j["trace"] = trace_id;
  if (!span_id.empty()) j["span"] = span_id;
  if (!job_id.empty()) j["job"] = job_id;
  return JsonText(j);
}

// The meta frame is built once per event on the dispatcher's hot path. This writes it by hand, in
// nlohmann's key order (sorted) and escaping, when every string is ASCII and there is no files
// array; anything else goes through nlohmann (MetaJsonGeneric). Both give the same bytes
// (tests/unit/outcome_test.cpp).
std::string Outcome::MetaJson() const {
  const bool printable_key = key && IsPrintableUtf8(*key);
  if (!files_json.empty() || !IsAscii(id) || !IsAscii(function) || !IsAscii(topic) ||
      !IsAscii(content_type) || !IsAscii(worker) || !IsAscii(reply_to) || !IsAscii(trace_id) ||
      !IsAscii(span_id) || !IsAscii(job_id) || (printable_key && !IsAscii(*key)) ||
      (status != OutcomeStatus::kOk && (!IsAscii(error) || !IsAscii(error_kind)))) {
    return MetaJsonGeneric();
  }
  std::string out;
  out.reserve(160 + id.size() + function.size() + topic.size() + content_type.size() + worker.size() +
              reply_to.size() + trace_id.size() + span_id.size() + job_id.size() +
              (key ? 2 * key->size() : 0) +
              (status != OutcomeStatus::kOk ? error.size() + error_kind.size() : 0));
  out += '{';
  AppendField(out, "attempts", attempts);
  AppendField(out, "content_type", content_type);
  AppendField(out, "duration_us", duration_us);
  if (status != OutcomeStatus::kOk) {
    AppendField(out, "error", error);
    AppendField(out, "error_kind", error_kind);
  }
  AppendField(out, "function", function);
  AppendField(out, "id", id);
  if (!job_id.empty()) AppendField(out, "job", job_id);
  if (key) {
    if (printable_key) {
      AppendField(out, "key", *key);
    } else {
      AppendField(out, "key_base64", Base64Encode(*key));
    }
  }
  AppendField(out, "offset", offset);
  AppendField(out, "partition", partition);
  if (!reply_to.empty()) AppendField(out, "reply_to", reply_to);
  if (!span_id.empty()) AppendField(out, "span", span_id);
  AppendField(out, "status", StatusName(status));
  AppendField(out, "topic", topic);
  if (!trace_id.empty()) AppendField(out, "trace", trace_id);
  if (!worker.empty()) AppendField(out, "worker", worker);
  out.back() = '}';
  return out;
}

Outcome Outcome::FromFrames(std::string_view meta_json, std::string output) {
  const auto j = nlohmann::json::parse(meta_json, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error("results feed: the meta frame is not a JSON object", false);
  Outcome o;
  o.id = j.value("id", "");
  o.function = j.value("function", "");
  const std::string status = j.value("status", "error");
  o.status = status == "ok"            ? OutcomeStatus::kOk
             : status == "dead-letter" ? OutcomeStatus::kDeadLetter
                                       : OutcomeStatus::kError;
  o.attempts = j.value("attempts", 1);
  o.error = j.value("error", "");
  o.error_kind = j.value("error_kind", "");
  o.topic = j.value("topic", "");
  o.partition = j.value("partition", -1);
  o.offset = j.value("offset", std::int64_t{-1});
  if (j.contains("key")) o.key = j["key"].get<std::string>();
  o.content_type = j.value("content_type", "");
  if (j.contains("files")) o.files_json = JsonText(j["files"]);
  o.duration_us = j.value("duration_us", std::int64_t{0});
  o.worker = j.value("worker", "");
  o.reply_to = j.value("reply_to", "");
  o.trace_id = j.value("trace", "");
  o.span_id = j.value("span", "");
  o.job_id = j.value("job", "");
  o.output = std::move(output);
  return o;
}

nlohmann::json Outcome::ToJson(bool output_base64) const {
  auto j = nlohmann::json::parse(MetaJson());
  if (output_base64 || !IsPrintableUtf8(output)) {
    j["output_base64"] = Base64Encode(output);
  } else {
    j["output"] = output;
  }
  if (status == OutcomeStatus::kOk) j["error"] = nullptr;
  if (!key) j["key"] = nullptr;
  return j;
}

// Debian's Abseil has its own string_view (ABSL_USES_STD_STRING_VIEW is off), hence the copies of the views.
std::string Base64Encode(std::string_view bytes) {
  return absl::Base64Escape(absl::string_view(bytes.data(), bytes.size()));
}

std::optional<std::string> Base64Decode(std::string_view text) {
  // absl also takes unpadded and non-canonical text; only what Base64Encode writes is accepted.
  std::string out;
  if (text.size() % 4 != 0 || !absl::Base64Unescape(absl::string_view(text.data(), text.size()), &out) ||
      Base64Encode(out) != text) {
    return std::nullopt;
  }
  return out;
}

bool IsPrintableUtf8(std::string_view s) {
  // simdjson rejects overlong forms, surrogates and code points past U+10FFFF; NUL is valid UTF-8
  // but cuts C strings and terminals, so it is not printable here.
  return s.find('\0') == std::string_view::npos && simdjson::validate_utf8(s.data(), s.size());
}

}  // namespace runnel
