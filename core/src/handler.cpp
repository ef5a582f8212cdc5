#include "runnel/core/handler.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "runnel/core/error.hpp"

namespace runnel {
namespace {

constexpr std::string_view kBuiltin = "builtin:";
constexpr std::string_view kPlugin = "plugin:";
constexpr std::string_view kExec = "exec:";

std::string Quote(const std::string& word) {
  if (!word.empty() && word.find_first_of(" \t\n'\"\\") == std::string::npos) return word;
  std::string out = "'";
  for (char c : word) {
    if (c == '\'')
      out.append("'\\''");
    else
      out += c;
  }
  out += '\'';
  return out;
}

bool IsRegularFile(const std::filesystem::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::filesystem::path Absolute(const std::filesystem::path& p, const std::filesystem::path& base_dir) {
  if (p.is_absolute()) return p.lexically_normal();
  return (std::filesystem::absolute(base_dir.empty() ? std::filesystem::current_path() : base_dir) / p)
      .lexically_normal();
}

// The program as execvp would find it: a name with a '/' is a path (relative to base_dir), a bare
// name is searched in PATH.
std::filesystem::path FindProgram(const std::string& program, const std::filesystem::path& base_dir) {
  if (program.find('/') != std::string::npos) return Absolute(program, base_dir);
  const char* path_env = std::getenv("PATH");
  const std::string path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  for (;;) {
    const auto end = path.find(':', start);
    const std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const auto candidate = std::filesystem::path(dir.empty() ? "." : dir) / program;
    if (IsRegularFile(candidate) && ::access(candidate.c_str(), X_OK) == 0)
      return Absolute(candidate, base_dir);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  throw ConfigError(fmt::format("program '{}' is not in PATH ({})", program, path));
}

}  // namespace

std::vector<std::string> SplitCommandLine(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'' || c == '"') {
      const auto close = text.find(c, i + 1);
      if (close == std::string_view::npos)
        throw ConfigError(fmt::format("unterminated {} quote in '{}'", c, text));
      for (std::size_t j = i + 1; j < close; ++j) {
        if (c == '"' && text[j] == '\\' && j + 1 < close) ++j;
        word += text[j];
      }
      i = close;
      in_word = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      word += text[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::string HandlerSpec::ToString() const {
  switch (kind) {
    case Kind::kBuiltin:
      return std::string(kBuiltin) + name;
    case Kind::kPlugin: {
      std::string out(kPlugin);
      out += path;
      if (!name.empty()) out.append("#").append(name);
      return out;
    }
    case Kind::kExec: {
      std::string out(kExec);
      for (std::size_t i = 0; i < argv.size(); ++i) {
        if (i > 0) out += ' ';
        out += Quote(argv[i]);
      }
      return out;
    }
  }
  return {};
}

HandlerSpec ParseHandler(std::string_view text) {
  HandlerSpec spec;
  if (text.starts_with(kBuiltin)) {
    spec.kind = HandlerSpec::Kind::kBuiltin;
    spec.name = std::string(text.substr(kBuiltin.size()));
    if (spec.name.empty()) throw ConfigError("builtin: needs a function name, e.g. builtin:echo");
  } else if (text.starts_with(kPlugin)) {
    spec.kind = HandlerSpec::Kind::kPlugin;
    std::string rest(text.substr(kPlugin.size()));
    if (const auto hash = rest.rfind('#'); hash != std::string::npos) {
      spec.name = rest.substr(hash + 1);
      rest.resize(hash);
      if (spec.name.empty())
        throw ConfigError(fmt::format("'{}': nothing after '#' (plugin:PATH#NAME)", text));
    }
    spec.path = std::move(rest);
    if (spec.path.empty())
      throw ConfigError("plugin: needs the library's path, e.g. plugin:./libwordcount.so");
  } else if (text.starts_with(kExec)) {
    spec.kind = HandlerSpec::Kind::kExec;
    spec.argv = SplitCommandLine(text.substr(kExec.size()));
    if (spec.argv.empty()) throw ConfigError("exec: needs a command, e.g. exec:python3 transform.py");
  } else {
    throw ConfigError(fmt::format("'{}' is not builtin:NAME, plugin:PATH[#NAME] or exec:COMMAND", text));
  }
  return spec;
}

HandlerSpec ResolveHandler(HandlerSpec spec, const std::filesystem::path& base_dir) {
  if (spec.kind == HandlerSpec::Kind::kPlugin) {
    const auto path = Absolute(spec.path, base_dir);
    if (!std::filesystem::exists(path))
      throw ConfigError(fmt::format("plugin '{}' does not exist", path.string()));
    if (!IsRegularFile(path))
      throw ConfigError(fmt::format("plugin '{}' is not a regular file", path.string()));
    spec.path = path.string();
  } else if (spec.kind == HandlerSpec::Kind::kExec) {
    const auto program = FindProgram(spec.argv[0], base_dir);
    if (!std::filesystem::exists(program)) {
      throw ConfigError(fmt::format("program '{}' does not exist", program.string()));
    }
    if (!IsRegularFile(program))
      throw ConfigError(fmt::format("program '{}' is not a regular file", program.string()));
    if (::access(program.c_str(), X_OK) != 0) {
      throw ConfigError(fmt::format("program '{}' is not executable", program.string()));
    }
    spec.argv[0] = program.string();
  }
  return spec;
}

}  // namespace runnel
