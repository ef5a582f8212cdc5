// A function's handler spec: what code runs for it. Three kinds:
//   builtin:NAME          a function compiled into Runnel (functions::Builtins())
//   plugin:PATH[#NAME]    a shared library exporting the C entry point of runnel/plugin.h; NAME picks
//                         one function when the library holds several
//   exec:COMMAND          an external program: payload on stdin, result on stdout (functions/README.md)
// Parsing and path resolution live here (the config validates them); building the function lives
// in runnel::functions (CreateFunction).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace runnel {

struct HandlerSpec {
  enum class Kind { kBuiltin, kPlugin, kExec };
  Kind kind = Kind::kBuiltin;
  std::string name;               // builtin: the NAME; plugin: the #NAME (empty = the only one)
  std::string path;               // plugin: the library's path
  std::vector<std::string> argv;  // exec: the program and its arguments

  // The spec as text again, e.g. "exec:/usr/bin/python3 transform.py" (arguments quoted as needed).
  std::string ToString() const;
};

// Parses a handler spec; throws ConfigError("...: reason") without a file position (the caller
// adds it). Paths are taken as written.
HandlerSpec ParseHandler(std::string_view text);

// Makes a plugin's path and an exec program's path absolute against `base_dir` (a program without
// a '/' is searched in PATH), then checks them: the plugin is an existing regular file, the program
// an existing executable regular file. Throws ConfigError with the reason.
HandlerSpec ResolveHandler(HandlerSpec spec, const std::filesystem::path& base_dir);

// Splits a command line into words: whitespace separates, '...' and "..." quote, backslash escapes
// outside single quotes. No variables, globs or other shell syntax. Throws ConfigError on an
// unterminated quote.
std::vector<std::string> SplitCommandLine(std::string_view text);

}  // namespace runnel
