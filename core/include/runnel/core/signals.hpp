// Orderly shutdown on SIGINT/SIGTERM for long-running commands.
// Construct a ShutdownSignals first thing in main (before any thread starts): it blocks the signals
// in the calling thread, so every thread created later inherits the mask and only Wait sees them.
#pragma once

#include <chrono>

namespace runnel {

class ShutdownSignals {
 public:
  ShutdownSignals();
  ~ShutdownSignals();
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

  // Waits up to `timeout` for SIGINT or SIGTERM; returns the signal number, or 0 on timeout.
  int Wait(std::chrono::milliseconds timeout);
};

}  // namespace runnel
