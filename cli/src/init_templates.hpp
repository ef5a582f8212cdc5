// The project templates of `runnel init`, embedded at build time (cli/embed_templates.cmake reads
// cli/templates/<template>/<path> into init_templates_data.cpp, a generated source).
#pragma once

#include <string_view>
#include <vector>

namespace runnel::cli {

struct TemplateFile {
  std::string_view template_name;  // python, exec, cpp-plugin: the folder under cli/templates/
  std::string_view path;           // relative to the project's folder, e.g. "handler.py"
  std::string_view text;           // the bytes, with @NAME@ where the function's name goes
};

// Every file of every template, sorted by template and path.
const std::vector<TemplateFile>& TemplateFiles();

}  // namespace runnel::cli
