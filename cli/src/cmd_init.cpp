// `runnel init NAME --template cpp-plugin|python|exec [--dir DIR]`: a new function project in a
// folder (default ./NAME), like `faas-cli new`: the handler, a runnel.yaml, a test with sample
// input and a README with the command that runs it. The templates are cli/templates/<template>/,
// embedded into the binary (init_templates.hpp); every @NAME@ in them becomes the function's name.
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>

#include "commands.hpp"
#include "init_templates.hpp"
#include "runnel/core/error.hpp"

namespace runnel::cli {
namespace {

namespace fs = std::filesystem;

// runnel.yaml's rule for a function's name (core/src/config.cpp): it is also a Kafka topic name.
bool IsFunctionName(const std::string& s) {
  return !s.empty() && s.size() <= 249 && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
         });
}

std::string TemplateNames() {
  std::set<std::string_view> names;
  for (const TemplateFile& f : TemplateFiles()) names.insert(f.template_name);
  std::string list;
  for (const auto name : names) list += fmt::format("{}{}", list.empty() ? "" : ", ", name);
  return list;
}

std::string Substitute(std::string_view text, const std::string& name) {
  std::string out;
  out.reserve(text.size());
  constexpr std::string_view kPlaceholder = "@NAME@";
  for (std::size_t at = 0;;) {
    const std::size_t next = text.find(kPlaceholder, at);
    out.append(text.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at));
    if (next == std::string_view::npos) return out;
    out += name;
    at = next + kPlaceholder.size();
  }
}

// Scripts are made executable: the handler of an exec function and the tests run as programs.
bool IsScript(std::string_view path) { return path.ends_with(".sh") || path.ends_with(".py"); }

// The folder the project goes to: absent, or an empty directory.
void CheckTarget(const fs::path& dir) {
  std::error_code ec;
  const auto status = fs::status(dir, ec);
  if (!fs::exists(status)) return;
  if (!fs::is_directory(status))
    throw Error(fmt::format("{} exists and is not a directory", dir.string()), false);
  if (!fs::is_empty(dir, ec)) {
    throw Error(fmt::format("{} exists and is not empty; choose another --dir, or remove it", dir.string()),
                false);
  }
  if (ec) throw Error(fmt::format("cannot read {}: {}", dir.string(), ec.message()), false);
}

void WriteFile(const fs::path& file, const std::string& text, bool script) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) throw Error(fmt::format("cannot create {}: {}", file.parent_path().string(), ec.message()), false);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw Error(fmt::format("cannot write {}", file.string()), false);
  if (script && ::chmod(file.c_str(), 0755) != 0) {
    throw Error(fmt::format("cannot make {} executable", file.string()), false);
  }
}

// What the README says runs the project's test, per template.
std::string TestCommand(std::string_view template_name) {
  if (template_name == "python") return "python3 test_handler.py";
  if (template_name == "exec") return "./test.sh";
  return "cmake -S . -B build -DCMAKE_PREFIX_PATH=<where Runnel is installed> && cmake --build build && "
         "ctest --test-dir build --output-on-failure";
}

}  // namespace

Command AddInit(CLI::App& app, CommonOptions&) {
  struct Flags {
    std::string name;
    std::string template_name;
    std::string dir;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "init",
      "Create a new function project in a folder: the handler, a runnel.yaml, a test with sample input, a "
      "README");
  sub->add_option("NAME", flags->name, "The function's name (1..249 of [A-Za-z0-9._-], as in runnel.yaml)")
      ->required()
      ->check(CLI::Validator(
          [](std::string& name) -> std::string {
            if (IsFunctionName(name)) return {};
            return fmt::format(
                "'{}' is not a function name: it must be 1..249 of [A-Za-z0-9._-], not . or ..", name);
          },
          "NAME", "FunctionName"));
  sub->add_option("--template", flags->template_name,
                  fmt::format("What the function is written in: {}", TemplateNames()))
      ->required()
      ->check(CLI::Validator(
          [](std::string& name) -> std::string {
            for (const TemplateFile& f : TemplateFiles()) {
              if (f.template_name == name) return {};
            }
            return fmt::format("unknown template '{}' (the templates: {})", name, TemplateNames());
          },
          "TEMPLATE", "Template"));
  sub->add_option("--dir", flags->dir,
                  "The folder to create the project in (default ./NAME); absent or empty");
  return {sub, [flags] {
            const fs::path dir = flags->dir.empty() ? fs::path(flags->name) : fs::path(flags->dir);
            CheckTarget(dir);
            const bool made_dir = !fs::exists(dir);
            std::vector<std::string> written;
            try {
              for (const TemplateFile& f : TemplateFiles()) {
                if (f.template_name != flags->template_name) continue;
                WriteFile(dir / f.path, Substitute(f.text, flags->name), IsScript(f.path));
                written.emplace_back(f.path);
              }
            } catch (const Error&) {  // no half-made project: what was written goes
              std::error_code ignored;
              for (const auto& path : written) fs::remove(dir / path, ignored);
              if (made_dir) fs::remove_all(dir, ignored);
              throw;
            }
            fmt::print("Created function {} ({} template) in {}:\n", flags->name, flags->template_name,
                       dir.string());
            for (const auto& path : written) fmt::print("  {}\n", path);
            fmt::print("Test it: cd {} && {}\n", dir.string(), TestCommand(flags->template_name));
            fmt::print("Run it: runnel up --config {}; then runnel invoke {} (README.md says how)\n",
                       (dir / "runnel.yaml").string(), flags->name);
            return 0;
          }};
}

}  // namespace runnel::cli
