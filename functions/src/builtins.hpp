// Registration hooks for the built-in function families; Builtins() calls each once.
#pragma once

#include "runnel/functions/function.hpp"

namespace runnel::functions {

void RegisterBasicFunctions(Registry& registry);  // echo, sleep
void RegisterMediaFunctions(Registry& registry);  // image.*, video.*
void RegisterIotFunctions(Registry& registry);    // iot.*

}  // namespace runnel::functions
