#include "runnel/functions/output_store.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <fstream>

#include "runnel/functions/function.hpp"

namespace runnel::functions {
namespace {

// Output names and event ids become path segments: refuse anything that could escape the store.
void CheckSegment(std::string_view what, std::string_view segment) {
  if (segment.empty() || segment == "." || segment == ".." || segment.find('/') != std::string_view::npos ||
      segment.find('\0') != std::string_view::npos) {
    throw FunctionError(Errc::kInternal,
                        fmt::format("output {} '{}' is not a plain path segment", what, segment));
  }
}

}  // namespace

OutputStore::OutputStore(const std::filesystem::path& root) : root_(std::filesystem::absolute(root)) {}

std::filesystem::path OutputStore::PathFor(std::string_view function, std::string_view event_id,
                                           std::string_view name) {
  CheckSegment("function", function);
  CheckSegment("event id", event_id);
  CheckSegment("name", name);
  auto dir = root_ / std::string(function) / std::string(event_id);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw FunctionError(Errc::kTransient, fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  return dir / std::string(name);
}

OutputFile OutputStore::Write(std::string_view function, std::string_view event_id, std::string_view name,
                              std::string_view bytes, nlohmann::json facts) {
  const auto path = PathFor(function, event_id, name);
  static std::atomic<std::uint64_t> counter{0};
  // Unique per process and call: two fibers may write the same output when an event is re-dispatched.
  const auto tmp = path.string() + fmt::format(".tmp.{}.{}", ::getpid(), counter.fetch_add(1));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) throw FunctionError(Errc::kTransient, fmt::format("cannot write {}", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    throw FunctionError(Errc::kTransient, fmt::format("cannot rename {} into place: {}", tmp, ec.message()));
  return OutputFile{path.string(), bytes.size(), std::move(facts)};
}

}  // namespace runnel::functions
