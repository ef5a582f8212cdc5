// video.thumbnails and video.probe. Frames are decoded strictly in order and nothing ever seeks,
// since a seek decodes again from the previous keyframe; only the frames kept are converted, each
// straight to thumbnail size (VideoDecoder). Thread-safe: the functions hold only their config.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "image_ops.hpp"
#include "media.hpp"
#include "params.hpp"
#include "video_decoder.hpp"
#include "video_source.hpp"

namespace runnel::functions::media {
namespace {

constexpr int kSheetGap = 4;
constexpr int kMaxJpegSide = 65535;

// Frames a truncated file may fall short of its declared count by before it is called truncated:
// some containers only estimate the count from duration and frame rate.
std::int64_t CountTolerance(std::int64_t expected) { return std::max<std::int64_t>(2, expected / 100); }

std::string Timestamp(double seconds) {
  const auto tenths = static_cast<std::int64_t>(std::llround(seconds * 10));
  return fmt::format("{}:{:02}.{}", tenths / 600, tenths / 10 % 60, tenths % 10);
}

struct KeptFrame {
  cv::Mat image;
  double time = 0;
};

class VideoThumbnails final : public Function {
 public:
  static constexpr std::string_view kName = "video.thumbnails";

  explicit VideoThumbnails(const nlohmann::json& config) {
    const ParamReader params(kName, config,
                             {"every_seconds", "count", "width", "contact_sheet", "columns", "quality",
                              "max_bytes", "max_pixels", "max_frames_scanned", "max_thumbnails"});
    if (params.Has("every_seconds") && params.Has("count"))
      params.Fail("count", "give every_seconds or count, not both");
    every_seconds_ = params.Number("every_seconds", 1.0, 0.001, 86400.0);
    count_ = params.Int("count", 0, 1, 1000);
    width_ = static_cast<int>(params.Int("width", 320, 16, 1920));
    contact_sheet_ = params.Bool("contact_sheet", true);
    columns_ = static_cast<int>(params.Int("columns", 4, 1, 32));
    quality_ = static_cast<int>(params.Int("quality", 85, 1, 100));
    max_bytes_ =
        static_cast<std::uint64_t>(params.Int("max_bytes", kDefaultVideoMaxBytes, 1, kVideoMaxBytesCeiling));
    max_pixels_ =
        static_cast<std::uint64_t>(params.Int("max_pixels", kDefaultMaxPixels, 1, kMaxPixelsCeiling));
    max_frames_scanned_ = params.Int("max_frames_scanned", 1'000'000, 1, 100'000'000);
    max_thumbnails_ = params.Int("max_thumbnails", 100, 1, 1000);
    if (count_ > max_thumbnails_)
      params.Fail("count", fmt::format("{} is over max_thumbnails ({})", count_, max_thumbnails_));
  }

  Result Handle(const Event& event, Context& ctx) override {
    const VideoSource source(event, max_bytes_, ctx.Deadline());
    VideoFacts facts;
    VideoDecoder decoder(source, facts, max_pixels_);
    CheckUpFront(facts);

    const cv::Size thumb = ThumbSize(facts);
    std::vector<std::int64_t> wanted;  // count mode: the frame indices to keep, ascending
    if (count_ > 0) {
      if (facts.frame_count <= 0) {
        throw FunctionError(Errc::kBadInput,
                            "this video does not declare its frame count, which params.count needs; "
                            "use every_seconds instead");
      }
      for (std::int64_t k = 0; k < count_; ++k) {
        const std::int64_t index = (2 * k + 1) * facts.frame_count / (2 * count_);
        if (wanted.empty() || wanted.back() != index) wanted.push_back(index);
      }
    }

    Result result;
    nlohmann::json frames = nlohmann::json::array();
    std::vector<KeptFrame> kept;
    std::int64_t index = 0;
    std::size_t next_wanted = 0;
    double next_time = 0;
    for (;; ++index) {
      if (index % 32 == 0 && std::chrono::steady_clock::now() > ctx.Deadline()) {
        throw FunctionError(Errc::kTimeout, fmt::format("deadline passed after {} frames", index));
      }
      if (index >= max_frames_scanned_) {
        throw FunctionError(
            Errc::kLimitExceeded,
            fmt::format("scanned {} frames without reaching the end (max_frames_scanned)", index));
      }
      if (count_ > 0 && next_wanted == wanted.size()) break;  // nothing more to keep
      if (!decoder.Next()) break;
      const double pts = decoder.Time();
      const double time =
          pts >= 0 || facts.fps <= 0 ? std::max(pts, 0.0) : static_cast<double>(index) / facts.fps;
      bool keep = false;
      if (count_ > 0) {
        keep = index == wanted[next_wanted];
        if (keep) ++next_wanted;
      } else if (time + 1e-6 >= next_time) {
        keep = true;
        while (next_time <= time + 1e-6) next_time += every_seconds_;
      }
      if (!keep) continue;
      if (static_cast<std::int64_t>(kept.size()) >= max_thumbnails_) {
        throw FunctionError(
            Errc::kLimitExceeded,
            fmt::format("more than {} thumbnails (max_thumbnails); raise every_seconds", max_thumbnails_));
      }
      if (contact_sheet_ && SheetPixels(kept.size() + 1, thumb) > max_pixels_) {
        throw FunctionError(Errc::kLimitExceeded,
                            fmt::format("a contact sheet of {} thumbnails of {}x{} is over {} "
                                        "pixels (max_pixels); lower width or raise every_seconds",
                                        kept.size() + 1, thumb.width, thumb.height, max_pixels_));
      }
      KeptFrame k{decoder.Scaled(thumb), time};
      const auto name = fmt::format("frame_{:04}.jpg", kept.size() + 1);
      const std::string encoded = EncodeImage(k.image, OutputFormat::kJpeg, quality_);
      nlohmann::json facts_json = {{"width", thumb.width},
                                   {"height", thumb.height},
                                   {"format", "jpeg"},
                                   {"index", index},
                                   {"time", time}};
      OutputFile file = ctx.Outputs().Write(kName, event.envelope.id, name, encoded, facts_json);
      frames.push_back({{"path", file.path},
                        {"index", index},
                        {"time", time},
                        {"width", thumb.width},
                        {"height", thumb.height},
                        {"bytes", file.bytes}});
      result.files.push_back(std::move(file));
      if (!contact_sheet_) k.image.release();  // only the sheet needs the pixels later
      kept.push_back(std::move(k));
    }
    // Count mode stops early on purpose; only a stream that ran dry can be short.
    const std::int64_t decoded = count_ > 0 && next_wanted == wanted.size() ? facts.frame_count : index;
    if (index == 0) throw FunctionError(Errc::kBadInput, "not a readable video: no frame could be decoded");
    if (frames.empty())
      throw FunctionError(Errc::kBadInput, "not a readable video: no kept frame could be decoded");

    nlohmann::json output = {{"source", facts.ToJson()}, {"frames", frames}, {"frames_decoded", decoded}};
    const bool truncated =
        facts.frame_count > 0 && decoded < facts.frame_count - CountTolerance(facts.frame_count);
    output["truncated"] = truncated;
    if (truncated) {
      output["warning"] =
          fmt::format("truncated: {} frames decoded of {} expected", decoded, facts.frame_count);
    }
    output["contact_sheet"] =
        contact_sheet_ ? WriteSheet(kept, thumb, ctx, event, result) : nlohmann::json(nullptr);
    result.output = output.dump();
    return result;
  }

 private:
  void CheckUpFront(const VideoFacts& facts) const {
    const auto pixels = static_cast<std::uint64_t>(facts.width) * static_cast<std::uint64_t>(facts.height);
    if (pixels > max_pixels_) {
      throw FunctionError(Errc::kLimitExceeded,
                          fmt::format("video frames are {}x{} = {} pixels, over the limit of {} "
                                      "(max_pixels)",
                                      facts.width, facts.height, pixels, max_pixels_));
    }
    if (facts.frame_count > max_frames_scanned_) {
      throw FunctionError(Errc::kLimitExceeded, fmt::format("video declares {} frames, over the limit of {} "
                                                            "(max_frames_scanned)",
                                                            facts.frame_count, max_frames_scanned_));
    }
    if (count_ == 0 && facts.Duration() > 0) {
      const auto expected =
          static_cast<std::int64_t>(std::floor(facts.Duration() / every_seconds_ - 1e-9)) + 1;
      if (expected > max_thumbnails_) {
        throw FunctionError(
            Errc::kLimitExceeded,
            fmt::format("{:.1f} s every {} s makes {} thumbnails, over the limit of {} (max_thumbnails)",
                        facts.Duration(), every_seconds_, expected, max_thumbnails_));
      }
    }
  }

  cv::Size ThumbSize(const VideoFacts& facts) const {
    const int w = std::min(width_, facts.width);
    const auto h = static_cast<int>(
        std::max<std::int64_t>(1, (std::int64_t{facts.height} * w + facts.width / 2) / facts.width));
    return {w, h};
  }

  // An upper bound of the sheet's pixels for n tiles (at most one row's worth of slack).
  std::uint64_t SheetPixels(std::size_t n, cv::Size thumb) const {
    return static_cast<std::uint64_t>(n + static_cast<std::size_t>(columns_)) *
           static_cast<std::uint64_t>(thumb.width + kSheetGap) *
           static_cast<std::uint64_t>(thumb.height + kSheetGap);
  }

  nlohmann::json WriteSheet(const std::vector<KeptFrame>& kept, cv::Size thumb, Context& ctx,
                            const Event& event, Result& result) const {
    const int columns = std::min(columns_, static_cast<int>(kept.size()));
    const int rows = (static_cast<int>(kept.size()) + columns - 1) / columns;
    const int sheet_height = rows * (thumb.height + kSheetGap) + kSheetGap;
    if (sheet_height > kMaxJpegSide) {
      throw FunctionError(Errc::kLimitExceeded,
                          fmt::format("a contact sheet of {} rows of {} px is over {} px high; "
                                      "raise columns",
                                      rows, thumb.height, kMaxJpegSide));
    }
    cv::Mat sheet(sheet_height, columns * (thumb.width + kSheetGap) + kSheetGap, CV_8UC3,
                  cv::Scalar(24, 24, 24));
    const double scale = std::max(0.3, thumb.width / 640.0);
    for (std::size_t i = 0; i < kept.size(); ++i) {
      const int x = kSheetGap + static_cast<int>(i % columns) * (thumb.width + kSheetGap);
      const int y = kSheetGap + static_cast<int>(i / columns) * (thumb.height + kSheetGap);
      kept[i].image.copyTo(sheet(cv::Rect(x, y, thumb.width, thumb.height)));
      const cv::Point at(x + 4, y + thumb.height - 6);
      const std::string label = Timestamp(kept[i].time);
      cv::putText(sheet, label, at, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), 3, cv::LINE_AA);
      cv::putText(sheet, label, at, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(255, 255, 255), 1,
                  cv::LINE_AA);
    }
    const std::string encoded = EncodeImage(sheet, OutputFormat::kJpeg, quality_);
    nlohmann::json facts = {{"width", sheet.cols}, {"height", sheet.rows}, {"format", "jpeg"}};
    OutputFile file = ctx.Outputs().Write(kName, event.envelope.id, "contact.jpg", encoded, facts);
    nlohmann::json described = {{"path", file.path},   {"width", sheet.cols}, {"height", sheet.rows},
                                {"bytes", file.bytes}, {"columns", columns},  {"rows", rows}};
    result.files.push_back(std::move(file));
    return described;
  }

  double every_seconds_ = 1.0;
  std::int64_t count_ = 0;
  int width_ = 320;
  bool contact_sheet_ = true;
  int columns_ = 4;
  int quality_ = 85;
  std::uint64_t max_bytes_ = kDefaultVideoMaxBytes;
  std::uint64_t max_pixels_ = kDefaultMaxPixels;
  std::int64_t max_frames_scanned_ = 1'000'000;
  std::int64_t max_thumbnails_ = 100;
};

class VideoProbe final : public Function {
 public:
  static constexpr std::string_view kName = "video.probe";

  explicit VideoProbe(const nlohmann::json& config) {
    const ParamReader params(kName, config, {"max_bytes"});
    max_bytes_ =
        static_cast<std::uint64_t>(params.Int("max_bytes", kDefaultVideoMaxBytes, 1, kVideoMaxBytesCeiling));
  }

  Result Handle(const Event& event, Context& ctx) override {
    const VideoSource source(event, max_bytes_, ctx.Deadline());
    VideoFacts facts;
    const VideoDecoder decoder(source, facts, kMaxPixelsCeiling);
    Result result;
    result.output = facts.ToJson().dump();
    return result;
  }

 private:
  std::uint64_t max_bytes_ = kDefaultVideoMaxBytes;
};

}  // namespace

void RegisterVideoFunctions(Registry& registry) {
  registry.Register(std::string(VideoThumbnails::kName), std::string(Summary(VideoThumbnails::kName)),
                    [](const nlohmann::json& params) { return std::make_unique<VideoThumbnails>(params); });
  registry.Register(std::string(VideoProbe::kName), std::string(Summary(VideoProbe::kName)),
                    [](const nlohmann::json& params) { return std::make_unique<VideoProbe>(params); });
}

}  // namespace runnel::functions::media
