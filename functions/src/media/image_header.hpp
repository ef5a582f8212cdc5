// Reads an image's format, dimensions, channels and EXIF orientation from its bytes without decoding
// a pixel, and walks the file's structure far enough to tell a complete file from a truncated one.
// It is the guard in front of every decoder: the pixel cap is checked against what it reports.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace runnel::functions::media {

enum class ImageFormat { kJpeg, kPng, kWebp, kGif, kBmp };

// "jpeg", "png", "webp", "gif", "bmp".
std::string_view FormatName(ImageFormat format);
// "JPEG", "PNG", "WebP", "GIF", "BMP": for messages.
std::string_view FormatLabel(ImageFormat format);

struct ImageInfo {
  ImageFormat format = ImageFormat::kJpeg;
  std::uint32_t width = 0;  // as stored, before EXIF orientation
  std::uint32_t height = 0;
  int channels = 3;
  int orientation = 1;    // EXIF 1..8; 1 when absent or invalid
  bool animated = false;  // GIF with several frames, animated WebP
  // Set when the file ends early after its dimensions were read: callers check the pixel cap first
  // (a 100000x100000 header in a small file is over the cap before it is truncated), then this.
  std::string truncated;

  std::uint64_t Pixels() const { return std::uint64_t{width} * height; }
  // Orientations 5..8 swap the axes: these are the dimensions a viewer shows.
  std::uint32_t DisplayWidth() const { return orientation >= 5 ? height : width; }
  std::uint32_t DisplayHeight() const { return orientation >= 5 ? width : height; }
};

// Parses the whole file's structure in linear time without decoding. Throws FunctionError(kBadInput)
// saying what is wrong: "input is empty (0 bytes)", "not a recognised image ...", "corrupt <FORMAT>:
// ...", "unsupported <FORMAT>: ...", or "truncated <FORMAT>: ..." when the file ends before its
// dimensions; a file cut short after them comes back with `truncated` set.
ImageInfo ParseImageHeader(std::string_view bytes);

// The orientation tag (0x0112) of a TIFF-structured EXIF block that starts at its byte-order mark
// ("II" or "MM"); 1 when the tag is absent, out of range or the block is malformed.
int ExifOrientation(std::string_view tiff);

}  // namespace runnel::functions::media
