// Registration hooks for the built-in function families. Builtins() calls the basic and IoT ones;
// the media family registers inside its module (media/register.cpp, modules/builtin_module.hpp).
#pragma once

#include "runnel/functions/function.hpp"

namespace runnel::functions {

void RegisterBasicFunctions(Registry& registry);  // echo, sleep
void RegisterMediaFunctions(Registry& registry);  // image.*, video.*: librunnel-media.so
void RegisterIotFunctions(Registry& registry);    // iot.*

}  // namespace runnel::functions
