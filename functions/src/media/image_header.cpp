#include "image_header.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "runnel/functions/function.hpp"

namespace runnel::functions::media {
namespace {

[[noreturn]] void Bad(std::string message) { throw FunctionError(Errc::kBadInput, std::move(message)); }

std::uint8_t U8(std::string_view b, std::size_t o) { return static_cast<std::uint8_t>(b[o]); }
std::uint32_t Be16(std::string_view b, std::size_t o) { return std::uint32_t{U8(b, o)} << 8 | U8(b, o + 1); }
std::uint32_t Be32(std::string_view b, std::size_t o) { return Be16(b, o) << 16 | Be16(b, o + 2); }
std::uint32_t Le16(std::string_view b, std::size_t o) { return std::uint32_t{U8(b, o + 1)} << 8 | U8(b, o); }
std::uint32_t Le24(std::string_view b, std::size_t o) {
  return std::uint32_t{U8(b, o + 2)} << 16 | Le16(b, o);
}
std::uint32_t Le32(std::string_view b, std::size_t o) { return Le16(b, o + 2) << 16 | Le16(b, o); }

std::string HexPrefix(std::string_view b) {
  std::string out;
  for (std::size_t i = 0; i < b.size() && i < 8; ++i) out += fmt::format("{:02x}", U8(b, i));
  return out;
}

// ---- JPEG: markers and segments up to EOI; entropy-coded data is skipped with memchr.

bool IsSof(std::uint8_t m) { return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC; }
// Baseline, extended, progressive, and their arithmetic-coded twins: what libjpeg(-turbo) decodes.
bool IsDecodableSof(std::uint8_t m) { return m == 0xC0 || m == 0xC1 || m == 0xC2 || m == 0xC9 || m == 0xCA; }

// From just after a start-of-scan segment to the next marker that is not a stuffed byte or a restart.
std::size_t SkipEntropyData(std::string_view b, std::size_t pos) {
  const std::size_t n = b.size();
  while (pos < n) {
    const void* ff = std::memchr(b.data() + pos, 0xFF, n - pos);
    if (ff == nullptr) return n;
    pos = static_cast<std::size_t>(static_cast<const char*>(ff) - b.data());
    if (pos + 1 >= n) return n;
    const std::uint8_t next = U8(b, pos + 1);
    if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
      pos += 2;
    } else if (next == 0xFF) {
      pos += 1;
    } else {
      return pos;
    }
  }
  return n;
}

ImageInfo ParseJpeg(std::string_view b) {
  ImageInfo info;
  info.format = ImageFormat::kJpeg;
  bool have_frame = false;
  bool have_exif = false;
  bool have_scan = false;
  const std::size_t n = b.size();
  std::size_t pos = 2;
  const auto cut = [&](std::string_view where) -> void {
    if (!have_frame) Bad("truncated JPEG: the file ends before the frame header");
    info.truncated = fmt::format("truncated JPEG: the file ends {} without an end-of-image marker", where);
  };
  while (true) {
    if (pos >= n) {
      cut(have_scan ? "inside the image data" : "before the image data");
      return info;
    }
    if (U8(b, pos) != 0xFF) Bad(fmt::format("corrupt JPEG: expected a marker at byte {}", pos));
    while (pos < n && U8(b, pos) == 0xFF) ++pos;  // fill bytes
    if (pos >= n) continue;
    const std::uint8_t m = U8(b, pos++);
    if (m == 0xD9) break;
    if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;
    if (m == 0x00 || m == 0xD8)
      Bad(fmt::format("corrupt JPEG: unexpected marker 0x{:02x} at byte {}", m, pos - 1));
    if (n - pos < 2) {
      cut("inside a segment header");
      return info;
    }
    const std::size_t len = Be16(b, pos);
    if (len < 2) Bad(fmt::format("corrupt JPEG: segment 0x{:02x} at byte {} has length {}", m, pos - 1, len));
    if (len > n - pos) {
      cut(fmt::format("inside segment 0x{:02x} at byte {}", m, pos - 1));
      return info;
    }
    const std::string_view seg = b.substr(pos + 2, len - 2);
    if (IsSof(m) && !have_frame) {
      if (!IsDecodableSof(m))
        Bad(fmt::format("unsupported JPEG: coding process SOF{} (lossless or hierarchical)", m - 0xC0));
      if (seg.size() < 6) Bad("corrupt JPEG: frame header too short");
      info.height = Be16(seg, 1);
      info.width = Be16(seg, 3);
      info.channels = U8(seg, 5);
      if (info.width == 0 || info.height == 0)
        Bad("unsupported JPEG: frame header gives zero width or height");
      if (info.channels != 1 && info.channels != 3 && info.channels != 4) {
        Bad(fmt::format("corrupt JPEG: {} colour components", info.channels));
      }
      have_frame = true;
    } else if (m == 0xE1 && !have_exif && seg.size() >= 6 &&
               seg.substr(0, 6) == std::string_view("Exif\0\0", 6)) {
      info.orientation = ExifOrientation(seg.substr(6));
      have_exif = true;
    }
    pos += len;
    if (m == 0xDA) {
      if (!have_frame) Bad("corrupt JPEG: image data before the frame header");
      have_scan = true;
      pos = SkipEntropyData(b, pos);
    }
  }
  if (!have_frame) Bad("corrupt JPEG: end-of-image marker before a frame header");
  if (!have_scan) Bad("corrupt JPEG: no image data before the end-of-image marker");
  return info;
}

// ---- PNG: chunk by chunk up to IEND (CRCs are left to libpng).

ImageInfo ParsePng(std::string_view b) {
  ImageInfo info;
  info.format = ImageFormat::kPng;
  const std::size_t n = b.size();
  std::size_t pos = 8;
  bool have_data = false;
  for (int index = 0;; ++index) {
    if (n - pos < 8) {
      if (index == 0) Bad("truncated PNG: the file ends before the IHDR chunk");
      info.truncated = "truncated PNG: the file ends without an IEND chunk";
      return info;
    }
    const std::size_t len = Be32(b, pos);
    const std::string_view type = b.substr(pos + 4, 4);
    for (char c : type) {
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
        Bad(fmt::format("corrupt PNG: bad chunk type at byte {}", pos + 4));
    }
    if (len > 0x7FFFFFFF) Bad(fmt::format("corrupt PNG: chunk {} has length {}", type, len));
    if (len + 4 > n - pos - 8) {
      if (index == 0) Bad("truncated PNG: the file ends inside the IHDR chunk");
      info.truncated =
          fmt::format("truncated PNG: chunk {} at byte {} runs past the end of the file", type, pos);
      return info;
    }
    const std::string_view data = b.substr(pos + 8, len);
    if (index == 0) {
      if (type != "IHDR" || len != 13) Bad("corrupt PNG: the first chunk is not IHDR");
      info.width = Be32(data, 0);
      info.height = Be32(data, 4);
      if (info.width == 0 || info.height == 0 || info.width > 0x7FFFFFFF || info.height > 0x7FFFFFFF) {
        Bad(fmt::format("corrupt PNG: IHDR gives {}x{}", info.width, info.height));
      }
      switch (U8(data, 9)) {
        case 0:
          info.channels = 1;
          break;
        case 2:
        case 3:
          info.channels = 3;
          break;
        case 4:
          info.channels = 2;
          break;
        case 6:
          info.channels = 4;
          break;
        default:
          Bad(fmt::format("corrupt PNG: colour type {}", U8(data, 9)));
      }
    } else if (type == "eXIf") {
      info.orientation = ExifOrientation(data);
    } else if (type == "acTL") {
      info.animated = true;
    } else if (type == "IDAT") {
      have_data = true;
    } else if (type == "IEND") {
      if (!have_data) Bad("corrupt PNG: no IDAT chunk before IEND");
      return info;
    }
    pos += 12 + len;
  }
}

// ---- WebP: RIFF container; the first chunk (VP8, VP8L or VP8X) gives the size.

ImageInfo ParseWebp(std::string_view b) {
  ImageInfo info;
  info.format = ImageFormat::kWebp;
  const std::size_t riff = Le32(b, 4);
  if (riff < 4 + 8) Bad(fmt::format("corrupt WebP: RIFF size {}", riff));
  const bool cut = riff > b.size() - 8;
  const std::size_t end = cut ? b.size() : riff + 8;
  std::size_t pos = 12;
  bool have_image = false;
  bool extended = false;
  // pos + 8, not end - pos: a last chunk of odd size without its padding byte leaves pos at end + 1.
  for (int index = 0; pos + 8 <= end; ++index) {
    const std::string_view type = b.substr(pos, 4);
    const std::size_t size = Le32(b, pos + 4);
    // A chunk cut short still tells the size when its header survived; the loop ends after it.
    const bool short_chunk = size > end - pos - 8;
    if (short_chunk && !cut)
      Bad(fmt::format("corrupt WebP: chunk {} at byte {} runs past the RIFF end", type, pos));
    const std::string_view p = b.substr(pos + 8, std::min(size, end - pos - 8));
    const auto need = [&](std::size_t n, std::string_view what) {
      if (p.size() >= n) return;
      if (short_chunk) Bad(fmt::format("truncated WebP: the file ends inside the {} header", type));
      Bad(fmt::format("corrupt WebP: bad {} header", what));
    };
    if (index == 0) {
      if (type == "VP8 ") {
        need(10, "VP8 frame");
        if (p.substr(3, 3) != "\x9d\x01\x2a") Bad("corrupt WebP: bad VP8 frame header");
        info.width = Le16(p, 6) & 0x3FFF;
        info.height = Le16(p, 8) & 0x3FFF;
        have_image = true;
      } else if (type == "VP8L") {
        need(5, "VP8L");
        if (U8(p, 0) != 0x2F) Bad("corrupt WebP: bad VP8L header");
        const std::uint32_t bits = Le32(p, 1);
        info.width = (bits & 0x3FFF) + 1;
        info.height = ((bits >> 14) & 0x3FFF) + 1;
        info.channels = (bits >> 28) & 1 ? 4 : 3;
        have_image = true;
      } else if (type == "VP8X") {
        need(10, "VP8X");
        const std::uint8_t flags = U8(p, 0);
        info.width = Le24(p, 4) + 1;
        info.height = Le24(p, 7) + 1;
        info.channels = flags & 0x10 ? 4 : 3;
        info.animated = (flags & 0x02) != 0;
        extended = true;
      } else {
        Bad(fmt::format("corrupt WebP: unknown first chunk '{}'", type));
      }
      if (info.width == 0 || info.height == 0) Bad("corrupt WebP: zero width or height");
    } else if (extended && (type == "VP8 " || type == "VP8L")) {
      have_image = true;
    } else if (type == "ANIM" || type == "ANMF") {
      info.animated = true;
    } else if (type == "EXIF") {
      // Some writers keep the JPEG-style "Exif\0\0" prefix inside the chunk.
      const bool prefixed = p.size() >= 6 && p.substr(0, 6) == std::string_view("Exif\0\0", 6);
      info.orientation = ExifOrientation(prefixed ? p.substr(6) : p);
    }
    if (short_chunk) break;
    pos += 8 + size + (size & 1);
  }
  if (info.width == 0)
    Bad(cut ? "truncated WebP: the file ends before the image header" : "corrupt WebP: no image header");
  if (cut) {
    info.truncated =
        fmt::format("truncated WebP: the RIFF header says {} bytes, the file has {}", riff + 8, b.size());
  } else if (!have_image && !info.animated) {
    Bad("corrupt WebP: no image data chunk");
  }
  return info;
}

// ---- GIF: header, colour tables, then blocks of sub-blocks up to the trailer.

ImageInfo ParseGif(std::string_view b) {
  ImageInfo info;
  info.format = ImageFormat::kGif;
  if (b.size() < 13) Bad("truncated GIF: the file ends inside the header");
  info.width = Le16(b, 6);
  info.height = Le16(b, 8);
  if (info.width == 0 || info.height == 0)
    Bad(fmt::format("corrupt GIF: screen size {}x{}", info.width, info.height));
  const std::size_t n = b.size();
  std::size_t pos = 13;
  if (U8(b, 10) & 0x80) pos += 3u << ((U8(b, 10) & 7) + 1);
  int frames = 0;
  const auto skip_sub_blocks = [&] {
    while (pos < n) {
      const std::size_t size = U8(b, pos++);
      if (size == 0) return true;
      pos += size;
    }
    return false;
  };
  while (true) {
    if (pos >= n) break;
    const std::uint8_t block = U8(b, pos++);
    if (block == 0x3B) {
      if (frames == 0) Bad("corrupt GIF: no image in the file");
      info.animated = frames > 1;
      return info;
    }
    if (block == 0x21) {
      ++pos;  // extension label
      if (!skip_sub_blocks()) break;
    } else if (block == 0x2C) {
      if (n - pos < 9) break;
      const std::uint8_t flags = U8(b, pos + 8);
      pos += 9;
      if (flags & 0x80) pos += 3u << ((flags & 7) + 1);
      ++pos;  // LZW minimum code size
      if (!skip_sub_blocks()) break;
      ++frames;
    } else {
      Bad(fmt::format("corrupt GIF: unexpected block 0x{:02x} at byte {}", block, pos - 1));
    }
  }
  info.animated = frames > 1;
  info.truncated = "truncated GIF: the file ends without a trailer";
  return info;
}

// ---- BMP: file header and DIB header; the pixel array must fit in the file.

ImageInfo ParseBmp(std::string_view b) {
  ImageInfo info;
  info.format = ImageFormat::kBmp;
  if (b.size() < 26) Bad("truncated BMP: the file ends inside the header");
  const std::uint64_t file_size = Le32(b, 2);
  const std::uint64_t offset = Le32(b, 10);
  const std::uint32_t dib = Le32(b, 14);
  std::int64_t width = 0;
  std::int64_t height = 0;
  std::uint32_t bpp = 0;
  std::uint32_t compression = 0;
  if (dib == 12) {
    width = Le16(b, 18);
    height = Le16(b, 20);
    bpp = Le16(b, 24);
  } else if (dib >= 40 && dib <= 124) {
    if (b.size() < 14 + 40) Bad("truncated BMP: the file ends inside the header");
    width = static_cast<std::int32_t>(Le32(b, 18));
    height = static_cast<std::int32_t>(Le32(b, 22));  // negative: rows stored top-down
    bpp = Le16(b, 28);
    compression = Le32(b, 30);
  } else {
    Bad(fmt::format("unsupported BMP: DIB header of {} bytes", dib));
  }
  if (height < 0) height = -height;
  if (width <= 0 || height == 0) Bad(fmt::format("corrupt BMP: size {}x{}", width, height));
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
    Bad(fmt::format("corrupt BMP: {} bits per pixel", bpp));
  if (compression > 3) Bad(fmt::format("unsupported BMP: compression {}", compression));
  info.width = static_cast<std::uint32_t>(width);
  info.height = static_cast<std::uint32_t>(height);
  info.channels = bpp == 32 ? 4 : 3;
  if (compression == 0 || compression == 3) {
    const std::uint64_t stride = (static_cast<std::uint64_t>(width) * bpp + 31) / 32 * 4;
    const std::uint64_t available = b.size() > offset ? b.size() - offset : 0;
    if (available / stride < static_cast<std::uint64_t>(height)) {
      info.truncated = fmt::format(
          "truncated BMP: the pixel array needs {} rows of {} bytes, the file has {} bytes after byte {}",
          height, stride, available, offset);
    }
  } else if (file_size > b.size()) {
    info.truncated =
        fmt::format("truncated BMP: the header says {} bytes, the file has {}", file_size, b.size());
  }
  return info;
}

}  // namespace

std::string_view FormatLabel(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kWebp:
      return "WebP";
    case ImageFormat::kGif:
      return "GIF";
    case ImageFormat::kBmp:
      return "BMP";
  }
  return "image";
}

std::string_view FormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "jpeg";
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kWebp:
      return "webp";
    case ImageFormat::kGif:
      return "gif";
    case ImageFormat::kBmp:
      return "bmp";
  }
  return "unknown";
}

ImageInfo ParseImageHeader(std::string_view b) {
  if (b.empty()) Bad("input is empty (0 bytes)");
  if (b.size() >= 3 && b.substr(0, 3) == "\xFF\xD8\xFF") return ParseJpeg(b);
  if (b.size() >= 8 && b.substr(0, 8) == "\x89PNG\r\n\x1A\n") return ParsePng(b);
  if (b.size() >= 16 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") return ParseWebp(b);
  if (b.size() >= 6 && (b.substr(0, 6) == "GIF87a" || b.substr(0, 6) == "GIF89a")) return ParseGif(b);
  if (b.size() >= 2 && b.substr(0, 2) == "BM") return ParseBmp(b);
  if (b.size() < 8) Bad(fmt::format("not a recognised image: only {} bytes ({})", b.size(), HexPrefix(b)));
  Bad(fmt::format("not a recognised image (jpeg, png, webp, gif, bmp): the file starts with {}",
                  HexPrefix(b)));
}

}  // namespace runnel::functions::media
