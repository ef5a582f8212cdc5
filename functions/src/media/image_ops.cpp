#include "image_ops.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "runnel/functions/function.hpp"

namespace runnel::functions::media {

OutputFormat OutputFormatFromName(std::string_view name) {
  if (name == "png") return OutputFormat::kPng;
  if (name == "webp") return OutputFormat::kWebp;
  return OutputFormat::kJpeg;
}

std::string_view OutputFormatName(OutputFormat format) {
  switch (format) {
    case OutputFormat::kJpeg:
      return "jpeg";
    case OutputFormat::kPng:
      return "png";
    case OutputFormat::kWebp:
      return "webp";
  }
  return "jpeg";
}

std::string_view OutputExtension(OutputFormat format) {
  return format == OutputFormat::kJpeg ? "jpg" : OutputFormatName(format);
}

void CheckDecodable(const ImageInfo& info, std::uint64_t max_pixels) {
  if (info.format == ImageFormat::kGif) {
    throw FunctionError(
        Errc::kBadInput,
        "unsupported image format gif: this OpenCV cannot decode it (decodable: jpeg, png, webp, bmp)");
  }
  if (info.format == ImageFormat::kWebp && info.animated) {
    throw FunctionError(Errc::kBadInput, "unsupported image: animated WebP");
  }
  if (info.width > kMaxDecodeSide || info.height > kMaxDecodeSide) {
    throw FunctionError(Errc::kLimitExceeded, fmt::format("image is {}x{}: a side is over the limit of {}",
                                                          info.width, info.height, kMaxDecodeSide));
  }
  if (info.Pixels() > max_pixels) {
    throw FunctionError(Errc::kLimitExceeded,
                        fmt::format("image is {}x{} = {} pixels, over the limit of {} (max_pixels)",
                                    info.width, info.height, info.Pixels(), max_pixels));
  }
  if (!info.truncated.empty()) throw FunctionError(Errc::kBadInput, info.truncated);
}

cv::Size FitInside(cv::Size src, cv::Size box) {
  if (src.width <= box.width && src.height <= box.height) return src;
  const auto w = static_cast<std::int64_t>(src.width);
  const auto h = static_cast<std::int64_t>(src.height);
  // Width-bound when src is relatively wider than box: w/h >= W/H.
  if (w * box.height >= h * box.width) {
    return {box.width, static_cast<int>(std::max<std::int64_t>(1, (h * box.width + w / 2) / w))};
  }
  return {static_cast<int>(std::max<std::int64_t>(1, (w * box.height + h / 2) / h)), box.height};
}

cv::Size CoverSize(cv::Size src, cv::Size box) {
  const auto w = static_cast<std::int64_t>(src.width);
  const auto h = static_cast<std::int64_t>(src.height);
  cv::Size cover;
  if (w * box.height >= h * box.width) {  // wider than box: height decides
    cover = {static_cast<int>((w * box.height + h - 1) / h), box.height};
  } else {
    cover = {box.width, static_cast<int>((h * box.width + w - 1) / w)};
  }
  return {std::min(cover.width, src.width), std::min(cover.height, src.height)};
}

int JpegReduction(cv::Size stored, cv::Size needed) {
  for (int d : {8, 4, 2}) {
    if ((stored.width + d - 1) / d >= needed.width && (stored.height + d - 1) / d >= needed.height) return d;
  }
  return 1;
}

cv::Mat ApplyOrientation(const cv::Mat& stored, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2:
      cv::flip(stored, out, 1);
      break;
    case 3:
      cv::flip(stored, out, -1);
      break;
    case 4:
      cv::flip(stored, out, 0);
      break;
    case 5:
      cv::transpose(stored, out);
      break;
    case 6:
      cv::rotate(stored, out, cv::ROTATE_90_CLOCKWISE);
      break;
    case 7: {
      cv::Mat t;
      cv::transpose(stored, t);
      cv::flip(t, out, -1);
      break;
    }
    case 8:
      cv::rotate(stored, out, cv::ROTATE_90_COUNTERCLOCKWISE);
      break;
    default:
      return stored;
  }
  return out;
}

cv::Mat DecodeImage(std::string_view bytes, const ImageInfo& info, cv::Size needed) {
  int flags = cv::IMREAD_COLOR;
  if (info.format == ImageFormat::kJpeg) {
    const cv::Size needed_stored = info.orientation >= 5 ? cv::Size(needed.height, needed.width) : needed;
    switch (JpegReduction({static_cast<int>(info.width), static_cast<int>(info.height)}, needed_stored)) {
      case 8:
        flags = cv::IMREAD_REDUCED_COLOR_8;
        break;
      case 4:
        flags = cv::IMREAD_REDUCED_COLOR_4;
        break;
      case 2:
        flags = cv::IMREAD_REDUCED_COLOR_2;
        break;
      default:
        break;
    }
  }
  // Orientation comes from our own header parser and is applied below, the same way for every format
  // and every reduction, rather than relying on which decoders OpenCV applies EXIF for.
  flags |= cv::IMREAD_IGNORE_ORIENTATION;
  // imdecode only reads the buffer; the Mat header just cannot express const.
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat stored;
  try {
    stored = cv::imdecode(buffer, flags);
  } catch (const cv::Exception& e) {
    throw FunctionError(Errc::kBadInput,
                        fmt::format("corrupt {}: the decoder failed: {}", FormatLabel(info.format), e.err));
  }
  if (stored.empty()) {
    throw FunctionError(Errc::kBadInput,
                        fmt::format("corrupt {}: the decoder could not read it", FormatLabel(info.format)));
  }
  return ApplyOrientation(stored, info.orientation);
}

cv::Mat ResizeTo(const cv::Mat& image, cv::Size size) {
  if (image.size() == size) return image;
  cv::Mat out;
  const bool shrinking = size.width <= image.cols && size.height <= image.rows;
  cv::resize(image, out, size, 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_CUBIC);
  return out;
}

cv::Mat FillBox(const cv::Mat& image, cv::Size box) {
  const auto w = static_cast<std::int64_t>(image.cols);
  const auto h = static_cast<std::int64_t>(image.rows);
  cv::Rect crop(0, 0, image.cols, image.rows);
  if (w * box.height > h * box.width) {  // too wide: keep the middle columns
    crop.width = static_cast<int>(std::max<std::int64_t>(1, (h * box.width + box.height / 2) / box.height));
    crop.x = (image.cols - crop.width) / 2;
  } else if (w * box.height < h * box.width) {  // too tall: keep the middle rows
    crop.height = static_cast<int>(std::max<std::int64_t>(1, (w * box.height + box.width / 2) / box.width));
    crop.y = (image.rows - crop.height) / 2;
  }
  return ResizeTo(image(crop), box);
}

std::string EncodeImage(const cv::Mat& image, OutputFormat format, int quality) {
  std::vector<int> params;
  const char* ext = ".jpg";
  switch (format) {
    case OutputFormat::kJpeg:
      params = {cv::IMWRITE_JPEG_QUALITY, quality};
      break;
    case OutputFormat::kPng:
      ext = ".png";
      params = {cv::IMWRITE_PNG_COMPRESSION, 6};
      break;
    case OutputFormat::kWebp:
      ext = ".webp";
      params = {cv::IMWRITE_WEBP_QUALITY, quality};
      break;
  }
  std::vector<uchar> buffer;
  try {
    if (!cv::imencode(ext, image, buffer, params)) {
      throw FunctionError(Errc::kInternal, fmt::format("the {} encoder failed", OutputFormatName(format)));
    }
  } catch (const cv::Exception& e) {
    throw FunctionError(Errc::kInternal,
                        fmt::format("the {} encoder failed: {}", OutputFormatName(format), e.err));
  }
  return {buffer.begin(), buffer.end()};
}

}  // namespace runnel::functions::media
