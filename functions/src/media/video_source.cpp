#include "video_source.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "runnel/core/fd.hpp"
#include "sdk/http_fetch.hpp"
#include "sdk/input_file.hpp"

namespace runnel::functions::media {
namespace {

std::string HexPrefix(std::string_view b) {
  std::string out;
  for (std::size_t i = 0; i < b.size() && i < 8; ++i)
    out += fmt::format("{:02x}", static_cast<std::uint8_t>(b[i]));
  return out;
}

std::string ReadHead(const std::string& path, std::size_t n) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw FunctionError(Errc::kBadInput,
                        fmt::format("cannot open input file {}: {}", path, std::strerror(errno)));
  }
  const UniqueFd closer{fd};
  std::string head(n, '\0');
  ssize_t got = -1;
  do {
    got = ::pread(fd, head.data(), n, 0);
  } while (got < 0 && errno == EINTR);
  if (got < 0)
    throw FunctionError(Errc::kTransient, fmt::format("reading {}: {}", path, std::strerror(errno)));
  head.resize(static_cast<std::size_t>(got));
  return head;
}

}  // namespace

VideoSource::VideoSource(const Event& event, std::uint64_t max_bytes,
                         std::chrono::steady_clock::time_point deadline) {
  const bool url = event.envelope.file && event.envelope.file->IsUrl();
  if (event.envelope.file && !url) {
    path_ = event.envelope.file->path;
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0)
      throw FunctionError(Errc::kBadInput, CannotOpenInputFile(path_, errno));
    if (!S_ISREG(st.st_mode))
      throw FunctionError(Errc::kBadInput, fmt::format("input {} is not a regular file", path_));
    bytes_ = static_cast<std::uint64_t>(st.st_size);
  } else if (!url) {
    bytes_ = event.payload.size();
  }
  if (!url && bytes_ == 0) throw FunctionError(Errc::kBadInput, "input is empty (0 bytes)");
  if (bytes_ > max_bytes) {
    throw FunctionError(
        Errc::kLimitExceeded,
        fmt::format("input is {} bytes, over the limit of {} (max_bytes)", bytes_, max_bytes));
  }
  if (event.envelope.file && !url) return;

  // FFmpeg (through OpenCV) reads files only: an inline payload or a fetched URL goes to a private
  // temporary file.
  std::string pattern = (std::filesystem::temp_directory_path() / "runnel-video-XXXXXX").string();
  const int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd < 0) {
    throw FunctionError(Errc::kTransient,
                        fmt::format("cannot create a temporary file: {}", std::strerror(errno)));
  }
  const UniqueFd closer{fd};
  path_ = pattern;
  temporary_ = true;
  int write_errno = 0;
  const auto write_all = [&](std::string_view data) {
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        write_errno = n < 0 ? errno : EIO;
        return false;
      }
      done += static_cast<std::size_t>(n);
    }
    return true;
  };
  try {
    if (url) {
      auto timeout = Context::kUrlFetchTimeout;
      if (deadline != std::chrono::steady_clock::time_point::max()) {
        timeout = std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                        deadline - std::chrono::steady_clock::now()));
      }
      HttpFetchTo(event.envelope.file->url,
                  HttpFetchLimits{static_cast<std::size_t>(max_bytes), timeout, Context::kUrlMaxRedirects},
                  [&](std::string_view chunk) {
                    bytes_ += chunk.size();
                    return write_all(chunk);
                  });
      if (bytes_ == 0) throw FunctionError(Errc::kBadInput, "input is empty (0 bytes)");
    } else if (!write_all(event.payload)) {
      throw FunctionError(Errc::kTransient, fmt::format("writing {}: {}", path_, std::strerror(write_errno)));
    }
  } catch (...) {
    ::unlink(path_.c_str());
    temporary_ = false;
    throw;
  }
}

VideoSource::~VideoSource() {
  if (temporary_) ::unlink(path_.c_str());
}

std::string_view SniffContainer(std::string_view head) {
  const auto at = [&](std::size_t offset, std::string_view magic) {
    return head.size() >= offset + magic.size() && head.substr(offset, magic.size()) == magic;
  };
  for (std::string_view box : {"ftyp", "moov", "mdat", "free", "wide", "skip", "pnot"}) {
    if (at(4, box)) return "mp4";
  }
  if (at(0, "\x1A\x45\xDF\xA3")) return "matroska";
  if (at(0, "RIFF") && at(8, "AVI ")) return "avi";
  if (at(0, "\x47") && (head.size() <= 188 || at(188, "\x47"))) return "mpegts";
  if (at(0, std::string_view("\0\0\x01\xBA", 4)) || at(0, std::string_view("\0\0\x01\xB3", 4))) return "mpeg";
  if (at(0, "FLV\x01")) return "flv";
  if (at(0, "OggS")) return "ogg";
  if (at(0, "\x30\x26\xB2\x75\x8E\x66\xCF\x11")) return "asf";
  return {};
}

nlohmann::json VideoFacts::ToJson() const {
  const auto unknown_if_zero = [](auto value) {
    return value > 0 ? nlohmann::json(value) : nlohmann::json(nullptr);
  };
  return {{"container", container},
          {"codec", codec},
          {"width", width},
          {"height", height},
          {"fps", unknown_if_zero(fps)},
          {"frame_count", unknown_if_zero(frame_count)},
          {"duration", unknown_if_zero(Duration())},
          {"bytes", bytes}};
}

std::string_view SniffOrRefuse(const VideoSource& source) {
  const std::string head = ReadHead(source.Path(), 512);
  const std::string_view container = SniffContainer(head);
  if (container.empty()) {
    throw FunctionError(
        Errc::kBadInput,
        fmt::format("not a recognised video container (mp4/mov, mkv/webm, avi, mpeg-ts, mpeg-ps, flv, "
                    "ogg, asf): the file starts with {}",
                    HexPrefix(head)));
  }
  return container;
}

}  // namespace runnel::functions::media
