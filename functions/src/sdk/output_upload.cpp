#include "runnel/functions/output_upload.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "runnel/core/envelope.hpp"
#include "runnel/functions/function.hpp"
#include "sdk/http_fetch.hpp"

namespace runnel::functions {
namespace {

using Clock = std::chrono::steady_clock;

void AppendEscaped(std::string& out, std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char ch : segment) {
    const auto c = static_cast<unsigned char>(ch);
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '.' || c == '_' || c == '~';
    if (plain) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
}

// What the object store serves the file as later; a header in outputs.headers wins.
std::string_view ContentTypeOf(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  if (ext == ".png") return "image/png";
  if (ext == ".webp") return "image/webp";
  if (ext == ".gif") return "image/gif";
  if (ext == ".json") return "application/json";
  if (ext == ".txt" || ext == ".csv") return "text/plain";
  if (ext == ".mp4") return "video/mp4";
  return "application/octet-stream";
}

std::size_t ReadBody(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* file = static_cast<std::FILE*>(user);
  const std::size_t n = std::fread(buffer, 1, size * count, file);
  if (n == 0 && std::ferror(file) != 0) return CURL_READFUNC_ABORT;
  return n;
}

std::size_t DiscardBody(char*, std::size_t size, std::size_t count, void*) { return size * count; }

struct CurlHeaders {
  curl_slist* list = nullptr;
  CurlHeaders() = default;
  CurlHeaders(const CurlHeaders&) = delete;
  CurlHeaders& operator=(const CurlHeaders&) = delete;
  ~CurlHeaders() { curl_slist_free_all(list); }
  void Add(const std::string& line) {
    curl_slist* grown = curl_slist_append(list, line.c_str());
    if (grown == nullptr) throw FunctionError(Errc::kInternal, "libcurl: curl_slist_append failed");
    list = grown;
  }
};

// One PUT on this thread, blocking it until the transfer ends.
void PutOnThisThread(const OutputTarget& target, const std::string& url, const std::filesystem::path& path,
                     std::chrono::milliseconds timeout) {
  CurlGlobalInit();
  const std::string shown = fmt::format("PUT {}", UrlForLogs(url));
  const std::unique_ptr<std::FILE, decltype(&std::fclose)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) {
    throw FunctionError(Errc::kTransient, fmt::format("{}: cannot open the output file {}: {}", shown,
                                                      path.string(), std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(::fileno(file.get()), &st) != 0) {
    throw FunctionError(Errc::kTransient,
                        fmt::format("{}: cannot stat {}: {}", shown, path.string(), std::strerror(errno)));
  }
  CurlHeaders headers;
  bool own_type = false;
  for (const auto& [name, value] : target.headers) {
    headers.Add(fmt::format("{}: {}", name, value.Reveal()));
    own_type = own_type || SameHeaderName(name, "Content-Type");
  }
  if (!own_type) headers.Add(fmt::format("Content-Type: {}", ContentTypeOf(path)));
  headers.Add("Expect:");  // no 100-continue round trip before the body

  const std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw FunctionError(Errc::kInternal, "libcurl: curl_easy_init failed");
  CURL* h = curl.get();
  CurlCheck(curl_easy_setopt(h, CURLOPT_URL, url.c_str()), "CURLOPT_URL");
  CurlCheck(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"), "CURLOPT_PROTOCOLS_STR");
  CurlCheck(curl_easy_setopt(h, CURLOPT_UPLOAD, 1L), "CURLOPT_UPLOAD");
  CurlCheck(curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(st.st_size)),
            "CURLOPT_INFILESIZE_LARGE");
  CurlCheck(curl_easy_setopt(h, CURLOPT_READFUNCTION, &ReadBody), "CURLOPT_READFUNCTION");
  CurlCheck(curl_easy_setopt(h, CURLOPT_READDATA, file.get()), "CURLOPT_READDATA");
  CurlCheck(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &DiscardBody), "CURLOPT_WRITEFUNCTION");
  CurlCheck(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.list), "CURLOPT_HTTPHEADER");
  // A redirect is not followed (the body would have to be sent again): it fails like any non-2xx.
  CurlCheck(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L), "CURLOPT_FOLLOWLOCATION");
  CurlCheck(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count())),
            "CURLOPT_TIMEOUT_MS");
  CurlCheck(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), "CURLOPT_NOSIGNAL");
  CurlCheck(curl_easy_setopt(h, CURLOPT_USERAGENT, "runnel-worker"), "CURLOPT_USERAGENT");

  const CURLcode code = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (code == CURLE_OPERATION_TIMEDOUT) {
    throw FunctionError(Errc::kTransient, fmt::format("{}: timed out after {} ms", shown, timeout.count()));
  }
  if (code != CURLE_OK) {
    // Refused or reset connections, a name that does not resolve, TLS, a file that could not be
    // read: the next attempt may succeed (and the config is fixed without changing the event).
    throw FunctionError(Errc::kTransient, fmt::format("{}: {}", shown, curl_easy_strerror(code)));
  }
  if (status < 200 || status >= 300)
    throw FunctionError(Errc::kTransient, fmt::format("{}: HTTP {}", shown, status));
}

// Removes the uploaded file and, once empty, its event directory; only inside the store's own
// <function>/<event id>/ layout, which every output file has.
void RemoveLocal(const std::filesystem::path& path, std::string_view function, std::string_view event_id) {
  const auto dir = path.parent_path();
  if (dir.filename() != event_id || dir.parent_path().filename() != function) return;
  std::error_code ec;
  std::filesystem::remove(path, ec);
  std::filesystem::remove(dir, ec);  // fails, harmlessly, while other outputs remain
}

}  // namespace

std::string OutputUrl(const OutputTarget& target, std::string_view function, std::string_view event_id,
                      std::string_view name) {
  std::string url = target.url;
  for (const auto segment : {function, event_id, name}) {
    url.push_back('/');
    AppendEscaped(url, segment);
  }
  return url;
}

void UploadOutputs(const OutputTarget& target, std::string_view function, std::string_view event_id,
                   std::vector<OutputFile>& files, Clock::time_point deadline) {
  for (auto& file : files) {
    if (!file.url.empty()) continue;
    const std::filesystem::path path(file.path);
    const std::string url = OutputUrl(target, function, event_id, path.filename().string());
    auto timeout = target.timeout;
    if (deadline != Clock::time_point::max()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        throw FunctionError(Errc::kTransient,
                            fmt::format("PUT {}: no time left before the event's deadline", UrlForLogs(url)));
      }
      timeout = std::min(timeout, left);
    }
    RunTransferOffFiber([&] { PutOnThisThread(target, url, path, timeout); });
    file.url = url;
    RemoveLocal(path, function, event_id);
  }
}

}  // namespace runnel::functions
