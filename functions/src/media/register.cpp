// Media functions register here (image.*, video.*). The module's entry point (module_entry.cpp) hands
// RegisterMediaFunctions to the loader.
#include "builtins.hpp"
#include "media.hpp"

namespace runnel::functions {

void RegisterMediaFunctions(Registry& registry) {
  media::RegisterImageFunctions(registry);
  media::RegisterVideoFunctions(registry);
}

}  // namespace runnel::functions
