// The exit status of every `runnel` command, defined once (the README and cli/README.md print this
// table). A script can tell "the command line is wrong" from "it ran and failed" from "it gave up
// waiting" from "there is nothing to talk to".
#pragma once

namespace runnel::cli::exit_code {

inline constexpr int kOk = 0;
// It ran and failed: one line on stderr says why (a call or job item that failed, a config error,
// a name the stack does not serve, Kafka refusing).
inline constexpr int kFailure = 1;
// The command line cannot work: unknown command or flag, a bad value, a missing argument.
inline constexpr int kUsage = 2;
// `runnel up`: a component of the stack failed while running (its supervisor should restart it).
inline constexpr int kComponentFailed = 3;
// It gave up waiting (--timeout): no outcome, or a job not finished, in time.
inline constexpr int kTimeout = 4;
// No stack runs in the state dir (no endpoints.json, or the process that wrote it is gone).
inline constexpr int kNoStack = 5;
// Ended by signal N (`runnel up`: a second signal forced the stop during the drain).
constexpr int KilledBy(int signal) { return 128 + signal; }

}  // namespace runnel::cli::exit_code
