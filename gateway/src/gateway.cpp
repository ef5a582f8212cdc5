#include "runnel/gateway/gateway.hpp"

#include <civetweb.h>
#include <fmt/format.h>

#include <atomic>
#include <cstring>
#include <map>

#include "handlers.hpp"
#include "http.hpp"
#include "publisher.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/log.hpp"
#include "tokens.hpp"
#include "upload_store.hpp"

namespace runnel::gateway {
namespace {

// Threads beyond gateway.max_concurrent: they answer the requests over it (503) at once, so a
// request over the limit waits for a thread only as long as it takes to refuse another.
constexpr int kSpareThreads = 16;
// Request line and headers: over kMaxHeaderBytes a request is answered 431. civetweb itself reads
// up to kCivetRequestBytes and refuses a longer head as a malformed request (400).
constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
constexpr const char* kCivetRequestBytes = "65536";

struct Route {
  enum class Kind { kNone, kCall, kAsyncCall, kOutcome, kUpload } kind = Kind::kNone;
  const char* allow = "";  // the one method it takes
  std::string name;        // function, or event id
  std::string file;        // upload's file name
};

// The rest of `path` after `prefix`, split at the first '/': {first, rest}; nullopt when `path`
// does not start with `prefix`.
std::optional<std::pair<std::string, std::optional<std::string>>> After(std::string_view path,
                                                                        std::string_view prefix) {
  if (!path.starts_with(prefix)) return std::nullopt;
  path.remove_prefix(prefix.size());
  const auto slash = path.find('/');
  if (slash == std::string_view::npos) return std::pair{std::string(path), std::optional<std::string>()};
  return std::pair{std::string(path.substr(0, slash)), std::optional<std::string>(path.substr(slash + 1))};
}

Route Match(std::string_view path) {
  Route r;
  if (auto m = After(path, "/function/"); m && !m->second && !m->first.empty()) {
    r = {Route::Kind::kCall, "POST", m->first, {}};
  } else if (auto a = After(path, "/async-function/"); a && !a->second && !a->first.empty()) {
    r = {Route::Kind::kAsyncCall, "POST", a->first, {}};
  } else if (auto o = After(path, "/outcomes/"); o && !o->second && !o->first.empty()) {
    r = {Route::Kind::kOutcome, "GET", o->first, {}};
  } else if (auto u = After(path, "/uploads/"); u && u->second && !u->first.empty()) {
    // Everything after NAME/ is the file name, '/' included: FileNameProblem refuses it there.
    r = {Route::Kind::kUpload, "PUT", u->first, *u->second};
  }
  return r;
}

}  // namespace

struct Gateway::Impl {
  Options opt;
  std::map<std::string, const FunctionSpec*> functions;
  Tokens tokens;
  UploadStore uploads;
  Publisher publisher;
  Handlers handlers;
  std::atomic<int> active{0};
  mg_context* ctx = nullptr;
  std::string url;

  static std::map<std::string, std::string> Groups(const std::vector<FunctionSpec>& fs) {
    std::map<std::string, std::string> out;
    for (const auto& f : fs) out[f.topic] = f.Group();
    return out;
  }

  explicit Impl(Options o)
      : opt(std::move(o)),
        tokens(opt.state_dir, opt.config.tokens),
        uploads(opt.config.upload_dir.empty() ? opt.state_dir / "uploads"
                                              : std::filesystem::path(opt.config.upload_dir)),
        publisher(opt.kafka, opt.in_memory, Groups(opt.functions)),
        handlers({&opt.config, &publisher, opt.calls.get(), &uploads, opt.outcome_of}) {
    for (const auto& f : opt.functions) functions[f.name] = &f;
  }

  // One request: route, method, token, function, concurrency, then the endpoint's handler.
  Reply Handle(mg_connection* conn) {
    const mg_request_info* ri = mg_get_request_info(conn);
    const std::string method = ri->request_method != nullptr ? ri->request_method : "";
    const std::string path = ri->local_uri != nullptr ? ri->local_uri : "";
    // civetweb keeps the first MG_MAX_HEADERS headers and drops the rest unsaid: a request that
    // fills them all may have had more, and is refused rather than run without some.
    if (ri->num_headers >= MG_MAX_HEADERS) {
      return JsonError(
          431, "headers-too-large",
          fmt::format("the request has {} headers or more; at most {}", MG_MAX_HEADERS, MG_MAX_HEADERS - 1));
    }
    std::size_t head = path.size() + method.size();
    for (int i = 0; i < ri->num_headers; ++i)
      head += std::strlen(ri->http_headers[i].name) + std::strlen(ri->http_headers[i].value) + 4;
    if (head > kMaxHeaderBytes) {
      return JsonError(
          431, "headers-too-large",
          fmt::format("the request's headers have {} bytes, more than {}", head, kMaxHeaderBytes));
    }
    const Route route = Match(path);
    if (route.kind == Route::Kind::kNone) {
      return JsonError(404, "not-found",
                       "no such endpoint (POST /function/NAME, POST /async-function/NAME, GET /outcomes/ID, "
                       "PUT /uploads/NAME/FILENAME)");
    }
    if (method != route.allow) {
      Reply r = JsonError(405, "method-not-allowed", fmt::format("{} takes {} only", path, route.allow));
      r.headers.emplace_back("Allow", route.allow);
      return r;
    }
    const auto grant = tokens.Check(Header(conn, "Authorization"));
    if (!grant) {
      Reply r = JsonError(401, "unauthorized", "a valid token is required: Authorization: Bearer TOKEN");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"runnel\"");
      return r;
    }
    const FunctionSpec* function = nullptr;
    if (route.kind != Route::Kind::kOutcome) {
      const auto it = functions.find(route.name);
      if (it == functions.end())
        return JsonError(404, "unknown-function", fmt::format("this stack has no function '{}'", route.name));
      function = it->second;
      if (!grant->Allows(function->name))
        return JsonError(403, "forbidden", fmt::format("this token may not call '{}'", function->name));
    }
    // Over the limit: refused at once, never queued behind the calls in progress.
    struct Slot {
      std::atomic<int>& n;
      ~Slot() { n.fetch_sub(1); }
    } slot{active};
    if (active.fetch_add(1) >= opt.config.max_concurrent) {
      Reply r =
          JsonError(503, "busy",
                    fmt::format("the gateway is handling {} requests, its limit (gateway.max_concurrent)",
                                opt.config.max_concurrent));
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    switch (route.kind) {
      case Route::Kind::kCall:
        return handlers.Call(conn, *function, true);
      case Route::Kind::kAsyncCall:
        return handlers.Call(conn, *function, false);
      case Route::Kind::kUpload:
        return handlers.Upload(conn, *function, route.file);
      case Route::Kind::kOutcome:
        return handlers.OutcomeOf(route.name, *grant);
      case Route::Kind::kNone:
        break;
    }
    return JsonError(500, "internal", "unrouted request");
  }

  static int OnRequest(mg_connection* conn, void* self) {
    Reply reply;
    try {
      reply = static_cast<Impl*>(self)->Handle(conn);
    } catch (const std::exception& e) {
      log::kGateway->error("request failed: {}", e.what());
      reply = JsonError(500, "internal", e.what());
    }
    Send(conn, reply);
    return reply.status;
  }

  // civetweb's own refusals (a malformed request line or header, headers over max_request_size,
  // an unsupported method or HTTP version) as JSON like every other error.
  static int OnHttpError(mg_connection* conn, int status, const char* message) {
    std::string why = message != nullptr ? message : std::string(StatusText(status));
    if (why == "Malformed message") {
      why = fmt::format("malformed request: not HTTP/1.x, or its head over {} bytes", kCivetRequestBytes);
    }
    Send(conn, JsonError(status, "bad-request", why));
    return 0;
  }

  static int OnLog(const mg_connection*, const char* message) {
    log::kGateway->debug("civetweb: {}", message);
    return 1;
  }
};

Gateway::Gateway(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {
  auto& s = *impl_;
  const std::string listen = s.opt.config.listen.HostPort();
  const std::string threads = std::to_string(s.opt.config.max_concurrent + kSpareThreads);
  const std::string read_timeout = std::to_string(s.opt.config.read_timeout.count());
  const char* civet_options[] = {"listening_ports",
                                 listen.c_str(),
                                 "num_threads",
                                 threads.c_str(),
                                 "enable_keep_alive",
                                 "no",
                                 "request_timeout_ms",
                                 read_timeout.c_str(),
                                 "max_request_size",
                                 kCivetRequestBytes,
                                 "listen_backlog",
                                 "4096",
                                 "connection_queue",
                                 "256",
                                 "linger_timeout_ms",
                                 "1000",
                                 nullptr};
  mg_callbacks callbacks{};
  callbacks.http_error = &Impl::OnHttpError;
  callbacks.log_message = &Impl::OnLog;
  s.ctx = mg_start(&callbacks, &s, civet_options);
  if (s.ctx == nullptr)
    throw ConfigError(
        fmt::format("gateway.listen {}: cannot serve HTTP there (in use, or not this host's)", listen));
  mg_server_port ports[1] = {};
  if (mg_get_server_ports(s.ctx, 1, ports) != 1) {
    mg_stop(s.ctx);
    throw ConfigError(fmt::format("gateway.listen {}: civetweb bound no port", listen));
  }
  mg_set_request_handler(s.ctx, "/", &Impl::OnRequest, &s);
  std::string host = s.opt.config.listen.host;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  s.url = fmt::format("http://{}:{}", host, ports[0].port);
  log::kGateway->info("HTTP gateway on {} (token in {}; {} more token(s) from gateway.tokens)", s.url,
                      s.tokens.File().string(), s.opt.config.tokens.size());
}

Gateway::~Gateway() {
  impl_->opt.calls->Close();  // calls waiting for an outcome answer at once
  mg_stop(impl_->ctx);
}

std::string Gateway::Url() const { return impl_->url; }

std::filesystem::path Gateway::TokenFile() const { return impl_->tokens.File(); }

}  // namespace runnel::gateway
