#include "runnel/core/outcome.hpp"

#include <nlohmann/json.hpp>

#include "runnel/core/error.hpp"

namespace runnel {

std::string_view StatusName(OutcomeStatus s) {
  switch (s) {
    case OutcomeStatus::kOk: return "ok";
    case OutcomeStatus::kError: return "error";
    case OutcomeStatus::kDeadLetter: return "dead-letter";
  }
  return "error";
}

std::string Outcome::MetaJson() const {
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
  if (!job_id.empty()) j["job"] = job_id;
  return j.dump();
}

Outcome Outcome::FromFrames(std::string_view meta_json, std::string output) {
  const auto j = nlohmann::json::parse(meta_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error("results feed: the meta frame is not a JSON object", false);
  Outcome o;
  o.id = j.value("id", "");
  o.function = j.value("function", "");
  const std::string status = j.value("status", "error");
  o.status = status == "ok" ? OutcomeStatus::kOk : status == "dead-letter" ? OutcomeStatus::kDeadLetter : OutcomeStatus::kError;
  o.attempts = j.value("attempts", 1);
  o.error = j.value("error", "");
  o.error_kind = j.value("error_kind", "");
  o.topic = j.value("topic", "");
  o.partition = j.value("partition", -1);
  o.offset = j.value("offset", std::int64_t{-1});
  if (j.contains("key")) o.key = j["key"].get<std::string>();
  o.content_type = j.value("content_type", "");
  if (j.contains("files")) o.files_json = j["files"].dump();
  o.duration_us = j.value("duration_us", std::int64_t{0});
  o.worker = j.value("worker", "");
  o.reply_to = j.value("reply_to", "");
  o.trace_id = j.value("trace", "");
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

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const auto n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                   static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == bytes.size()) {
    const auto n = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const auto n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

bool IsPrintableUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    std::size_t extra = 0;
    if (c < 0x80) extra = 0;
    else if ((c & 0xE0) == 0xC0 && c >= 0xC2) extra = 1;
    else if ((c & 0xF0) == 0xE0) extra = 2;
    else if ((c & 0xF8) == 0xF0 && c <= 0xF4) extra = 3;
    else return false;
    if (i + extra >= s.size()) return false;  // a sequence cut off by the end
    for (std::size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

}  // namespace runnel
