#include "builtins.hpp"

#include <cstdlib>
#include <string>

#include "media/catalog.hpp"
#include "media/limits.hpp"
#include "modules/builtin_module.hpp"

namespace runnel::functions {
namespace {

// OpenCV's own decoder caps, as a second line behind the media functions' header guard. Caution,
// measured on OpenCV 4.6: libopencv_imgcodecs reads these variables once, when it is loaded. They
// are set here, before the media module (and OpenCV with it) can be loaded, so they hold in this
// process and in the processes started from it (workers). A value the operator already set wins.
void SetOpenCvLimits() {
  ::setenv("OPENCV_IO_MAX_IMAGE_PIXELS", std::to_string(media::kMaxPixelsCeiling).c_str(), /*overwrite=*/0);
  ::setenv("OPENCV_IO_MAX_IMAGE_WIDTH", std::to_string(media::kMaxDecodeSide).c_str(), 0);
  ::setenv("OPENCV_IO_MAX_IMAGE_HEIGHT", std::to_string(media::kMaxDecodeSide).c_str(), 0);
}

}  // namespace

const Registry& Builtins() {
  static const Registry kRegistry = [] {
    SetOpenCvLimits();
    Registry r;
    RegisterBasicFunctions(r);
    RegisterIotFunctions(r);
    // The media family is listed here but loaded from its module the first time one is created.
    for (const auto& entry : media::kCatalog) {
      r.Register(std::string(entry.name), std::string(entry.summary),
                 [name = std::string(entry.name)](const nlohmann::json& params) {
                   return ModuleFunctions("media").Create(name, params);
                 });
    }
    return r;
  }();
  return kRegistry;
}

}  // namespace runnel::functions
