#include "video_decoder.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace runnel::functions::media {
namespace {

// Consecutive packets or frames that fail to decode before the stream is taken as ended; one bad
// packet (a damaged slice) is skipped, a run of them is the end of the usable data.
constexpr int kMaxDecodeErrors = 64;

[[noreturn]] void Unreadable(const VideoFacts& facts) {
  throw FunctionError(Errc::kBadInput,
                      fmt::format("not a readable video: FFmpeg cannot open this {} file (corrupt, "
                                  "truncated, or without a video stream)",
                                  facts.container));
}

double Seconds(AVRational r) { return r.num == 0 || r.den == 0 ? 0.0 : av_q2d(r); }

// The FourCC as VideoCapture reports it: the container's tag, else a four-letter codec name, else
// the RIFF or QuickTime tag for the codec.
std::string CodecText(const AVCodecParameters& par) {
  std::uint32_t tag = par.codec_tag;
  if (tag == 0 && par.codec_id != AV_CODEC_ID_NONE) {
    std::string name = avcodec_get_name(par.codec_id);
    if (name.size() == 4 && name != "none") return name;
    const AVCodecTag* const tables[] = {avformat_get_riff_video_tags(), avformat_get_mov_video_tags(),
                                        nullptr};
    tag = av_codec_get_tag(tables, par.codec_id);
  }
  std::string text;
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>((tag >> (8 * i)) & 0xFF);
    if (c >= 0x20 && c < 0x7F) text += c;
  }
  return text;
}

int DisplayRotation(const AVStream& stream) {
  const auto* matrix = reinterpret_cast<const std::int32_t*>(
      av_stream_get_side_data(&stream, AV_PKT_DATA_DISPLAYMATRIX, nullptr));
  if (matrix == nullptr) return 0;
  const double angle = av_display_rotation_get(matrix);
  if (!std::isfinite(angle)) return 0;
  int degrees = -static_cast<int>(std::lround(angle));
  degrees = ((degrees % 360) + 360) % 360;
  return degrees == 90 || degrees == 180 || degrees == 270 ? degrees : 0;
}

}  // namespace

VideoDecoder::VideoDecoder(const VideoSource& source, VideoFacts& facts, std::uint64_t max_pixels) {
  facts.container = std::string(SniffOrRefuse(source));
  facts.bytes = source.Bytes();
  // Only local files: whatever the container says, FFmpeg opens no URL and no other protocol.
  AVDictionary* options = nullptr;
  av_dict_set(&options, "protocol_whitelist", "file", 0);
  const int opened = avformat_open_input(&format_, source.Path().c_str(), nullptr, &options);
  av_dict_free(&options);
  if (opened < 0) Unreadable(facts);  // format_ is freed and null on failure
  try {
    if (avformat_find_stream_info(format_, nullptr) < 0) Unreadable(facts);
    stream_ = av_find_best_stream(format_, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (stream_ < 0) Unreadable(facts);
    AVStream* stream = format_->streams[stream_];
    const AVCodecParameters& par = *stream->codecpar;
    const AVCodec* decoder = avcodec_find_decoder(par.codec_id);
    if (decoder == nullptr) {
      throw FunctionError(Errc::kBadInput, fmt::format("not a readable video: no decoder for codec {}",
                                                       avcodec_get_name(par.codec_id)));
    }
    codec_ = avcodec_alloc_context3(decoder);
    frame_ = av_frame_alloc();
    packet_ = av_packet_alloc();
    if (codec_ == nullptr || frame_ == nullptr || packet_ == nullptr) throw std::bad_alloc();
    if (avcodec_parameters_to_context(codec_, &par) < 0) Unreadable(facts);
    // As VideoCapture does: OpenCV's CPU count (it honours cgroup quotas and cpusets), at most 16.
    codec_->thread_count = std::clamp(cv::getNumberOfCPUs(), 1, 16);
    if (avcodec_open2(codec_, decoder, nullptr) < 0) Unreadable(facts);
    // After opening: some decoders check it at open, and the caller reports a declared size over
    // the cap itself, with the numbers. From here on no frame buffer over the cap is allocated.
    codec_->max_pixels = static_cast<std::int64_t>(std::min<std::uint64_t>(max_pixels, INT64_MAX));

    rotation_ = DisplayRotation(*stream);
    const bool sideways = rotation_ == 90 || rotation_ == 270;
    facts.width = sideways ? par.height : par.width;
    facts.height = sideways ? par.width : par.height;
    const double fps = Seconds(av_guess_frame_rate(format_, stream, nullptr));
    facts.fps = std::isfinite(fps) && fps > 0 && fps < 1000 ? fps : 0;
    double count = static_cast<double>(stream->nb_frames);
    if (count <= 0) {  // estimated from the duration, as VideoCapture does
      double duration = format_->duration > 0 ? static_cast<double>(format_->duration) / AV_TIME_BASE : 0;
      if (duration <= 0 && stream->duration > 0)
        duration = static_cast<double>(stream->duration) * Seconds(stream->time_base);
      count = std::floor(duration * facts.fps + 0.5);
    }
    facts.frame_count =
        std::isfinite(count) && count > 0 && count < 1e12 ? static_cast<std::int64_t>(count) : 0;
    facts.codec = CodecText(par);
    if (facts.width <= 0 || facts.height <= 0) {
      throw FunctionError(Errc::kBadInput, fmt::format("not a readable video: the stream reports {}x{}",
                                                       facts.width, facts.height));
    }
  } catch (...) {
    Close();
    throw;
  }
}

VideoDecoder::~VideoDecoder() { Close(); }

void VideoDecoder::Close() {
  sws_freeContext(scaler_);
  scaler_ = nullptr;
  av_packet_free(&packet_);
  av_frame_free(&frame_);
  avcodec_free_context(&codec_);
  avformat_close_input(&format_);
}

bool VideoDecoder::Next() {
  int errors = 0;
  for (;;) {
    const int received = avcodec_receive_frame(codec_, frame_);
    if (received == 0) return true;
    if (received == AVERROR_EOF) return false;
    if (received != AVERROR(EAGAIN)) {
      if (++errors > kMaxDecodeErrors) return false;
      continue;
    }
    if (draining_) return false;
    const int read = av_read_frame(format_, packet_);
    if (read == AVERROR(EAGAIN)) continue;
    if (read < 0) {  // the end of the file, or data that no longer parses: flush what is buffered
      draining_ = true;
      avcodec_send_packet(codec_, nullptr);
      continue;
    }
    if (packet_->stream_index != stream_) {
      av_packet_unref(packet_);
      continue;
    }
    const int sent = avcodec_send_packet(codec_, packet_);
    av_packet_unref(packet_);
    if (sent < 0 && ++errors > kMaxDecodeErrors) return false;
  }
}

double VideoDecoder::Time() const {
  const std::int64_t pts = frame_->best_effort_timestamp;
  if (pts == AV_NOPTS_VALUE) return -1;
  const AVStream* stream = format_->streams[stream_];
  const std::int64_t start = stream->start_time == AV_NOPTS_VALUE ? 0 : stream->start_time;
  return static_cast<double>(pts - start) * Seconds(stream->time_base);
}

cv::Mat VideoDecoder::Scaled(cv::Size size) {
  const bool sideways = rotation_ == 90 || rotation_ == 270;
  const cv::Size stored = sideways ? cv::Size(size.height, size.width) : size;
  // Area averaging when shrinking (every source pixel counts, as cv::INTER_AREA), bicubic otherwise.
  const int filter =
      stored.width <= frame_->width && stored.height <= frame_->height ? SWS_AREA : SWS_BICUBIC;
  scaler_ =
      sws_getCachedContext(scaler_, frame_->width, frame_->height, static_cast<AVPixelFormat>(frame_->format),
                           stored.width, stored.height, AV_PIX_FMT_BGR24, filter, nullptr, nullptr, nullptr);
  if (scaler_ == nullptr) {
    throw FunctionError(Errc::kBadInput,
                        fmt::format("not a readable video: cannot convert frames of pixel format {}",
                                    av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame_->format))));
  }
  cv::Mat out(stored, CV_8UC3);
  std::uint8_t* planes[4] = {out.data, nullptr, nullptr, nullptr};
  int strides[4] = {static_cast<int>(out.step), 0, 0, 0};
  sws_scale(scaler_, frame_->data, frame_->linesize, 0, frame_->height, planes, strides);
  if (rotation_ == 0) return out;
  cv::Mat rotated;
  cv::rotate(out, rotated,
             rotation_ == 90    ? cv::ROTATE_90_CLOCKWISE
             : rotation_ == 180 ? cv::ROTATE_180
                                : cv::ROTATE_90_COUNTERCLOCKWISE);
  return rotated;
}

}  // namespace runnel::functions::media
