// image.thumbnail, image.convert and image.metadata. Each reads its input once, parses the header
// (the pre-decode guard), and only then decodes. Thread-safe: the functions hold only their config.
#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "image_header.hpp"
#include "image_ops.hpp"
#include "media.hpp"
#include "params.hpp"

namespace runnel::functions::media {
namespace {

struct ImageCaps {
  std::uint64_t max_pixels = kDefaultMaxPixels;
  std::size_t max_bytes = kDefaultImageMaxBytes;
};

ImageCaps ReadCaps(const ParamReader& params) {
  return {static_cast<std::uint64_t>(params.Int("max_pixels", kDefaultMaxPixels, 1, kMaxPixelsCeiling)),
          static_cast<std::size_t>(params.Int("max_bytes", kDefaultImageMaxBytes, 1, kMaxBytesCeiling))};
}

nlohmann::json SourceJson(const ImageInfo& info) {
  return {{"format", FormatName(info.format)},
          {"width", info.DisplayWidth()},
          {"height", info.DisplayHeight()},
          {"orientation", info.orientation}};
}

// Encodes, stores and describes one output image.
nlohmann::json WriteImage(Context& ctx, const Event& event, std::string_view function, std::string_view name,
                          const cv::Mat& image, OutputFormat format, int quality, Result& result) {
  const std::string encoded = EncodeImage(image, format, quality);
  nlohmann::json facts = {
      {"width", image.cols}, {"height", image.rows}, {"format", OutputFormatName(format)}};
  OutputFile file = ctx.Outputs().Write(function, event.envelope.id, name, encoded, facts);
  nlohmann::json described = {{"path", file.path},
                              {"width", image.cols},
                              {"height", image.rows},
                              {"bytes", file.bytes},
                              {"format", OutputFormatName(format)}};
  result.files.push_back(std::move(file));
  return described;
}

struct ThumbnailSize {
  cv::Size box;
  bool fill = false;
};

class Thumbnail final : public Function {
 public:
  static constexpr std::string_view kName = "image.thumbnail";

  explicit Thumbnail(const nlohmann::json& config) {
    const ParamReader params(kName, config, {"sizes", "format", "quality", "max_pixels", "max_bytes"});
    format_ = OutputFormatFromName(params.Choice("format", "jpeg", {"jpeg", "png", "webp"}));
    quality_ = static_cast<int>(params.Int("quality", 85, 1, 100));
    caps_ = ReadCaps(params);
    if (!params.Has("sizes")) {
      sizes_.push_back({{256, 256}, false});
      return;
    }
    const auto& sizes = params.Raw("sizes");
    if (!sizes.is_array() || sizes.empty() || sizes.size() > 16) {
      params.Fail("sizes", "must be a list of 1 to 16 {\"width\", \"height\", \"mode\"} objects");
    }
    std::set<std::pair<int, int>> seen;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const std::string where = fmt::format("sizes[{}]", i);
      const auto& entry = sizes[i];
      if (!entry.is_object()) params.Fail(where, "must be an object with width, height and mode");
      for (const auto& [key, value] : entry.items()) {
        if (key != "width" && key != "height" && key != "mode") {
          params.Fail(fmt::format("{}.{}", where, key), "unknown key (known: width, height, mode)");
        }
      }
      if (!entry.contains("width") || !entry.contains("height")) params.Fail(where, "needs width and height");
      ThumbnailSize size;
      size.box.width = static_cast<int>(NestedInt(params, where, entry, "width", 0, 1, kMaxOutputSide));
      size.box.height = static_cast<int>(NestedInt(params, where, entry, "height", 0, 1, kMaxOutputSide));
      const auto mode = entry.value("mode", nlohmann::json("fit"));
      if (mode != "fit" && mode != "fill")
        params.Fail(where + ".mode", fmt::format("{} is not fit or fill", mode.dump()));
      size.fill = mode == "fill";
      if (!seen.emplace(size.box.width, size.box.height).second) {
        params.Fail(where, fmt::format("duplicate size {}x{} (outputs are named by size)", size.box.width,
                                       size.box.height));
      }
      sizes_.push_back(size);
    }
  }

  Result Handle(const Event& event, Context& ctx) override {
    const std::string bytes = Context::ReadInput(event, caps_.max_bytes, ctx.Deadline());
    const ImageInfo info = ParseImageHeader(bytes);
    CheckDecodable(info, caps_.max_pixels);
    const cv::Size display(static_cast<int>(info.DisplayWidth()), static_cast<int>(info.DisplayHeight()));

    // The decoder only has to deliver the largest size any output is made from.
    cv::Size needed(1, 1);
    for (const auto& size : sizes_) {
      const cv::Size from = size.fill ? CoverSize(display, size.box) : FitInside(display, size.box);
      needed = {std::max(needed.width, from.width), std::max(needed.height, from.height)};
    }
    const cv::Mat image = DecodeImage(bytes, info, needed);

    Result result;
    nlohmann::json thumbnails = nlohmann::json::array();
    for (const auto& size : sizes_) {
      const cv::Mat thumb =
          size.fill ? FillBox(image, size.box) : ResizeTo(image, FitInside(display, size.box));
      const auto name = fmt::format("{}x{}.{}", size.box.width, size.box.height, OutputExtension(format_));
      thumbnails.push_back(WriteImage(ctx, event, kName, name, thumb, format_, quality_, result));
    }
    result.output = nlohmann::json{{"source", SourceJson(info)}, {"thumbnails", thumbnails}}.dump();
    return result;
  }

 private:
  std::vector<ThumbnailSize> sizes_;
  OutputFormat format_ = OutputFormat::kJpeg;
  int quality_ = 85;
  ImageCaps caps_;
};

class Convert final : public Function {
 public:
  static constexpr std::string_view kName = "image.convert";

  explicit Convert(const nlohmann::json& config) {
    const ParamReader params(kName, config,
                             {"format", "quality", "max_width", "max_height", "max_pixels", "max_bytes"});
    format_ = OutputFormatFromName(params.Choice("format", "jpeg", {"jpeg", "png", "webp"}));
    quality_ = static_cast<int>(params.Int("quality", 85, 1, 100));
    const int side_limit = format_ == OutputFormat::kWebp ? kMaxOutputSide : static_cast<int>(kMaxDecodeSide);
    box_.width = static_cast<int>(params.Int("max_width", side_limit, 1, side_limit));
    box_.height = static_cast<int>(params.Int("max_height", side_limit, 1, side_limit));
    caps_ = ReadCaps(params);
  }

  Result Handle(const Event& event, Context& ctx) override {
    const std::string bytes = Context::ReadInput(event, caps_.max_bytes, ctx.Deadline());
    const ImageInfo info = ParseImageHeader(bytes);
    CheckDecodable(info, caps_.max_pixels);
    const cv::Size display(static_cast<int>(info.DisplayWidth()), static_cast<int>(info.DisplayHeight()));
    if (format_ == OutputFormat::kWebp &&
        (display.width > kMaxOutputSide || display.height > kMaxOutputSide) && box_.width == kMaxOutputSide &&
        box_.height == kMaxOutputSide) {
      // Not silently shrunk: the caller asked for a conversion, not a resize.
      throw FunctionError(
          Errc::kLimitExceeded,
          fmt::format("image is {}x{}: WebP allows at most {} a side; set max_width/max_height to "
                      "downscale",
                      display.width, display.height, kMaxOutputSide));
    }
    const cv::Size target = FitInside(display, box_);
    const cv::Mat image = ResizeTo(DecodeImage(bytes, info, target), target);
    Result result;
    const auto name = fmt::format("converted.{}", OutputExtension(format_));
    auto output = WriteImage(ctx, event, kName, name, image, format_, quality_, result);
    result.output = nlohmann::json{{"source", SourceJson(info)}, {"output", std::move(output)}}.dump();
    return result;
  }

 private:
  OutputFormat format_ = OutputFormat::kJpeg;
  int quality_ = 85;
  cv::Size box_;
  ImageCaps caps_;
};

class Metadata final : public Function {
 public:
  static constexpr std::string_view kName = "image.metadata";

  explicit Metadata(const nlohmann::json& config) {
    const ParamReader params(kName, config, {"max_bytes"});
    max_bytes_ =
        static_cast<std::size_t>(params.Int("max_bytes", kDefaultImageMaxBytes, 1, kMaxBytesCeiling));
  }

  Result Handle(const Event& event, Context& ctx) override {
    const std::string bytes = Context::ReadInput(event, max_bytes_, ctx.Deadline());
    const ImageInfo info = ParseImageHeader(bytes);
    if (!info.truncated.empty()) throw FunctionError(Errc::kBadInput, info.truncated);
    Result result;
    result.output = nlohmann::json{
        {"format", FormatName(info.format)},
        {"width", info.width},
        {"height", info.height},
        {"channels", info.channels},
        {"orientation", info.orientation},
        {"bytes", bytes.size()},
        {"display_width", info.DisplayWidth()},
        {"display_height", info.DisplayHeight()},
        {"animated",
         info.animated}}.dump();
    return result;
  }

 private:
  std::size_t max_bytes_ = kDefaultImageMaxBytes;
};

}  // namespace

void RegisterImageFunctions(Registry& registry) {
  registry.Register(std::string(Thumbnail::kName), std::string(Summary(Thumbnail::kName)),
                    [](const nlohmann::json& params) { return std::make_unique<Thumbnail>(params); });
  registry.Register(std::string(Convert::kName), std::string(Summary(Convert::kName)),
                    [](const nlohmann::json& params) { return std::make_unique<Convert>(params); });
  registry.Register(std::string(Metadata::kName), std::string(Summary(Metadata::kName)),
                    [](const nlohmann::json& params) { return std::make_unique<Metadata>(params); });
}

}  // namespace runnel::functions::media
