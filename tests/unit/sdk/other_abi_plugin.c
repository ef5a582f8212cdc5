/* A test plugin whose v1 entry point reports a future ABI version: the loader must refuse it, naming
 * the versions. */
#include <runnel/plugin.h>

static void* Create(const char* params, char* error, size_t size) {
  (void)params;
  (void)error;
  (void)size;
  return 0;
}
static int Handle(void* instance, const RunnelEventV1* event, RunnelResultV1* result) {
  (void)instance;
  (void)event;
  (void)result;
  return RUNNEL_OK;
}
static const RunnelFunctionV1 kFunctions[] = {{"future", "", Create, Handle, 0}};
static const RunnelPluginV1 kPlugin = {RUNNEL_PLUGIN_ABI_V2 + 1, sizeof(RunnelPluginV1), "future", 1,
                                       kFunctions};

RUNNEL_PLUGIN_EXPORT const RunnelPluginV1* runnel_plugin_v1(void) { return &kPlugin; }
