/* A libzmq without CURVE, as a process sees it: LD_PRELOADed, it answers zmq_has("curve") with 0
 * and hands every other capability to the real libzmq. Used by Curve.ALibzmqWithoutCurve... */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

int zmq_has(const char* capability) {
  if (capability != NULL && strcmp(capability, "curve") == 0) return 0;
  int (*real)(const char*) = (int (*)(const char*))dlsym(RTLD_NEXT, "zmq_has");
  return real != NULL ? real(capability) : 0;
}
