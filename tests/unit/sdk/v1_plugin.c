/* A plugin written for ABI version 1 (runnel_plugin_v1, RunnelResultV1): it must keep loading
 * and working now that version 2 exists. `reverse` returns the input bytes reversed. */
#include <runnel/plugin.h>

static void* Create(const char* params, char* error, size_t size) {
  (void)params;
  (void)error;
  (void)size;
  static int instance;
  return &instance;
}

static int Handle(void* instance, const RunnelEventV1* event, RunnelResultV1* result) {
  (void)instance;
  if (event->payload_size == 0) {
    result->set_error(result, "reverse: empty input");
    return RUNNEL_E_BAD_INPUT;
  }
  for (size_t i = event->payload_size; i > 0; --i) result->write(result, event->payload + i - 1, 1);
  result->set_content_type(result, "text/plain");
  return RUNNEL_OK;
}

static const RunnelFunctionV1 kFunctions[] = {{"reverse", "reverses its input", Create, Handle, 0}};
static const RunnelPluginV1 kPlugin = {RUNNEL_PLUGIN_ABI_VERSION, sizeof(RunnelPluginV1), "v1", 1,
                                       kFunctions};

RUNNEL_PLUGIN_EXPORT const RunnelPluginV1* runnel_plugin_v1(void) { return &kPlugin; }
