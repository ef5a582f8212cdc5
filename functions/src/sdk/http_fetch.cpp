#include "sdk/http_fetch.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <boost/fiber/future.hpp>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>

#include "runnel/core/envelope.hpp"
#include "runnel/functions/function.hpp"

namespace runnel::functions {
namespace {

struct Transfer {
  const std::function<bool(std::string_view)>* sink = nullptr;
  std::size_t received = 0;
  std::size_t max_bytes = 0;
  bool over_limit = false;
  bool sink_failed = false;
};

std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  // Returning anything other than n aborts the transfer with CURLE_WRITE_ERROR.
  if (n > t->max_bytes - t->received) {
    t->over_limit = true;
    return 0;
  }
  t->received += n;
  if (!(*t->sink)(std::string_view(data, n))) {
    t->sink_failed = true;
    return 0;
  }
  return n;
}

void Check(CURLcode code, const char* what) { CurlCheck(code, what); }

// The transfer itself, blocking the calling thread until it ends.
void FetchOnThisThread(const std::string& url, const HttpFetchLimits& limits,
                       const std::function<bool(std::string_view)>& sink) {
  CurlGlobalInit();
  const std::string shown = fmt::format("GET {}", UrlForLogs(url));
  if (limits.timeout.count() <= 0) {
    throw FunctionError(Errc::kTransient, fmt::format("{}: no time left before the event's deadline", shown));
  }
  const std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw FunctionError(Errc::kInternal, "libcurl: curl_easy_init failed");
  CURL* h = curl.get();
  Transfer transfer;
  transfer.sink = &sink;
  transfer.max_bytes = limits.max_bytes;
  Check(curl_easy_setopt(h, CURLOPT_URL, url.c_str()), "CURLOPT_URL");
  Check(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"), "CURLOPT_PROTOCOLS_STR");
  Check(curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"), "CURLOPT_REDIR_PROTOCOLS_STR");
  Check(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L), "CURLOPT_FOLLOWLOCATION");
  // A status of 400 or more ends the transfer before its body reaches the sink or the limit.
  Check(curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L), "CURLOPT_FAILONERROR");
  Check(curl_easy_setopt(h, CURLOPT_MAXREDIRS, limits.max_redirects), "CURLOPT_MAXREDIRS");
  Check(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(limits.timeout.count())),
        "CURLOPT_TIMEOUT_MS");
  // No signals (the worker is multi-threaded); no compressed encodings, so the bytes counted are the body's.
  Check(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), "CURLOPT_NOSIGNAL");
  // Refuses a Content-Length over the limit before any byte of the body; OnBody counts the rest.
  if (limits.max_bytes > 0 &&
      limits.max_bytes < static_cast<std::size_t>(std::numeric_limits<curl_off_t>::max())) {
    Check(curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(limits.max_bytes)),
          "CURLOPT_MAXFILESIZE_LARGE");
  }
  Check(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody), "CURLOPT_WRITEFUNCTION");
  Check(curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer), "CURLOPT_WRITEDATA");
  Check(curl_easy_setopt(h, CURLOPT_USERAGENT, "runnel-worker"), "CURLOPT_USERAGENT");

  const CURLcode code = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  const auto http_error = [&] {
    const bool retriable = status >= 500 || status == 408 || status == 429;
    return FunctionError(retriable ? Errc::kTransient : Errc::kBadInput,
                         fmt::format("{}: HTTP {}", shown, status));
  };
  if (transfer.over_limit || code == CURLE_FILESIZE_EXCEEDED) {
    throw FunctionError(
        Errc::kLimitExceeded,
        fmt::format("{}: {} is over the limit of {} bytes", shown,
                    transfer.over_limit ? "the body" : "its Content-Length", limits.max_bytes));
  }
  if (transfer.sink_failed) {
    throw FunctionError(Errc::kTransient, fmt::format("{}: the body could not be stored", shown));
  }
  switch (code) {
    case CURLE_OK:
      break;
    case CURLE_HTTP_RETURNED_ERROR:
      throw http_error();
    case CURLE_OPERATION_TIMEDOUT:
      throw FunctionError(Errc::kTransient,
                          fmt::format("{}: timed out after {} ms", shown, limits.timeout.count()));
    case CURLE_TOO_MANY_REDIRECTS:
      throw FunctionError(Errc::kBadInput,
                          fmt::format("{}: more than {} redirects", shown, limits.max_redirects));
    case CURLE_UNSUPPORTED_PROTOCOL:
      throw FunctionError(Errc::kBadInput,
                          fmt::format("{}: redirected to a scheme other than http or https, refused", shown));
    case CURLE_URL_MALFORMAT:
      throw FunctionError(Errc::kBadInput, fmt::format("{}: {}", shown, curl_easy_strerror(code)));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
      throw FunctionError(Errc::kBadInput, fmt::format("{}: TLS: {}", shown, curl_easy_strerror(code)));
    default:
      // Cannot resolve or connect, connection reset, a partial body: the next attempt may succeed.
      throw FunctionError(Errc::kTransient, fmt::format("{}: {}", shown, curl_easy_strerror(code)));
  }
  if (status < 200 || status >= 300) throw http_error();  // e.g. a 3xx without a Location
}

}  // namespace

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

void CurlCheck(int code, const char* what) {
  if (code != CURLE_OK) {
    throw FunctionError(Errc::kInternal, fmt::format("libcurl: setting {}: {}", what,
                                                     curl_easy_strerror(static_cast<CURLcode>(code))));
  }
}

// The transfer runs on a helper thread and this fiber waits on a future, so the worker's thread
// keeps running its other fibers meanwhile (as exec functions wait for their child). The helper
// ends by itself: the transfer bounds its own time, and the thread is joined here.
void RunTransferOffFiber(const std::function<void()>& transfer) {
  boost::fibers::promise<void> promise;
  auto future = promise.get_future();
  std::thread helper([&transfer, p = std::move(promise)]() mutable {
    try {
      transfer();
      p.set_value();
    } catch (...) {
      p.set_exception(std::current_exception());
    }
  });
  try {
    future.get();
  } catch (...) {
    helper.join();
    throw;
  }
  helper.join();
}

void HttpFetchTo(const std::string& url, const HttpFetchLimits& limits,
                 const std::function<bool(std::string_view)>& sink) {
  RunTransferOffFiber([&] { FetchOnThisThread(url, limits, sink); });
}

std::string HttpFetch(const std::string& url, const HttpFetchLimits& limits) {
  std::string body;
  HttpFetchTo(url, limits, [&body](std::string_view chunk) {
    body.append(chunk);
    return true;
  });
  return body;
}

}  // namespace runnel::functions
