#include "builtins.hpp"

namespace runnel::functions {

const Registry& Builtins() {
  static const Registry registry = [] {
    Registry r;
    RegisterBasicFunctions(r);
    RegisterMediaFunctions(r);
    RegisterIotFunctions(r);
    return r;
  }();
  return registry;
}

}  // namespace runnel::functions
