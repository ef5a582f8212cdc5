#include "runnel/testing/http_get.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <sstream>

namespace runnel::testing {

std::optional<HttpResponse> HttpGet(const std::string& url, std::chrono::milliseconds deadline) {
  static const std::regex kUrl(R"(http://([0-9.]+):([0-9]+)(/.*)?)");
  std::smatch m;
  if (!std::regex_match(url, m, kUrl)) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(m[2].str())));
  if (::inet_pton(AF_INET, m[1].str().c_str(), &addr.sin_addr) != 1) return std::nullopt;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::string raw;
  bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  if (ok) {
    const std::string request = "GET " + (m[3].matched ? m[3].str() : std::string("/")) +
                                " HTTP/1.0\r\nHost: " + m[1].str() + "\r\n\r\n";
    ok = ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size());
  }
  while (ok) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ok = false;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;  // the server closed: the answer is complete
    if (n < 0)
      ok = false;
    else
      raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (!ok) return std::nullopt;
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || !raw.starts_with("HTTP/")) return std::nullopt;
  HttpResponse r;
  r.status = std::stoi(raw.substr(raw.find(' ') + 1, 3));
  static const std::regex kType(R"(\r\n[Cc]ontent-[Tt]ype:\s*([^\r]*))");
  const std::string head = raw.substr(0, head_end);
  if (std::smatch t; std::regex_search(head, t, kType)) r.content_type = t[1].str();
  r.body = raw.substr(head_end + 4);
  return r;
}

double MetricSample(const std::string& metrics_url, const std::string& family,
                    const std::vector<std::pair<std::string, std::string>>& labels) {
  const auto r = HttpGet(metrics_url);
  if (!r || r->status != 200) return -1;
  std::istringstream in(r->body);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(family + "{")) continue;
    const std::string set = line.substr(0, line.rfind(' '));
    bool all = true;
    for (const auto& [name, value] : labels)
      all = all && set.find(name + "=\"" + value + "\"") != std::string::npos;
    if (all) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

}  // namespace runnel::testing
