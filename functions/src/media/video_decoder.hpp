// Decoding a video's frames in order with libavformat and libavcodec, and scaling the ones kept
// straight to thumbnail size with libswscale.
//
// Why not cv::VideoCapture: its retrieve() converts every kept frame to full-size BGR first (about
// 7 ms at 1080p) and the caller then resizes it; here the decoded YUV picture is converted and
// scaled in one libswscale pass to the few pixels wanted. Decoding itself is the same as
// OpenCV's FFmpeg backend does it (same decoder, thread count min(CPUs, 16)), and so are the
// colour conversion (libswscale's defaults) and the stream facts (frame rate, frame count, FourCC),
// so results match what VideoCapture reported. The display rotation is applied as the ffmpeg tool
// and players apply it (OpenCV 4.6's VideoCapture turns 90/270 degree videos the wrong way).
//
// Not thread-safe: one decoder per call. The destructor frees the FFmpeg contexts.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>

#include "video_source.hpp"

struct AVFormatContext;
struct AVCodecContext;
struct AVFrame;
struct AVPacket;
struct SwsContext;

namespace runnel::functions::media {

class VideoDecoder {
 public:
  // Sniffs the container, opens the file with FFmpeg (local files only) and the first video
  // stream's decoder, and fills `facts`. Frames over `max_pixels` are refused by the decoder itself
  // (libavcodec's max_pixels), so a stream that grows mid-way cannot allocate past the cap.
  // Throws kBadInput naming what is wrong.
  VideoDecoder(const VideoSource& source, VideoFacts& facts, std::uint64_t max_pixels);
  ~VideoDecoder();
  VideoDecoder(const VideoDecoder&) = delete;
  VideoDecoder& operator=(const VideoDecoder&) = delete;

  // Decodes the next frame in presentation order. False at the end of the stream, and when the
  // data stops decoding (a truncated file ends this way).
  bool Next();

  // The current frame's presentation time in seconds from the stream's start; negative when the
  // container gives none.
  double Time() const;

  // The current frame converted to BGR and scaled to `size` (display orientation: the stream's
  // rotation is applied, as the ffmpeg tool does).
  cv::Mat Scaled(cv::Size size);

 private:
  void Close();

  AVFormatContext* format_ = nullptr;
  AVCodecContext* codec_ = nullptr;
  AVFrame* frame_ = nullptr;
  AVPacket* packet_ = nullptr;
  SwsContext* scaler_ = nullptr;
  int stream_ = -1;
  int rotation_ = 0;  // clockwise degrees to display: 0, 90, 180, 270
  bool draining_ = false;
};

}  // namespace runnel::functions::media
