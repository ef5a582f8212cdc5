#include "runnel/core/json.hpp"
#include "runnel/core/outcome.hpp"

#include <charconv>
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

namespace {

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// Appends `s` as a JSON string exactly as nlohmann's dump() writes an ASCII string: '"' and '\\'
// escaped, \b \f \n \r \t by name, other control characters as \u00xx, everything else as is.
void AppendString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out += '"';
  out += name;
  out += "\":";
  AppendString(out, value);
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
  if (!job_id.empty()) j["job"] = job_id;
  return JsonText(j);
}

// The meta frame is built once per event on the dispatcher's hot path. This writes it by hand, in
// nlohmann's key order (sorted) and escaping, when every string is ASCII and there is no files
// array; anything else goes through nlohmann (MetaJsonGeneric). Both give the same bytes
// (tests/unit/outcome_test.cpp).
std::string Outcome::MetaJson() const {
  const bool printable_key = key && IsPrintableUtf8(*key);
  if (!files_json.empty() || !IsAscii(id) || !IsAscii(function) || !IsAscii(topic) || !IsAscii(content_type) ||
      !IsAscii(worker) || !IsAscii(reply_to) || !IsAscii(trace_id) || !IsAscii(job_id) ||
      (printable_key && !IsAscii(*key)) ||
      (status != OutcomeStatus::kOk && (!IsAscii(error) || !IsAscii(error_kind)))) {
    return MetaJsonGeneric();
  }
  std::string out;
  out.reserve(160 + id.size() + function.size() + topic.size() + content_type.size() + worker.size() +
              reply_to.size() + trace_id.size() + job_id.size() + (key ? 2 * key->size() : 0) +
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
  AppendField(out, "status", StatusName(status));
  AppendField(out, "topic", topic);
  if (!trace_id.empty()) AppendField(out, "trace", trace_id);
  if (!worker.empty()) AppendField(out, "worker", worker);
  out.back() = '}';
  return out;
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
  if (j.contains("files")) o.files_json = JsonText(j["files"]);
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

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  const auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int pad = last ? (text[i + 3] == '=' ? (text[i + 2] == '=' ? 2 : 1) : 0) : 0;
    std::uint32_t n = 0;
    for (int k = 0; k < 4; ++k) {
      const int v = k >= 4 - pad ? 0 : value(text[i + static_cast<std::size_t>(k)]);
      if (v < 0) return std::nullopt;
      n = (n << 6) | static_cast<std::uint32_t>(v);
    }
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
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
