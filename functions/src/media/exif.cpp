// Just enough EXIF to find the orientation tag: TIFF header, IFD0, one SHORT entry. Every offset is
// bounds-checked, since the block comes straight from an untrusted file.
#include <cstdint>

#include "image_header.hpp"

namespace runnel::functions::media {
namespace {

class TiffReader {
 public:
  TiffReader(std::string_view bytes, bool little_endian) : bytes_(bytes), little_(little_endian) {}

  bool Has(std::size_t offset, std::size_t n) const {
    return offset <= bytes_.size() && n <= bytes_.size() - offset;
  }
  std::uint16_t U16(std::size_t offset) const {
    const auto a = static_cast<std::uint8_t>(bytes_[offset]);
    const auto b = static_cast<std::uint8_t>(bytes_[offset + 1]);
    return static_cast<std::uint16_t>(little_ ? (b << 8) | a : (a << 8) | b);
  }
  std::uint32_t U32(std::size_t offset) const {
    const std::uint32_t hi = U16(offset);
    const std::uint32_t lo = U16(offset + 2);
    return little_ ? (lo << 16) | hi : (hi << 16) | lo;
  }

 private:
  std::string_view bytes_;
  bool little_;
};

constexpr std::uint16_t kOrientationTag = 0x0112;
constexpr std::uint16_t kTypeShort = 3;
constexpr std::uint16_t kMaxIfdEntries = 1024;

}  // namespace

int ExifOrientation(std::string_view tiff) {
  if (tiff.size() < 8) return 1;
  bool little = false;
  if (tiff.substr(0, 2) == "II") {
    little = true;
  } else if (tiff.substr(0, 2) != "MM") {
    return 1;
  }
  const TiffReader r(tiff, little);
  if (r.U16(2) != 42) return 1;
  const std::size_t ifd = r.U32(4);
  if (!r.Has(ifd, 2)) return 1;
  const std::uint16_t entries = r.U16(ifd);
  if (entries > kMaxIfdEntries) return 1;
  for (std::size_t i = 0; i < entries; ++i) {
    const std::size_t entry = ifd + 2 + i * 12;
    if (!r.Has(entry, 12)) return 1;
    if (r.U16(entry) != kOrientationTag) continue;
    if (r.U16(entry + 2) != kTypeShort || r.U32(entry + 4) < 1) return 1;
    const int value = r.U16(entry + 8);  // a single SHORT sits left-justified in the value field
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

}  // namespace runnel::functions::media
