// Registration hooks of the media family (image.*, video.*); register.cpp calls them.
#pragma once

#include "catalog.hpp"
#include "runnel/functions/function.hpp"

namespace runnel::functions::media {

void RegisterImageFunctions(Registry& registry);  // image.thumbnail, image.convert, image.metadata
void RegisterVideoFunctions(Registry& registry);  // video.thumbnails, video.probe

}  // namespace runnel::functions::media
