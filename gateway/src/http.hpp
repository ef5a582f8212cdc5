// The gateway's HTTP vocabulary over civetweb: a reply (status, headers, body) and how it is sent,
// JSON errors, request headers, and the checks every hostile input goes through before use.
// Private to gateway/.
#pragma once

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

struct mg_connection;

namespace runnel::gateway {

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

std::string_view StatusText(int status);
// {"error": kind, "message": message, ...extra} with `status`.
Reply JsonError(int status, std::string_view kind, std::string message,
                nlohmann::json extra = nlohmann::json::object());
Reply JsonReply(int status, const nlohmann::json& body);
// Writes the reply; every reply closes the connection (the gateway keeps no connection alive, so
// an idle client never holds one of its threads).
void Send(mg_connection* conn, const Reply& reply);

// The first value of request header `name`; nullopt when absent.
std::optional<std::string> Header(const mg_connection* conn, const char* name);
// The value of query parameter `name`, decoded; nullopt when absent, or when longer than `max`
// (then `too_long` is set).
std::optional<std::string> QueryValue(const mg_connection* conn, const char* name, std::size_t max,
                                      bool& too_long);

// Why `name` cannot be a stored file's name (empty, too long, '/', '\\', NUL or other control
// characters, "." or ".."); empty when it can.
inline constexpr std::size_t kMaxFileName = 255;
std::string FileNameProblem(std::string_view name);
// Why `id` cannot be an event id (1..128 of [A-Za-z0-9._-]); empty when it can.
std::string EventIdProblem(std::string_view id);
// Why `value` cannot travel as a header value (control characters, over `max` bytes); empty when
// it can.
std::string HeaderValueProblem(std::string_view value, std::size_t max);

// The request body, read with mg_read up to `limit` bytes: its bytes, or why not.
struct BodyTooLarge {};
struct BodyBroken {
  std::string why;
};
std::variant<std::string, BodyTooLarge, BodyBroken> ReadBody(mg_connection* conn, std::size_t limit);
// The declared Content-Length, or -1 (none, or chunked).
long long ContentLength(const mg_connection* conn);

}  // namespace runnel::gateway
