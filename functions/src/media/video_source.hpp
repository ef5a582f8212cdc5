// Getting a video to FFmpeg safely: the input as a file (inline payloads are written to a temporary
// file), a container sniff that admits only real video containers (never playlists or other text
// formats FFmpeg would follow to further files or URLs), and the stream facts (VideoDecoder fills them).
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "runnel/functions/function.hpp"

namespace runnel::functions::media {

inline constexpr std::int64_t kDefaultVideoMaxBytes = std::int64_t{2} << 30;
inline constexpr std::int64_t kVideoMaxBytesCeiling = std::int64_t{64} << 30;

// The file a video call reads. Not copyable; removes its temporary file on destruction.
class VideoSource {
 public:
  // Throws kBadInput for an empty or missing input, kLimitExceeded past max_bytes (checked from the
  // file's size or the payload's length, before anything is read or written). An http(s) reference
  // is fetched into the temporary file, within max_bytes and by `deadline` (Context::ReadInput's rules).
  VideoSource(const Event& event, std::uint64_t max_bytes,
              std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max());
  ~VideoSource();
  VideoSource(const VideoSource&) = delete;
  VideoSource& operator=(const VideoSource&) = delete;
  VideoSource(VideoSource&&) = delete;
  VideoSource& operator=(VideoSource&&) = delete;

  const std::string& Path() const { return path_; }
  std::uint64_t Bytes() const { return bytes_; }

 private:
  std::string path_;
  std::uint64_t bytes_ = 0;
  bool temporary_ = false;
};

// "mp4" (also MOV/3GP), "matroska" (also WebM), "avi", "mpegts", "mpeg", "flv", "ogg", "asf", or empty.
std::string_view SniffContainer(std::string_view head);

struct VideoFacts {
  std::string container;
  std::string codec;  // the FourCC as text, e.g. "avc1", "mp4v", "MJPG"
  int width = 0;
  int height = 0;
  double fps = 0;                // 0 when unknown
  std::int64_t frame_count = 0;  // as the container declares it; 0 when unknown
  std::uint64_t bytes = 0;

  double Duration() const { return fps > 0 && frame_count > 0 ? static_cast<double>(frame_count) / fps : 0; }
  nlohmann::json ToJson() const;
};

// The container named by the file's first bytes (as SniffContainer); throws kBadInput for anything
// else, before FFmpeg sees a byte of it.
std::string_view SniffOrRefuse(const VideoSource& source);

}  // namespace runnel::functions::media
