// The HTTP gateway's synchronous calls: `echo` calls/s and p50/p99 latency at 1, 16 and 256
// concurrent clients, against the in-process path `runnel invoke` takes (a Kafka record with a
// reply-to, its outcome from the results feed) in the same run.
//
// `runnel up` (embedded broker, `echo` with 2 workers of 256 slots, gateway.max_concurrent 512)
// runs as a child. Each gateway client is a thread with a plain blocking socket: connect, one
// POST /function/echo with a bearer token, read the answer to the close (the gateway keeps no
// connection alive), one call after another for --seconds. The baseline is one client producing
// records (kafka::Producer::ProduceSync, reply-to set) and waiting for each outcome on the results
// feed, as invoke does without its process start.
//
//   build/tests/bench/gateway/bench_gateway [--seconds S] [--quick]   (--quick: 2 s per row)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "bench_stack.hpp"
#include "runnel/core/envelope.hpp"

namespace runnel::bench {
namespace {

constexpr const char* kYaml = R"(
gateway:
  max_concurrent: 512
functions:
  - name: echo
    partitions: 8
    concurrency: 256
    scaling: {min: 2, max: 2}
)";

struct Figures {
  std::size_t calls = 0;
  std::size_t refused = 0;  // anything but 200
  double per_s = 0, p50 = 0, p99 = 0;
};

Figures Summarize(std::vector<double> ms, std::size_t refused, double seconds) {
  Figures f;
  std::sort(ms.begin(), ms.end());
  f.calls = ms.size();
  f.refused = refused;
  f.per_s = static_cast<double>(ms.size()) / seconds;
  if (!ms.empty()) {
    f.p50 = Percentile(ms, 50);
    f.p99 = Percentile(ms, 99);
  }
  return f;
}

// One call: the HTTP status, or 0 when the connection failed.
int Call(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int status = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    std::string answer;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
      answer.append(buf, static_cast<std::size_t>(n));
    if (answer.size() > 12 && answer.starts_with("HTTP/1.1 ")) status = std::stoi(answer.substr(9, 3));
  }
  ::close(fd);
  return status;
}

Figures Gateway(std::uint16_t port, const std::string& token, int clients, double seconds) {
  const std::string body = "bench payload";
  const std::string request = fmt::format(
      "POST /function/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: "
      "text/plain\r\nContent-Length: {}\r\n\r\n{}",
      token, body.size(), body);
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(clients));
  std::atomic<std::size_t> refused{0};
  const auto until =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      while (Clock::now() < until) {
        const auto start = Clock::now();
        if (Call(port, request) == 200) {
          latencies[static_cast<std::size_t>(c)].push_back(Millis(Clock::now() - start));
        } else {
          refused.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  return Summarize(std::move(all), refused.load(), Seconds(Clock::now() - t0));
}

// invoke's path in process: one record with a reply-to, its outcome from the results feed.
Figures InvokePath(const Stack& stack, double seconds) {
  zmq::context_t ctx(1);
  const std::string reply_to = "bench.gateway";
  Feed feed(ctx, stack, "echo/" + reply_to);
  kafka::Producer producer(stack.Kafka());
  producer.Prepare("echo");
  std::vector<double> ms;
  std::size_t refused = 0;
  const auto until =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const auto t0 = Clock::now();
  while (Clock::now() < until) {
    Envelope env;
    env.id = NewEventId();
    env.reply_to = reply_to;
    env.content_type = "text/plain";
    const auto start = Clock::now();
    producer.ProduceSync({"echo", kafka::kAnyPartition, std::nullopt, "bench payload", env.Encode()});
    FeedOutcome o;
    bool got = false;
    while (feed.Next(o, milliseconds(10'000))) {
      if (MetaString(o.meta, "id") == env.id) {
        got = true;
        break;
      }
    }
    if (got) {
      ms.push_back(Millis(Clock::now() - start));
    } else {
      ++refused;
    }
  }
  return Summarize(std::move(ms), refused, Seconds(Clock::now() - t0));
}

void Print(const std::string& what, const Figures& f) {
  std::printf("| %s | %zu | %.0f | %.2f | %.2f | %zu |\n", what.c_str(), f.calls, f.per_s, f.p50, f.p99,
              f.refused);
  std::fflush(stdout);
}

}  // namespace
}  // namespace runnel::bench

int main(int argc, char** argv) {
  using namespace runnel;
  using namespace runnel::bench;
  try {
    double seconds = 10;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--seconds" && i + 1 < argc) {
        seconds = std::stod(argv[++i]);
      } else if (arg == "--quick") {
        seconds = 2;
      } else {
        throw std::runtime_error("usage: bench_gateway [--seconds S] [--quick]");
      }
    }
    Stack stack("bench-gateway", kYaml);
    const auto endpoints = StateDir(stack.StatePath()).ReadEndpoints();
    const std::string url = endpoints.at("gateway").get<std::string>();
    const auto port = static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
    std::ifstream token_in(endpoints.at("gateway_token_file").get<std::string>());
    std::string token;
    std::getline(token_in, token);
    // Warm-up: both workers joined and the path hot.
    if (!testing::WaitFor(
            [&] {
              return Call(port, fmt::format("POST /function/echo HTTP/1.1\r\nAuthorization: Bearer "
                                            "{}\r\nContent-Length: 1\r\n\r\nx",
                                            token)) == 200;
            },
            std::chrono::seconds(30), milliseconds(50))) {
      throw std::runtime_error("the gateway did not answer 200 within 30 s");
    }
    (void)Gateway(port, token, 16, 2);
    std::printf(
        "| %.0f s each | calls | calls/s | p50 ms | p99 ms | not 200 |\n| --- | --- | --- | --- | --- | --- "
        "|\n",
        seconds);
    Print("invoke's path in process, 1 client", InvokePath(stack, seconds));
    for (const int clients : {1, 16, 256})
      Print(fmt::format("gateway, {} client(s)", clients), Gateway(port, token, clients, seconds));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gateway: %s\n", e.what());
    return 1;
  }
}
