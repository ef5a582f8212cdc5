#include "runnel/core/listen.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>

namespace runnel {
namespace {

std::variant<std::uint16_t, std::string> ParsePort(std::string_view text) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > 65535) {
    return fmt::format("'{}' is not a port (0..65535)", text);
  }
  return static_cast<std::uint16_t>(value);
}

bool IsAddress(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::variant<ListenAddress, std::string> ListenAddress::Parse(std::string_view text) {
  ListenAddress out;
  std::string_view host = text;
  std::string_view ports;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return fmt::format("'{}': an IPv6 host needs its closing ]", text);
    host = text.substr(1, close - 1);
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) return fmt::format("'{}': expected :PORT after the ]", text);
      ports = rest.substr(1);
    }
  } else if (text.find(':') != text.rfind(':')) {
    // Two colons or more, no brackets: a bare IPv6 host, or one whose port cannot be told apart.
    if (!IsAddress(std::string(text))) {
      return fmt::format("'{}': write an IPv6 host in brackets, e.g. [::]:7000", text);
    }
  } else if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    ports = text.substr(colon + 1);
  }
  out.host = std::string(host);
  if (out.host == "localhost") out.host = "127.0.0.1";
  if (out.host == "*") out.host = "0.0.0.0";
  if (!IsAddress(out.host)) {
    return fmt::format("'{}': '{}' is not an IP address of this host (0.0.0.0 or :: for all of them)", text,
                       host);
  }
  if (!ports.empty()) {
    const auto dash = ports.find('-');
    auto low = ParsePort(ports.substr(0, dash));
    if (auto* e = std::get_if<std::string>(&low)) return fmt::format("'{}': {}", text, *e);
    out.port_low = out.port_high = std::get<std::uint16_t>(low);
    if (dash != std::string_view::npos) {
      auto high = ParsePort(ports.substr(dash + 1));
      if (auto* e = std::get_if<std::string>(&high)) return fmt::format("'{}': {}", text, *e);
      out.port_high = std::get<std::uint16_t>(high);
      if (out.port_low == 0 || out.port_high < out.port_low) {
        return fmt::format("'{}': a port range is LOW-HIGH with 1 <= LOW <= HIGH", text);
      }
    }
  }
  return out;
}

bool ListenAddress::IsLoopback() const {
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return host == "::1";
}

std::string ListenAddress::ZmqEndpoint(std::size_t i) const {
  const bool v6 = host.find(':') != std::string::npos;
  const std::string h = v6 ? fmt::format("[{}]", host) : host;
  if (port_low == 0) return fmt::format("tcp://{}:*", h);
  return fmt::format("tcp://{}:{}", h, port_low + i);
}

std::string ListenAddress::HostPort() const {
  const bool v6 = host.find(':') != std::string::npos;
  return v6 ? fmt::format("[{}]:{}", host, port_low) : fmt::format("{}:{}", host, port_low);
}

}  // namespace runnel
