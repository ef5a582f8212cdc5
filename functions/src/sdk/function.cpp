#include "runnel/functions/function.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "runnel/core/fd.hpp"
#include "sdk/http_fetch.hpp"
#include "sdk/input_file.hpp"

namespace runnel::functions {
namespace {

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "this host";
  return name;
}

}  // namespace

std::string CannotOpenInputFile(const std::string& path, int err) {
  if (err == ENOENT || err == ENOTDIR) {
    return fmt::format(
        "cannot open input file {}: {} (the file must be on this worker's host, {}, or on a volume "
        "shared with it)",
        path, std::strerror(err), HostName());
  }
  return fmt::format("cannot open input file {}: {}", path, std::strerror(err));
}

std::string Context::ReadInput(const Event& event, std::size_t max_bytes) {
  return ReadInput(event, max_bytes, std::chrono::steady_clock::time_point::max());
}

std::string Context::ReadInput(const Event& event, std::size_t max_bytes,
                               std::chrono::steady_clock::time_point deadline) {
  if (event.envelope.file && event.envelope.file->IsUrl()) {
    auto timeout = kUrlFetchTimeout;
    if (deadline != std::chrono::steady_clock::time_point::max()) {
      timeout = std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now()));
    }
    return HttpFetch(event.envelope.file->url, HttpFetchLimits{max_bytes, timeout, kUrlMaxRedirects});
  }
  if (!event.envelope.file) {
    if (event.payload.size() > max_bytes) {
      throw FunctionError(Errc::kLimitExceeded, fmt::format("payload is {} bytes, over the limit of {}",
                                                            event.payload.size(), max_bytes));
    }
    return event.payload;
  }
  const std::string& path = event.envelope.file->path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FunctionError(Errc::kBadInput, CannotOpenInputFile(path, errno));
  const UniqueFd closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    throw FunctionError(Errc::kBadInput, fmt::format("input {} is not a regular file", path));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size > max_bytes) {
    throw FunctionError(Errc::kLimitExceeded, fmt::format("input file {} is {} bytes, over the limit of {}",
                                                          path, size, max_bytes));
  }
  std::string bytes(size, '\0');
  std::size_t done = 0;
  // One read normally suffices; the loop only covers short reads.
  while (done < size) {
    const ssize_t n = ::read(fd, bytes.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw FunctionError(Errc::kTransient, fmt::format("reading {}: {}", path, std::strerror(errno)));
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

BatchSpec EffectiveBatch(const Function& function, const std::optional<BatchSpec>& configured) {
  if (!configured) return function.Batch();
  if (configured->size > 1 && !function.TakesBatches()) {
    throw FunctionError(
        Errc::kBadConfig,
        fmt::format("batch.size {}: this function takes one event per call (it does not declare "
                    "batches); remove batch or set batch.size: 1",
                    configured->size));
  }
  return *configured;
}

std::vector<ResultOrError> Function::HandleBatch(std::span<const Event> events, Context& ctx) {
  std::vector<ResultOrError> outcomes;
  outcomes.reserve(events.size());
  for (const Event& event : events) {
    try {
      outcomes.push_back({Handle(event, ctx), std::nullopt});
    } catch (const FunctionError& e) {
      outcomes.push_back({std::nullopt, e});
    } catch (const std::exception& e) {
      outcomes.push_back({std::nullopt, FunctionError(Errc::kInternal, e.what())});
    }
  }
  return outcomes;
}

void Registry::Register(std::string name, std::string summary, Factory factory) {
  entries_[std::move(name)] = Entry{std::move(summary), std::move(factory)};
}

std::unique_ptr<Function> Registry::Create(const std::string& name, const nlohmann::json& params) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    throw FunctionError(Errc::kUnknownFunction,
                        fmt::format("unknown function '{}' (known: {})", name, fmt::join(Names(), ", ")));
  }
  return it->second.factory(params.is_null() ? nlohmann::json::object() : params);
}

bool Registry::Contains(const std::string& name) const { return entries_.contains(name); }

std::vector<std::string> Registry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, entry] : entries_) names.push_back(name);
  return names;
}

std::string Registry::Summary(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? std::string() : it->second.summary;
}

}  // namespace runnel::functions
