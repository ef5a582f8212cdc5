// `runnel completion bash`: the script the real binary prints, sourced into bash and asked what it
// completes, as bash asks it (COMP_WORDS, COMP_CWORD, then the function `complete` names).
#include <gmock/gmock.h>

#include <fstream>
#include <set>
#include <sstream>

#include "runnel/testing/child_process.hpp"

namespace runnel::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// What the script completes for the command line `RUNNEL WORDS...`, whose last word is the one
// being completed: COMPREPLY, one entry per element. RUNNEL, the command word, is the binary under
// test (the script asks it for function names); the words reach bash as arguments, as typed.
std::vector<std::string> Complete(const std::vector<std::string>& words) {
  std::vector<std::string> argv = {"bash", "-c",
                                   "source <(\"$0\" completion bash) || exit 9\n"
                                   "[[ $(complete -p runnel) == *'-F _runnel'* ]] || exit 8\n"
                                   "COMP_WORDS=(\"$0\" \"$@\"); COMP_CWORD=$#\n"
                                   "_runnel || exit 7\n"
                                   "printf '%s\\n' \"${COMPREPLY[@]}\"",
                                   RunnelBin()};
  argv.insert(argv.end(), words.begin(), words.end());
  const auto r = RunCommand(argv, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// The commands a --help lists under "SUBCOMMANDS:" (CLI11's format: two spaces, the name, its
// description).
std::set<std::string> CommandsInHelp(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {RunnelBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--help");
  const auto r = RunCommand(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> names;
  std::istringstream in(r.out);
  bool in_list = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "Subcommands:" || line == "SUBCOMMANDS:") {
      in_list = true;
    } else if (in_list && line.rfind("  ", 0) == 0 && line.size() > 2 && line[2] != ' ') {
      names.insert(line.substr(2, line.find(' ', 2) - 2));
    } else if (in_list && !line.empty() && line[0] != ' ') {
      in_list = false;
    }
  }
  return names;
}

TEST(Completion, ATopLevelPrefixCompletesToTheCommandsItStarts) {
  EXPECT_THAT(Complete({"st"}), ElementsAre("status"));
  EXPECT_THAT(Complete({"com"}), ElementsAre("completion"));
  EXPECT_THAT(Complete({"frobnicate"}), IsEmpty());
}

TEST(Completion, EveryCommandOfHelpIsCompletedAtEachLevel) {
  const auto top = CommandsInHelp({});
  ASSERT_GE(top.size(), 15u) << "the help's format changed: no command list found";
  const auto all = Complete({""});
  for (const auto& name : top) EXPECT_THAT(all, Contains(name));
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()), top) << "and nothing the help does not list";
  for (const std::string group : {"config", "job", "token"}) {
    const auto nested = CommandsInHelp({group});
    ASSERT_FALSE(nested.empty()) << group;
    const auto completed = Complete({group, ""});
    EXPECT_EQ(std::set<std::string>(completed.begin(), completed.end()), nested) << group;
  }
}

TEST(Completion, NestedCommandsAndTheirFlags) {
  EXPECT_THAT(Complete({"config", "ch"}), ElementsAre("check"));
  EXPECT_THAT(Complete({"job", "r"}), ElementsAre("run"));
  EXPECT_THAT(Complete({"token", "c"}), ElementsAre("create"));
  // Flags before the command are skipped, with their values: `job` here is --state-dir's value.
  EXPECT_THAT(Complete({"--state-dir", "job", "st"}), ElementsAre("status"));
  EXPECT_THAT(Complete({"--log-format", "json", "job", "st"}), ElementsAre("status"));
  // A nested command's own flags, and the common ones every command has.
  EXPECT_THAT(Complete({"token", "create", "--f"}), ElementsAre("--function"));
  EXPECT_THAT(Complete({"config", "check", "--st"}), ElementsAre("--state-dir"));
}

TEST(Completion, AFlagPrefixCompletesToThatCommandsFlags) {
  EXPECT_THAT(Complete({"invoke", "--ti"}), ElementsAre("--timeout"));
  EXPECT_THAT(Complete({"invoke", "echo", "--"}), Contains("--file"));
  EXPECT_THAT(Complete({"invoke", "--"}), Not(Contains("--replay"))) << "dlq's flag, not invoke's";
  EXPECT_THAT(Complete({"dlq", "--re"}), ElementsAre("--replay"));
  EXPECT_THAT(Complete({"--ver"}), ElementsAre("--version"));
}

TEST(Completion, AFlagWithAFixedSetCompletesItsValues) {
  EXPECT_THAT(Complete({"--log-format", "j"}), ElementsAre("json"));
  EXPECT_THAT(Complete({"status", "--log-format", ""}), ElementsAre("human", "json"));
  // `--log-format=` as bash splits it (COMP_WORDBREAKS has '='): the value after '='.
  EXPECT_THAT(Complete({"up", "--log-format", "=", "h"}), ElementsAre("human"));
  EXPECT_THAT(Complete({"up", "--log-format", "="}), ElementsAre("human", "json"));
  EXPECT_THAT(Complete({"invoke", "--timeout", ""}), IsEmpty()) << "no fixed set: bash's default";
}

// Function names come from the stack's endpoints.json (here a state dir with one written by hand).
TEST(Completion, FunctionNamesComeFromTheStateDirsStack) {
  const auto dir = TempDir("completion");
  std::ofstream(dir / "endpoints.json") << R"({"functions": {"echo": {"topic": "echo"}, "thumbs": {}}})";
  EXPECT_THAT(Complete({"--state-dir", dir.string(), "invoke", ""}), ElementsAre("echo", "thumbs"));
  EXPECT_THAT(Complete({"--state-dir", dir.string(), "dlq", "t"}), ElementsAre("thumbs"));
  EXPECT_THAT(Complete({"upload", "--state-dir", dir.string(), "--function", "e"}), ElementsAre("echo"));
  EXPECT_THAT(Complete({"--state-dir", dir.string(), "invoke", "echo", ""}), IsEmpty())
      << "one function argument only";
  const auto listed = RunCommand({RunnelBin(), "completion", "--functions", "--state-dir", dir.string()});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out, "echo\nthumbs\n");
  // No stack there: nothing to offer, and no error.
  std::filesystem::remove(dir / "endpoints.json");
  EXPECT_THAT(Complete({"--state-dir", dir.string(), "invoke", ""}), IsEmpty());
  std::filesystem::remove_all(dir);
}

TEST(Completion, AnotherShellOrNoneIsAUsageError) {
  const auto zsh = RunCommand({RunnelBin(), "completion", "zsh"});
  EXPECT_EQ(zsh.exit_code, 2);
  EXPECT_THAT(zsh.err, HasSubstr("'zsh' is not a shell runnel completes (only bash)"));
  EXPECT_THAT(zsh.err, HasSubstr("run 'runnel completion --help'"));
  EXPECT_EQ(zsh.out, "");
  const auto none = RunCommand({RunnelBin(), "completion"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("shell (bash) is required"));
  const auto bash = RunCommand({RunnelBin(), "completion", "bash"});
  EXPECT_EQ(bash.exit_code, 0) << bash.err;
  EXPECT_THAT(bash.out, HasSubstr("complete -o default -F _runnel runnel"));
}

}  // namespace
}  // namespace runnel::testing
