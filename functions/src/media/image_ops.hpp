// The image pipeline shared by image.thumbnail and image.convert: guard, decode (with JPEG
// shrink-on-load), EXIF orientation, resize, encode. Every function here is thread-safe.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>

#include "image_header.hpp"
#include "limits.hpp"  // kMaxPixelsCeiling, kMaxDecodeSide

namespace runnel::functions::media {

inline constexpr std::uint64_t kDefaultMaxPixels = 50'000'000;
inline constexpr std::int64_t kDefaultImageMaxBytes = std::int64_t{100} << 20;
inline constexpr std::int64_t kMaxBytesCeiling = std::int64_t{1} << 30;
// Longest side of an output image (WebP's limit is 16383).
inline constexpr int kMaxOutputSide = 16383;

enum class OutputFormat { kJpeg, kPng, kWebp };
OutputFormat OutputFormatFromName(std::string_view name);  // "jpeg", "png" or "webp"
std::string_view OutputFormatName(OutputFormat format);    // "jpeg", "png", "webp"
std::string_view OutputExtension(OutputFormat format);     // "jpg", "png", "webp"

// The checks between header and decoder, in this order: a format OpenCV cannot decode (GIF, animated
// WebP) is kBadInput; a side over kMaxDecodeSide or more than max_pixels is kLimitExceeded; a file cut
// short is kBadInput with the parser's "truncated ..." message.
void CheckDecodable(const ImageInfo& info, std::uint64_t max_pixels);

// The largest size with src's aspect ratio inside box, never larger than src, at least 1x1.
cv::Size FitInside(cv::Size src, cv::Size box);
// The size src must be scaled to so that it covers box (for fill); never larger than src.
cv::Size CoverSize(cv::Size src, cv::Size box);

// The JPEG shrink-on-load factor (1, 2, 4 or 8): the largest that keeps at least `needed` pixels in
// each axis. Both sizes as stored (before orientation).
int JpegReduction(cv::Size stored, cv::Size needed);

// Decodes to 8-bit BGR, display-oriented. `needed` (display axes) is the smallest size the caller
// will resize to; JPEGs are decoded at a reduction that keeps it, other formats at full size.
// Throws kBadInput when the decoder rejects the data.
cv::Mat DecodeImage(std::string_view bytes, const ImageInfo& info, cv::Size needed);

// Turns a stored image into its display orientation (EXIF 1..8).
cv::Mat ApplyOrientation(const cv::Mat& stored, int orientation);

// Resizes to exactly `size` (area averaging when shrinking); returns `image` itself when equal.
cv::Mat ResizeTo(const cv::Mat& image, cv::Size size);
// Crops the centre to box's aspect ratio, then resizes to exactly box.
cv::Mat FillBox(const cv::Mat& image, cv::Size box);

// Throws kInternal when the encoder fails. `quality` applies to JPEG and WebP.
std::string EncodeImage(const cv::Mat& image, OutputFormat format, int quality);

}  // namespace runnel::functions::media
