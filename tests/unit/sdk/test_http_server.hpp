// A civetweb HTTP server on 127.0.0.1 for tests of http:// input references: fixed bodies by path
// plus paths that misbehave (404, 503, redirects, stalls, over-size bodies). It also takes PUTs, as
// an object store for outputs.url would: each is recorded (Puts, WaitForPuts), answered 201 and
// served back to a GET of its path,
// except those with a segment starting with fail500 (an event id too), answered 500 and recorded,
// and those under /stall/, never answered.
#pragma once

#include <civetweb.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace runnel::functions::testing {

// Bytes of every value, so a lost or reordered chunk shows.
inline std::string Body(std::size_t size) {
  std::string body(size, '\0');
  for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  return body;
}

// One handler per path: `files` as given, then the fixed ones below. The "held" paths answer in part (or not
// at all) and then wait until the server is destroyed, so a client can only end them by giving up.
class TestServer {
 public:
  explicit TestServer(std::map<std::string, std::string> files = {}) : files_(std::move(files)) {
    const char* options[] = {"listening_ports", "127.0.0.1:0", "num_threads", "8", nullptr};
    ctx_ = mg_start(nullptr, nullptr, options);
    if (ctx_ == nullptr) throw std::runtime_error("civetweb did not start");
    mg_server_port ports[1] = {};
    if (mg_get_server_ports(ctx_, 1, ports) != 1) throw std::runtime_error("civetweb has no port");
    port_ = ports[0].port;
    mg_set_request_handler(ctx_, "/", &TestServer::Handle, this);
  }
  ~TestServer() {
    {
      const std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    mg_stop(ctx_);
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  std::string Url(const std::string& path_and_query) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path_and_query;
  }
  std::string Shown(const std::string& path) const { return "GET " + Url(path); }
  // Lets the requests waiting on "/gate" have their body (kImage).
  void OpenGate() {
    {
      const std::lock_guard lock(mu_);
      gate_open_ = true;
    }
    cv_.notify_all();
  }

  static inline const std::string kImage = Body(300'000);

  struct Put {
    std::string path;  // as civetweb decodes it: percent escapes undone
    std::string body;
    std::map<std::string, std::string> headers;
    int status = 0;  // what the server answered
  };
  std::vector<Put> Puts() {
    const std::lock_guard lock(mu_);
    return puts_;
  }
  // Waits until `count` PUTs were answered, or `timeout` passed; returns what was recorded.
  std::vector<Put> WaitForPuts(std::size_t count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return puts_.size() >= count; });
    return puts_;
  }

 private:
  static int Handle(mg_connection* conn, void* self) {
    return static_cast<TestServer*>(self)->Serve(conn, mg_get_request_info(conn)->local_uri);
  }

  void Hold() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(60), [this] { return released_; });
  }

  int Serve(mg_connection* conn, const std::string& path) {
    if (std::string(mg_get_request_info(conn)->request_method) == "PUT") return TakePut(conn, path);
    if (const auto stored = Stored(path)) {  // what a PUT stored there, as an object store serves it
      mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", stored->size());
      mg_write(conn, stored->data(), stored->size());
      return 200;
    }
    if (const auto it = files_.find(path); it != files_.end()) {
      mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", it->second.size());
      mg_write(conn, it->second.data(), it->second.size());
      return 200;
    }
    if (path == "/x.jpg") {
      mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n\r\n",
                kImage.size());
      mg_write(conn, kImage.data(), kImage.size());
      return 200;
    }
    if (path == "/missing") {
      mg_printf(conn, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
      return 404;
    }
    if (path == "/unavailable") {
      mg_printf(conn, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
      return 503;
    }
    if (path == "/once") return Redirect(conn, "/x.jpg");
    if (path == "/loop") return Redirect(conn, "/loop");
    if (path == "/to-ftp") return Redirect(conn, "ftp://127.0.0.1/x.jpg");
    if (path == "/to-file") return Redirect(conn, "file:///etc/passwd");
    if (path == "/gate") {  // answers once OpenGate() was called
      {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(60), [this] { return gate_open_ || released_; });
      }
      mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", kImage.size());
      mg_write(conn, kImage.data(), kImage.size());
      return 200;
    }
    if (path == "/slow") {  // accepts the request and never answers
      Hold();
      return 200;
    }
    if (path == "/announced-big") {  // says 10 MiB, sends 1 KiB, then stalls
      mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n");
      const std::string part = Body(1024);
      mg_write(conn, part.data(), part.size());
      Hold();
      return 200;
    }
    if (path == "/streamed-big") {  // no length: 256 KiB, then stalls with the connection open
      mg_printf(conn, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
      const std::string part = Body(std::size_t{256} * 1024);
      mg_write(conn, part.data(), part.size());
      Hold();
      return 200;
    }
    mg_printf(conn, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    return 500;
  }

  std::optional<std::string> Stored(const std::string& path) {
    const std::lock_guard lock(mu_);
    for (auto it = puts_.rbegin(); it != puts_.rend(); ++it) {
      if (it->path == path && it->status == 201) return it->body;
    }
    return std::nullopt;
  }

  int TakePut(mg_connection* conn, const std::string& path) {
    if (path.rfind("/stall/", 0) == 0) {  // takes the request and never answers
      Hold();
      return 200;
    }
    const mg_request_info* info = mg_get_request_info(conn);
    Put put;
    put.path = path;
    for (int i = 0; i < info->num_headers; ++i)
      put.headers[info->http_headers[i].name] = info->http_headers[i].value;
    char buffer[16384];
    for (int n = 0; (n = mg_read(conn, buffer, sizeof buffer)) > 0;)
      put.body.append(buffer, static_cast<std::size_t>(n));
    put.status = path.find("/fail500") != std::string::npos ? 500 : 201;
    if (put.status == 500) {
      mg_printf(conn, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    } else {
      mg_printf(conn, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    }
    const int status = put.status;
    {
      const std::lock_guard lock(mu_);
      puts_.push_back(std::move(put));
    }
    cv_.notify_all();
    return status;
  }

  static int Redirect(mg_connection* conn, const char* location) {
    mg_printf(conn, "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n", location);
    return 302;
  }

  std::map<std::string, std::string> files_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  bool gate_open_ = false;
  std::vector<Put> puts_;
};

}  // namespace runnel::functions::testing
