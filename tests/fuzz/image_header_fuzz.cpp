// The image header parser in front of every decoder (functions/src/media/image_header.cpp, and the
// EXIF reader in exif.cpp). Input: a file's bytes. Oracle: ParseImageHeader throws
// FunctionError(kBadInput) or reports non-zero dimensions and an orientation in 1..8.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "media/image_header.hpp"
#include "runnel/functions/function.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace media = runnel::functions::media;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const media::ImageInfo info = media::ParseImageHeader(bytes);
    if (info.width == 0 || info.height == 0 || info.orientation < 1 || info.orientation > 8) std::abort();
  } catch (const runnel::functions::FunctionError& e) {
    if (e.Code() != runnel::Errc::kBadInput) std::abort();
  }
  const int orientation = media::ExifOrientation(bytes);
  if (orientation < 1 || orientation > 8) std::abort();
  return 0;
}
