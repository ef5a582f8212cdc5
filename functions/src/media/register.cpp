// Media functions register here (image.*, video.*).
#include <cstdlib>
#include <mutex>
#include <string>

#include "builtins.hpp"
#include "image_ops.hpp"
#include "media.hpp"

namespace runnel::functions {
namespace {

// OpenCV's own decoder caps, as a second line behind our header guard. Caution, measured on OpenCV
// 4.6: libopencv_imgcodecs reads these variables once, when the library is loaded, so setting them
// here does not change this process's limits; it covers processes started from this one (workers
// spawned by `runnel up` or the autoscaler), which load OpenCV after inheriting the environment.
// A value the operator already set wins.
void SetOpenCvLimitsOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    ::setenv("OPENCV_IO_MAX_IMAGE_PIXELS", std::to_string(media::kMaxPixelsCeiling).c_str(), /*overwrite=*/0);
    ::setenv("OPENCV_IO_MAX_IMAGE_WIDTH", std::to_string(media::kMaxDecodeSide).c_str(), 0);
    ::setenv("OPENCV_IO_MAX_IMAGE_HEIGHT", std::to_string(media::kMaxDecodeSide).c_str(), 0);
  });
}

}  // namespace

void RegisterMediaFunctions(Registry& registry) {
  SetOpenCvLimitsOnce();
  media::RegisterImageFunctions(registry);
  media::RegisterVideoFunctions(registry);
}

}  // namespace runnel::functions
