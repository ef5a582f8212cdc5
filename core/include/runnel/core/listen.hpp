// Where a socket kind of the stack binds (`listen:` in runnel.yaml, `runnel up --listen`): a host
// and a port or a range of ports. docs/config.md#listen.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace runnel {

struct ListenAddress {
  std::string host = "127.0.0.1";  // an IPv4 or IPv6 address of this host, or 0.0.0.0 / :: for all
  std::uint16_t port_low = 0;      // 0: any free port
  std::uint16_t port_high = 0;     // == port_low for a single port
  int line = 0;                    // where it is in runnel.yaml (0: the default or a flag)

  // Parses HOST:PORT, HOST:LOW-HIGH or a bare HOST (any free port); IPv6 hosts in brackets
  // ([::1]:7000). Returns the reason on failure.
  static std::variant<ListenAddress, std::string> Parse(std::string_view text);

  // 127.0.0.0/8, ::1 or localhost: reachable only from this host.
  bool IsLoopback() const;
  // The ports this address can take (1 for a single port or "any free port").
  std::size_t Ports() const { return port_low == 0 ? 1 : static_cast<std::size_t>(port_high - port_low) + 1; }
  // The ZeroMQ endpoint for the i-th port of the range (tcp://HOST:PORT, tcp://HOST:* for any).
  std::string ZmqEndpoint(std::size_t i = 0) const;
  // HOST:PORT of the range's first port (IPv6 hosts in brackets).
  std::string HostPort() const;
};

}  // namespace runnel
