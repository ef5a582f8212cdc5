// The media family's functions by name, with their one-line summaries. Kept apart from the code
// (and from OpenCV) so that Builtins() can list them without loading the media module; the
// module registers its factories under these same names.
#pragma once

#include <array>
#include <string_view>

namespace runnel::functions::media {

struct CatalogEntry {
  std::string_view name;
  std::string_view summary;
};

inline constexpr std::array<CatalogEntry, 5> kCatalog = {{
    {"image.thumbnail",
     "thumbnails of an image in one or more sizes (fit or fill), JPEG/PNG/WebP, EXIF-oriented"},
    {"image.convert", "converts an image to JPEG, PNG or WebP, optionally downscaled"},
    {"image.metadata", "format, size, channels and EXIF orientation of an image, read without decoding it"},
    {"video.thumbnails",
     "thumbnails every N seconds (or N evenly spaced) from a video, plus a contact sheet"},
    {"video.probe", "duration, frame rate, size, codec and frame count of a video"},
}};

// The summary of a catalogued function ("" for a name not in the catalog).
constexpr std::string_view Summary(std::string_view name) {
  for (const auto& entry : kCatalog) {
    if (entry.name == name) return entry.summary;
  }
  return {};
}

}  // namespace runnel::functions::media
