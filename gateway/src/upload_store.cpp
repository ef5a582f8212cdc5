#include "upload_store.hpp"

#include <civetweb.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "runnel/core/error.hpp"

namespace runnel::gateway {
namespace {

constexpr std::size_t kChunk = 256 * 1024;

bool WriteAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

UploadStore::UploadStore(std::filesystem::path dir) : dir_(std::filesystem::absolute(std::move(dir))) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec)
    throw ConfigError(
        fmt::format("gateway.upload_dir {}: cannot create it: {}", dir_.string(), ec.message()));
}

std::variant<UploadStore::Stored, UploadStore::TooLarge, UploadStore::Broken> UploadStore::Receive(
    mg_connection* conn, const std::string& event_id, const std::string& file_name,
    std::uint64_t max_bytes) const {
  const auto event_dir = dir_ / event_id;
  std::error_code ec;
  std::filesystem::create_directory(event_dir, ec);
  if (ec) return Broken{fmt::format("cannot create {}: {}", event_dir.string(), ec.message()), true};
  const auto part = event_dir / ("." + file_name + ".part");
  const auto final_path = event_dir / file_name;
  const auto discard = [&] {
    std::error_code ignored;
    std::filesystem::remove_all(event_dir, ignored);
  };
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const std::string why = std::strerror(errno);
    discard();
    return Broken{fmt::format("cannot create {}: {}", part.string(), why), true};
  }
  const long long declared = mg_get_request_info(conn)->content_length;
  std::vector<char> buf(kChunk);
  std::uint64_t size = 0;
  std::variant<Stored, TooLarge, Broken> result = Stored{};
  for (;;) {
    const int n = mg_read(conn, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      result = Broken{"the request body ended early (connection closed or timed out)"};
      break;
    }
    size += static_cast<std::uint64_t>(n);
    if (size > max_bytes) {
      result = TooLarge{};
      break;
    }
    if (!WriteAll(fd, buf.data(), static_cast<std::size_t>(n))) {
      result = Broken{fmt::format("cannot write {}: {}", part.string(), std::strerror(errno)), true};
      break;
    }
  }
  if (std::holds_alternative<Stored>(result) && declared >= 0 && size != static_cast<std::uint64_t>(declared))
    result = Broken{fmt::format("the body has {} bytes of the {} Content-Length says", size, declared)};
  if (::close(fd) != 0 && std::holds_alternative<Stored>(result))
    result = Broken{fmt::format("cannot write {}: {}", part.string(), std::strerror(errno)), true};
  if (!std::holds_alternative<Stored>(result)) {
    discard();
    return result;
  }
  std::filesystem::rename(part, final_path, ec);
  if (ec) {
    discard();
    return Broken{fmt::format("cannot rename {}: {}", part.string(), ec.message()), true};
  }
  return Stored{final_path, size};
}

}  // namespace runnel::gateway
