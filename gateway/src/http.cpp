#include "http.hpp"

#include <civetweb.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "runnel/core/json.hpp"

namespace runnel::gateway {

std::string_view StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
  }
}

Reply JsonReply(int status, const nlohmann::json& body) {
  Reply r;
  r.status = status;
  r.body = JsonText(body) + "\n";
  return r;
}

Reply JsonError(int status, std::string_view kind, std::string message, nlohmann::json extra) {
  nlohmann::json body = {{"error", kind}, {"message", std::move(message)}};
  if (extra.is_object()) body.update(extra);
  return JsonReply(status, body);
}

void Send(mg_connection* conn, const Reply& reply) {
  std::string head = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n", reply.status,
                                 StatusText(reply.status), reply.content_type, reply.body.size());
  for (const auto& [name, value] : reply.headers) head += fmt::format("{}: {}\r\n", name, value);
  head += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  mg_write(conn, head.data(), head.size());
  if (!reply.body.empty()) mg_write(conn, reply.body.data(), reply.body.size());
}

std::optional<std::string> Header(const mg_connection* conn, const char* name) {
  const char* v = mg_get_header(conn, name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::optional<std::string> QueryValue(const mg_connection* conn, const char* name, std::size_t max,
                                      bool& too_long) {
  too_long = false;
  const char* q = mg_get_request_info(conn)->query_string;
  if (q == nullptr) return std::nullopt;
  std::string buf(max + 1, '\0');
  const int n = mg_get_var(q, std::strlen(q), name, buf.data(), buf.size());
  too_long = n == -2;
  if (n < 0) return std::nullopt;  // -1 absent, -2 longer than max
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

std::string FileNameProblem(std::string_view name) {
  if (name.empty()) return "the file name is empty";
  if (name.size() > kMaxFileName)
    return fmt::format("the file name has {} bytes, more than {}", name.size(), kMaxFileName);
  if (name == "." || name == "..") return fmt::format("'{}' is not a file name", name);
  if (name.find("..") != std::string_view::npos) return "the file name must not contain '..'";
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == '\\') return "the file name must not contain '/' or '\\'";
    if (u < 0x20 || u == 0x7f) return "the file name must not contain NUL or other control characters";
  }
  return {};
}

std::string EventIdProblem(std::string_view id) {
  if (id.empty() || id.size() > 128) return "an event id has 1..128 characters";
  const bool ok = std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
  return ok ? std::string() : "an event id holds only [A-Za-z0-9._-]";
}

std::string HeaderValueProblem(std::string_view value, std::size_t max) {
  if (value.size() > max) return fmt::format("has {} bytes, more than {}", value.size(), max);
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return "holds a control character";
  }
  return {};
}

long long ContentLength(const mg_connection* conn) { return mg_get_request_info(conn)->content_length; }

std::variant<std::string, BodyTooLarge, BodyBroken> ReadBody(mg_connection* conn, std::size_t limit) {
  std::string body;
  const long long declared = ContentLength(conn);
  if (declared > 0) body.reserve(static_cast<std::size_t>(std::min<long long>(declared, 1 << 20)));
  std::vector<char> buf(64 * 1024);  // civetweb's threads have small stacks
  for (;;) {
    const int n = mg_read(conn, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) return BodyBroken{"the request body ended early (connection closed or timed out)"};
    if (body.size() + static_cast<std::size_t>(n) > limit) return BodyTooLarge{};
    body.append(buf.data(), static_cast<std::size_t>(n));
  }
  if (declared >= 0 && body.size() != static_cast<std::size_t>(declared))
    return BodyBroken{
        fmt::format("the body has {} bytes of the {} Content-Length says", body.size(), declared)};
  return body;
}

}  // namespace runnel::gateway
