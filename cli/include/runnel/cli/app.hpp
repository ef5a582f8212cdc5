// The `runnel` command line: subcommands, their flags and their exit codes.
#pragma once

namespace runnel::cli {

// Parses argv, runs the chosen subcommand, and returns the process exit code
// (0 ok, 1 failure with one clear line on stderr, 2 usage error or timeout where a command says so).
int Main(int argc, char** argv);

}  // namespace runnel::cli
