#include "runnel/core/envelope.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <random>

#include "runnel/core/trace_context.hpp"

namespace runnel {
namespace {

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == ':' || c == '-';
}

[[noreturn]] void Fail(std::string_view name, std::string_view why) {
  throw EnvelopeError(fmt::format("header '{}': {}", name, why));
}

// Shows a header value in an error message without flooding it or printing raw bytes.
std::string Shown(std::string_view value) {
  std::string out;
  for (char c : value.substr(0, 40)) {
    out +=
        (c >= 0x20 && c < 0x7f) ? std::string(1, c) : fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
  }
  if (value.size() > 40) out += "...";
  return out;
}

void CheckToken(std::string_view name, std::string_view value, std::size_t max) {
  if (value.empty()) Fail(name, "is empty");
  if (value.size() > max)
    Fail(name, fmt::format("is {} bytes, more than the limit of {}", value.size(), max));
  for (char c : value) {
    if (!IsIdChar(c)) {
      Fail(name, fmt::format("'{}' has a character outside [A-Za-z0-9._:-]", Shown(value)));
    }
  }
}

void CheckPrintable(std::string_view name, std::string_view value, std::size_t max) {
  if (value.empty()) Fail(name, "is empty");
  if (value.size() > max)
    Fail(name, fmt::format("is {} bytes, more than the limit of {}", value.size(), max));
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) Fail(name, fmt::format("'{}' is not printable ASCII", Shown(value)));
  }
}

template <typename Int>
Int ParseDecimal(std::string_view name, std::string_view value, Int lo, Int hi) {
  if (value.empty()) Fail(name, "is empty");
  Int parsed{};
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  // from_chars accepts a leading '-' for signed types; the protocol allows digits only.
  if (value.front() < '0' || value.front() > '9' || ec != std::errc() || end != value.data() + value.size()) {
    Fail(name, fmt::format("'{}' is not a decimal integer", Shown(value)));
  }
  if (parsed < lo || parsed > hi) Fail(name, fmt::format("{} is outside {}..{}", parsed, lo, hi));
  return parsed;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Characters a file URI path may carry unescaped (RFC 3986 pchar minus a few that confuse shells).
bool IsUriPathChar(char c) {
  return IsIdChar(c) || c == '/' || c == '~' || c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' ||
         c == ')' || c == '*' || c == '+' || c == ',' || c == ';' || c == '=' || c == '@';
}

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }()};
  return rng;
}

}  // namespace

Headers Envelope::Encode() const {
  Headers out;
  out.reserve(10 + extra.size());
  auto put = [&out](std::string_view name, std::string value) {
    out.push_back({std::string(name), std::move(value)});
  };
  if (!id.empty()) put(header::kId, id);
  if (!content_type.empty()) put(header::kContentType, content_type);
  if (attempt != 1) put(header::kAttempt, std::to_string(attempt));
  if (hop != 0) put(header::kHop, std::to_string(hop));
  if (!reply_to.empty()) put(header::kReplyTo, reply_to);
  if (deadline_ms) put(header::kDeadline, std::to_string(*deadline_ms));
  if (!trace_id.empty()) put(header::kTrace, trace_id);
  if (!trace_id.empty() && !span_id.empty())
    put(header::kTraceparent,
        FormatTraceparent({trace_id, span_id, trace_flags.empty() ? "00" : trace_flags}));
  if (file) {
    put(header::kFile, file->IsUrl() ? file->url : FileUriFromPath(file->path));
    if (file->size) put(header::kFileSize, std::to_string(*file->size));
    if (!file->name.empty()) put(header::kFileName, file->name);
  }
  if (!job_id.empty()) put(header::kJob, job_id);
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

Envelope Envelope::Decode(const Headers& headers) {
  Envelope env;
  std::array<int, 12> seen{};
  static constexpr std::array<std::string_view, 12> kOwned = {
      header::kId,       header::kContentType, header::kAttempt, header::kHop,
      header::kReplyTo,  header::kDeadline,    header::kTrace,   header::kFile,
      header::kFileSize, header::kFileName,    header::kJob,     header::kTraceparent};
  std::optional<TraceParent> parent;
  std::optional<std::uint64_t> file_size;
  std::string file_name;
  for (const Header& h : headers) {
    std::size_t which = kOwned.size();
    for (std::size_t i = 0; i < kOwned.size(); ++i) {
      if (h.name == kOwned[i]) which = i;
    }
    if (which == kOwned.size()) {
      env.extra.push_back(h);
      continue;
    }
    if (which == 11 && seen[which]++ > 0) {  // two traceparents: neither is believed, the trace restarts
      parent.reset();
      continue;
    }
    if (which != 11 && ++seen[which] > 1) Fail(h.name, "appears more than once");
    const std::string_view v = h.value;
    switch (which) {
      case 0:
        CheckToken(h.name, v, limits::kIdMax);
        env.id = v;
        break;
      case 1:
        CheckPrintable(h.name, v, limits::kContentTypeMax);
        if (v.find('/') == std::string_view::npos)
          Fail(h.name, fmt::format("'{}' is not a MIME type", Shown(v)));
        env.content_type = v;
        break;
      case 2:
        env.attempt = ParseDecimal<int>(h.name, v, 1, limits::kAttemptMax);
        break;
      case 3:
        env.hop = ParseDecimal<int>(h.name, v, 0, limits::kHopDecodeMax);
        break;
      case 4:
        CheckPrintable(h.name, v, limits::kReplyToMax);
        env.reply_to = v;
        break;
      case 5:
        env.deadline_ms = ParseDecimal<std::int64_t>(h.name, v, 1, std::numeric_limits<std::int64_t>::max());
        break;
      case 6:
        if (v.size() != 32) Fail(h.name, fmt::format("'{}' is not 32 hex digits", Shown(v)));
        for (char c : v) {
          if (HexValue(c) < 0 || (c >= 'A' && c <= 'F'))
            Fail(h.name, fmt::format("'{}' is not lowercase hex", Shown(v)));
        }
        if (v.find_first_not_of('0') == std::string_view::npos) Fail(h.name, "is all zeros");
        env.trace_id = v;
        break;
      case 7:
        if (v.size() > limits::kFileUriMax)
          Fail(h.name, fmt::format("is longer than {} bytes", limits::kFileUriMax));
        if (IsHttpUrl(v)) {
          env.file = FileRef{{}, std::nullopt, {}, CheckHttpUrl(v)};
        } else if (v.substr(0, 7) == "file://") {
          env.file = FileRef{PathFromFileUri(v), std::nullopt, {}};
        } else {
          // Only the scheme is shown: the rest of an unknown URL may hold credentials.
          const std::size_t scheme = v.find("://");
          Fail(h.name, fmt::format("'{}' is not a file://, http:// or https:// URI",
                                   scheme == std::string_view::npos ? Shown(v)
                                                                    : Shown(v.substr(0, scheme)) + "://..."));
        }
        break;
      case 8:
        file_size = ParseDecimal<std::uint64_t>(h.name, v, 0, std::numeric_limits<std::uint64_t>::max());
        break;
      case 9:
        if (v.empty()) Fail(h.name, "is empty");
        if (v.size() > limits::kFileNameMax)
          Fail(h.name, fmt::format("is longer than {} bytes", limits::kFileNameMax));
        if (v.find('/') != std::string_view::npos || v.find('\0') != std::string_view::npos || v == "." ||
            v == "..") {
          Fail(h.name, fmt::format("'{}' is not a plain file name", Shown(v)));
        }
        file_name = v;
        break;
      case 10:
        CheckToken(h.name, v, limits::kJobMax);
        env.job_id = v;
        break;
      case 11:
        parent = ParseTraceparent(v);  // an invalid one is dropped: the trace restarts (§1.4)
        break;
    }
  }
  if (parent) {  // the W3C header wins over runnel-trace: a tracing proxy may have rewritten it
    env.trace_id = std::move(parent->trace_id);
    env.span_id = std::move(parent->parent_id);
    env.trace_flags = std::move(parent->flags);
  }
  if ((file_size || !file_name.empty()) && !env.file) {
    Fail(file_size ? header::kFileSize : header::kFileName,
         fmt::format("is set without '{}'", header::kFile));
  }
  if (env.file) {
    env.file->size = file_size;
    env.file->name = file_name;
  }
  return env;
}

std::string FileUriFromPath(std::string_view path) {
  if (path.empty() || path.front() != '/')
    throw EnvelopeError(fmt::format("file path '{}' is not absolute", Shown(path)));
  std::string uri = "file://";
  for (char c : path) {
    if (c == '\0') throw EnvelopeError("file path contains a NUL byte");
    if (IsUriPathChar(c)) {
      uri += c;
    } else {
      uri += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return uri;
}

std::string PathFromFileUri(std::string_view uri) {
  const std::string_view name = header::kFile;
  constexpr std::string_view kScheme = "file://";
  if (uri.substr(0, kScheme.size()) != kScheme)
    Fail(name, fmt::format("'{}' is not a file:// URI", Shown(uri)));
  std::string_view rest = uri.substr(kScheme.size());
  if (rest.substr(0, 9) == "localhost") rest.remove_prefix(9);
  if (rest.empty() || rest.front() != '/') {
    Fail(name, fmt::format("'{}' names a host or a relative path; only local absolute paths are allowed",
                           Shown(uri)));
  }
  std::string path;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    char c = rest[i];
    if (c == '%') {
      int hi = i + 2 < rest.size() ? HexValue(rest[i + 1]) : -1;
      int lo = i + 2 < rest.size() ? HexValue(rest[i + 2]) : -1;
      if (hi < 0 || lo < 0) Fail(name, fmt::format("'{}' has a bad percent escape", Shown(uri)));
      c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') Fail(name, "decodes to a path with a NUL byte");
      i += 2;
    } else if (c == '?' || c == '#') {
      Fail(name, fmt::format("'{}' has a query or fragment", Shown(uri)));
    }
    path += c;
  }
  // Reject dot segments: a reference must name its file directly.
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t next = path.find('/', pos + 1);
    std::string_view seg = std::string_view(path).substr(
        pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    if (seg == "." || seg == "..") Fail(name, fmt::format("'{}' has a '.' or '..' segment", Shown(uri)));
    pos = next == std::string::npos ? path.size() : next;
  }
  if (path.back() == '/') Fail(name, fmt::format("'{}' names a directory", Shown(uri)));
  return path;
}

bool IsHttpUrl(std::string_view value) {
  return value.starts_with("http://") || value.starts_with("https://");
}

std::string UrlForLogs(std::string_view url) {
  if (!IsHttpUrl(url)) return "(not an http(s) URL)";
  const std::size_t scheme_end = url.find("://");
  const std::size_t start = scheme_end + 3;
  const std::size_t authority_end = std::min(url.find_first_of("/?#", start), url.size());
  std::string_view authority = url.substr(start, authority_end - start);
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos)
    authority.remove_prefix(at + 1);
  const std::size_t path_end = std::min(url.find_first_of("?#", authority_end), url.size());
  std::string_view path = url.substr(authority_end, path_end - authority_end);
  std::string out = fmt::format("{}{}{}", url.substr(0, start), authority, path.empty() ? "/" : path);
  for (char& c : out) {
    if (c < 0x21 || c > 0x7e) c = '?';
  }
  return out;
}

std::string CheckHttpUrl(std::string_view url) {
  const std::string_view name = header::kFile;
  if (!IsHttpUrl(url)) Fail(name, "is not an http:// or https:// URL");
  if (url.size() > limits::kFileUriMax)
    Fail(name, fmt::format("is longer than {} bytes", limits::kFileUriMax));
  for (char c : url) {
    // Before anything is shown: the message must not echo raw bytes, nor the query.
    if (c < 0x21 || c > 0x7e) {
      Fail(name, fmt::format("URL '{}' has a control character, space or non-ASCII byte (percent-encode it)",
                             Shown(UrlForLogs(url))));
    }
  }
  const std::size_t start = url.find("://") + 3;
  const std::size_t authority_end = std::min(url.find_first_of("/?#", start), url.size());
  const std::string_view authority = url.substr(start, authority_end - start);
  if (authority.find('@') != std::string_view::npos) {
    // The userinfo is a credential: the message names the rule and the host, never the userinfo.
    Fail(name, fmt::format("URL '{}' has userinfo (user:password@ before the host), which is not allowed",
                           Shown(UrlForLogs(url))));
  }
  std::string_view host = authority;
  std::string_view port;
  if (host.starts_with('[')) {  // an IPv6 literal
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos || close == 1)
      Fail(name, fmt::format("URL '{}' has a bad IPv6 host", Shown(UrlForLogs(url))));
    for (char c : host.substr(1, close - 1)) {
      if (HexValue(c) < 0 && c != ':' && c != '.')
        Fail(name, fmt::format("URL '{}' has a bad IPv6 host", Shown(UrlForLogs(url))));
    }
    const std::string_view after = host.substr(close + 1);
    if (!after.empty() && after.front() != ':')
      Fail(name, fmt::format("URL '{}' has a bad IPv6 host", Shown(UrlForLogs(url))));
    if (!after.empty()) port = after.substr(1);
    host = host.substr(0, close + 1);
  } else if (const std::size_t colon = host.find(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (port.empty()) Fail(name, fmt::format("URL '{}' has an empty port", Shown(UrlForLogs(url))));
  }
  if (host.empty()) Fail(name, fmt::format("URL '{}' has no host", Shown(UrlForLogs(url))));
  for (char c : host.starts_with('[') ? std::string_view() : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-' || c == '_';
    if (!ok) {
      Fail(name, fmt::format("URL '{}' has a character outside [A-Za-z0-9._-] in its host",
                             Shown(UrlForLogs(url))));
    }
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.front() < '0' || port.front() > '9' || ec != std::errc() || end != port.data() + port.size() ||
        value == 0 || value > 65535) {
      Fail(name, fmt::format("URL '{}' has a port outside 1..65535", Shown(UrlForLogs(url))));
    }
  }
  const std::string_view rest = url.substr(authority_end);
  if (rest.find('#') != std::string_view::npos) {
    Fail(name, fmt::format("URL '{}' has a fragment ('#'), which is never sent to the server",
                           Shown(UrlForLogs(url))));
  }
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '%' && (i + 2 >= rest.size() || HexValue(rest[i + 1]) < 0 || HexValue(rest[i + 2]) < 0))
      Fail(name, fmt::format("URL '{}' has a bad percent escape", Shown(UrlForLogs(url))));
  }
  return std::string(url);
}

std::string NewEventId() {
  static constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const auto now_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     std::chrono::system_clock::now().time_since_epoch())
                                                     .count());
  const std::uint64_t r1 = Rng()();
  const std::uint64_t r2 = Rng()();
  // 128 bits, big-endian: 48 time bits, then 80 random bits.
  std::array<std::uint8_t, 16> bytes{};
  for (int i = 0; i < 6; ++i)
    bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(now_ms >> (40 - 8 * i));
  for (std::size_t i = 0; i < 2; ++i) bytes[6 + i] = static_cast<std::uint8_t>(r1 >> (8 * i));
  for (std::size_t i = 0; i < 8; ++i) bytes[8 + i] = static_cast<std::uint8_t>(r2 >> (8 * i));
  // 26 base32 digits cover 130 bits: the first digit carries the top 3 bits (2 leading zero bits).
  auto bit = [&bytes](int index) {  // index 0 is the top bit of the 130-bit number
    const int b = index - 2;
    if (b < 0) return 0;
    return (bytes[static_cast<std::size_t>(b / 8)] >> (7 - b % 8)) & 1;
  };
  std::string id(26, '0');
  for (int digit = 0; digit < 26; ++digit) {
    int value = 0;
    for (int k = 0; k < 5; ++k) value = (value << 1) | bit(digit * 5 + k);
    id[static_cast<std::size_t>(digit)] = kCrockford[value];
  }
  return id;
}

std::string InvalidTraceparent(const Headers& headers) {
  int count = 0;
  std::string why;
  for (const Header& h : headers) {
    if (h.name != header::kTraceparent) continue;
    if (++count > 1) return "traceparent appears more than once";
    if (!ParseTraceparent(h.value, &why)) why = "traceparent " + why;
  }
  return why;
}

Headers WithTraceContext(Headers headers, std::string_view trace_id, std::string_view span_id,
                         std::string_view flags) {
  std::erase_if(headers,
                [](const Header& h) { return h.name == header::kTrace || h.name == header::kTraceparent; });
  if (trace_id.empty()) return headers;
  headers.push_back({std::string(header::kTrace), std::string(trace_id)});
  if (!span_id.empty()) {
    headers.push_back(
        {std::string(header::kTraceparent), FormatTraceparent({std::string(trace_id), std::string(span_id),
                                                               flags.empty() ? "00" : std::string(flags)})});
  }
  return headers;
}

std::string NewTraceId() {
  std::string id;
  do {
    id = fmt::format("{:016x}{:016x}", Rng()(), Rng()());
  } while (id.find_first_not_of('0') == std::string::npos);
  return id;
}

}  // namespace runnel
