// `runnel completion bash`: a bash completion script made from the command line's own CLI11 tree,
// walked when the command runs (after every command and the common flags are registered), so it
// lists exactly the commands, nested commands and flags this binary has. It completes commands,
// flags, the values of flags that take one of a fixed set (`--log-format human|json`) and
// function names, which it asks this binary for (`runnel completion --functions`, the names in
// the state dir's endpoints.json: a file read, no socket). Everything else falls back to bash's
// file names (`complete -o default`).
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/core/version.hpp"

namespace runnel::cli {
namespace {

// What the script knows about one command: its path under runnel ("" for runnel itself, "job run").
struct CommandNode {
  std::string path;
  std::vector<std::string> commands;                         // its visible subcommands
  std::vector<std::string> flags;                            // every flag name, long and short
  std::vector<std::string> value_flags;                      // the flags that take a value
  std::vector<std::pair<std::string, std::string>> choices;  // flag -> its values, space separated
  std::vector<std::string> function_flags;                   // flags whose value is a function name
  bool function_argument = false;  // its first positional argument is a function name
};

// The values a flag accepts when a validator limits them to a set (CLI::IsMember describes
// itself as "{a,b}"); empty otherwise.
std::string Choices(CLI::Option& option) {
  for (int i = 0;; ++i) {
    const CLI::Validator* validator = nullptr;
    try {
      validator = option.get_validator(i);
    } catch (const CLI::OptionNotFound&) {
      return {};
    }
    const std::string set = validator->get_description();
    if (set.size() < 2 || set.front() != '{' || set.back() != '}') continue;
    std::string words = set.substr(1, set.size() - 2);
    for (char& c : words) {
      if (c == ',') c = ' ';
    }
    return words;
  }
}

// Hidden commands have no group; CLI11's nameless option groups are subcommands too.
bool Visible(const CLI::App* sub) { return !sub->get_name().empty() && !sub->get_group().empty(); }

void Walk(CLI::App& app, const std::string& path, std::vector<CommandNode>& out) {
  CommandNode node;
  node.path = path;
  for (CLI::Option* option : app.get_options()) {
    if (option->get_group().empty()) continue;  // hidden
    if (option->get_positional() && !option->nonpositional()) {
      if (option->get_name(true) == "function") node.function_argument = true;
      continue;
    }
    const bool takes_value = option->get_expected_max() != 0;
    for (const auto& names : {std::pair{"--", option->get_lnames()}, std::pair{"-", option->get_snames()}}) {
      for (const std::string& name : names.second) {
        const std::string flag = names.first + name;
        node.flags.push_back(flag);
        if (!takes_value) continue;
        node.value_flags.push_back(flag);
        if (const std::string words = Choices(*option); !words.empty())
          node.choices.emplace_back(flag, words);
        if (name == "function") node.function_flags.push_back(flag);
      }
    }
  }
  std::vector<CLI::App*> subs = app.get_subcommands([](const CLI::App* sub) { return Visible(sub); });
  for (CLI::App* sub : subs) node.commands.push_back(sub->get_name());
  out.push_back(std::move(node));
  for (CLI::App* sub : subs) Walk(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
}

std::string Join(const std::vector<std::string>& words) {
  std::string joined;
  for (const std::string& word : words) joined += (joined.empty() ? "" : " ") + word;
  return joined;
}

// A case statement on "$1" (the command path) that sets REPLY to `pick(node)`.
template <typename Pick>
std::string ReplyCase(const std::vector<CommandNode>& nodes, Pick pick) {
  std::string out = "  case $1 in\n";
  for (const CommandNode& node : nodes) {
    if (const std::string words = pick(node); !words.empty())
      out += fmt::format("    '{}') REPLY='{}' ;;\n", node.path, words);
  }
  return out + "    *) REPLY='' ;;\n  esac\n";
}

std::string BashScript(CLI::App& root) {
  std::vector<CommandNode> nodes;
  Walk(root, "", nodes);
  std::string choices;    // case "$1|$2" (path|flag) arms: the values of flags with a fixed set
  std::string functions;  // case "$1|$2" patterns of flags (and, with $2 empty, first arguments)
  for (const CommandNode& node : nodes) {
    for (const auto& [flag, words] : node.choices)
      choices += fmt::format("    '{}|{}') REPLY='{}' ;;\n", node.path, flag, words);
    for (const std::string& flag : node.function_flags)
      functions += fmt::format("{}'{}|{}'", functions.empty() ? "" : "|", node.path, flag);
    if (node.function_argument) functions += fmt::format("{}'{}|'", functions.empty() ? "" : "|", node.path);
  }
  if (functions.empty()) functions = "''";  // no arm matches "$1|$2" with a command path in it

  std::string s = fmt::format(
      "# bash completion for runnel {}, generated from its own command line by `runnel completion bash`\n"
      "# (regenerate it after an upgrade). Load it with: source <(runnel completion bash)\n"
      "# or install it: runnel completion bash > /etc/bash_completion.d/runnel\n\n",
      Version());
  s += "# The subcommands of command $1 ('' is runnel itself, 'job run' a nested one), in REPLY.\n";
  s += "_runnel_commands() {\n" + ReplyCase(nodes, [](const CommandNode& n) { return Join(n.commands); }) +
       "}\n";
  s += "# Every flag of command $1.\n";
  s += "_runnel_flags() {\n" + ReplyCase(nodes, [](const CommandNode& n) { return Join(n.flags); }) + "}\n";
  s += "# The flags of command $1 that take a value.\n";
  s += "_runnel_value_flags() {\n" +
       ReplyCase(nodes, [](const CommandNode& n) { return Join(n.value_flags); }) + "}\n";
  s += "# The values flag $2 of command $1 takes, when it takes one of a fixed set.\n";
  s += "_runnel_flag_values() {\n  case \"$1|$2\" in\n" + choices + "    *) REPLY='' ;;\n  esac\n}\n";
  s += "# Whether flag $2 of command $1 (with $2 empty: its first argument) takes a function name.\n";
  s += "_runnel_takes_function() {\n  case \"$1|$2\" in\n    " + functions +
       ") return 0 ;;\n  esac\n  return 1\n}\n";
  s += R"(# The functions of the stack in state dir $1 (default: runnel's own), from its endpoints.json.
_runnel_function_names() {
  REPLY=$("${COMP_WORDS[0]}" completion --functions ${1:+--state-dir "$1"} 2>/dev/null)
}
_runnel() {
  local cur=${COMP_WORDS[COMP_CWORD]} path='' word flag='' state_dir='' args=0 i REPLY
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if [[ -n $flag ]]; then  # the value of $flag ('=' is a word of its own for bash)
      [[ $word == '=' ]] && continue
      [[ $flag == --state-dir ]] && state_dir=$word
      flag=''
      continue
    fi
    if [[ $word == -* ]]; then
      _runnel_value_flags "$path"
      [[ $word != *=* && " $REPLY " == *" $word "* ]] && flag=$word
      continue
    fi
    _runnel_commands "$path"
    if [[ " $REPLY " == *" $word "* ]]; then
      path=${path:+$path }$word
    else
      args=$((args + 1))
    fi
  done
  [[ $cur == '=' ]] && cur=''
  if [[ -n $flag ]]; then
    REPLY=''
    if _runnel_takes_function "$path" "$flag"; then
      _runnel_function_names "$state_dir"
    else
      _runnel_flag_values "$path" "$flag"
    fi
  elif [[ $cur == -* ]]; then
    _runnel_flags "$path"
  else
    _runnel_commands "$path"
    if [[ -z $REPLY ]] && ((args == 0)) && _runnel_takes_function "$path" ''; then
      _runnel_function_names "$state_dir"
    fi
  fi
  [[ -n $REPLY ]] && COMPREPLY=($(compgen -W "$REPLY" -- "$cur"))
  return 0
}
complete -o default -F _runnel runnel
)";
  return s;
}

// The function names of the stack in the state dir, one per line; nothing when none runs there.
void PrintFunctionNames(const std::string& state_dir) {
  nlohmann::json endpoints;
  try {
    endpoints = StateDir::Resolve(state_dir).ReadEndpoints();
  } catch (const std::exception&) {
    return;  // no stack: nothing to complete
  }
  const auto functions = endpoints.value("functions", nlohmann::json::object());
  if (!functions.is_object()) return;
  for (const auto& [name, topics] : functions.items()) fmt::print("{}\n", name);
}

}  // namespace

Command AddCompletion(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::string shell;
    bool functions = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub =
      app.add_subcommand("completion",
                         "Print a shell completion script: source <(runnel completion bash), or save it in "
                         "/etc/bash_completion.d/runnel");
  auto* shell = sub->add_option("shell", flags->shell, "The shell (only bash)")
                    ->type_name("SHELL")
                    ->check(CLI::Validator(
                        [](const std::string& given) {
                          return given == "bash"
                                     ? std::string()
                                     : fmt::format("'{}' is not a shell runnel completes (only bash)", given);
                        },
                        "bash"));
  auto* functions = sub->add_flag("--functions", flags->functions,
                                  "Print the function names of the stack in the state dir, one per line "
                                  "(what the script completes function names with)");
  shell->excludes(functions);
  sub->parse_complete_callback([shell, functions] {
    if (shell->count() == 0 && functions->count() == 0) throw CLI::RequiredError("shell (bash)");
  });
  return {sub, [flags, &app, &common] {
            if (flags->functions) {
              PrintFunctionNames(common.state_dir);
            } else {
              fmt::print("{}", BashScript(app));
            }
            return 0;
          }};
}

}  // namespace runnel::cli
