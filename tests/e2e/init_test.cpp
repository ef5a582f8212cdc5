// `runnel init NAME --template T` (issue 17): each template generated into a scratch folder passes
// its own test, run the way its README says, with this build's runnel (the test's `runnel config
// check` and its stack answering `runnel invoke` included, not skipped). The cpp-plugin project is
// built against an install of this build (`cmake --install`), whose own runnel generates it: the
// templates are embedded, so an installed binary has them too. Plus the refusals: a folder that is
// not empty, a name runnel.yaml would refuse, an unknown template.
#include <gmock/gmock.h>
#include <sys/stat.h>

#include <fstream>

#include "runnel/testing/child_process.hpp"

namespace runnel::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kProjectTestDeadline = std::chrono::seconds(120);

std::string ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

bool IsExecutable(const fs::path& file) {
  struct stat st {};
  return ::stat(file.c_str(), &st) == 0 && (st.st_mode & S_IXUSR) != 0;
}

// Runs `runnel init` (this build's, or `runnel`), expecting success, and checks what it wrote:
// the files it listed, every placeholder replaced by the name.
void Init(const std::string& runnel, const std::string& name, const std::string& template_name,
          const fs::path& dir, const std::vector<std::string>& files) {
  const auto run = RunCommand({runnel, "init", name, "--template", template_name, "--dir", dir.string()});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out,
              HasSubstr("Created function " + name + " (" + template_name + " template) in " + dir.string()));
  for (const auto& file : files) {
    ASSERT_TRUE(fs::is_regular_file(dir / file)) << file << " not generated; runnel init said:\n" << run.out;
    EXPECT_THAT(run.out, HasSubstr("  " + file + "\n"));
    EXPECT_THAT(ReadAll(dir / file), Not(HasSubstr("@NAME@"))) << file;
  }
  EXPECT_THAT(ReadAll(dir / "runnel.yaml"), HasSubstr("- name: " + name + "\n"));
  EXPECT_THAT(ReadAll(dir / "README.md"), HasSubstr("# " + name + ": "));
}

struct Ran {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

Ran RunProjectTest(std::vector<std::string> argv, const std::map<std::string, std::string>& env) {
  ChildProcess test(std::move(argv), env);
  const auto code = test.Wait(kProjectTestDeadline);
  Ran ran{code.value_or(-1), test.Stdout() + test.Stderr()};
  EXPECT_TRUE(code.has_value()) << "the project's test did not end within " << kProjectTestDeadline.count()
                                << " s:\n"
                                << ran.out;
  return ran;
}

TEST(Init, PythonProjectPassesItsOwnTest) {
  const auto dir = TempDir("init-python") / "greeter";
  Init(RunnelBin(), "greeter", "python", dir,
       {"handler.py", "runnel.yaml", "sample-input.json", "test_handler.py", "README.md", ".gitignore"});
  EXPECT_TRUE(IsExecutable(dir / "handler.py"));
  EXPECT_THAT(ReadAll(dir / "README.md"), HasSubstr("    python3 test_handler.py\n"));
  // Debian's interpreter, as the handler's runnel.yaml names it.
  const auto ran = RunProjectTest({"/usr/bin/python3", (dir / "test_handler.py").string(), "-v"},
                                  {{"RUNNEL", RunnelBin()}});
  EXPECT_EQ(ran.exit_code, 0) << ran.out;
  EXPECT_THAT(ran.out, HasSubstr("Ran 5 tests"));
  EXPECT_THAT(ran.out, HasSubstr("test_config_check (__main__.WithRunnel.test_config_check) ... ok"));
  EXPECT_THAT(
      ran.out,
      HasSubstr("test_invoke_through_a_stack (__main__.WithRunnel.test_invoke_through_a_stack) ... ok"));
  EXPECT_THAT(ran.out, Not(HasSubstr("skipped")));
  fs::remove_all(dir.parent_path());
}

TEST(Init, ExecProjectPassesItsOwnTest) {
  const auto dir = TempDir("init-exec") / "word.count-1";
  Init(RunnelBin(), "word.count-1", "exec", dir,
       {"handler.sh", "runnel.yaml", "sample-input.txt", "expected-output.json", "test.sh", "README.md"});
  EXPECT_TRUE(IsExecutable(dir / "handler.sh"));
  EXPECT_TRUE(IsExecutable(dir / "test.sh"));
  EXPECT_EQ(ReadAll(dir / "expected-output.json"),
            "{\"function\":\"word.count-1\",\"lines\":2,\"words\":9,\"bytes\":44}\n");
  const auto ran = RunProjectTest({(dir / "test.sh").string()}, {{"RUNNEL", RunnelBin()}});
  EXPECT_EQ(ran.exit_code, 0) << ran.out;
  EXPECT_THAT(ran.out, HasSubstr("ok   handler.sh answers sample-input.txt with expected-output.json"));
  EXPECT_THAT(ran.out, HasSubstr("ok   empty input exits 2 (bad input)"));
  EXPECT_THAT(ran.out, HasSubstr("ok   runnel config check runnel.yaml"));
  EXPECT_THAT(ran.out, HasSubstr("ok   runnel invoke word.count-1 --file sample-input.txt through a stack"));
  EXPECT_THAT(ran.out, Not(HasSubstr("FAIL")));
  fs::remove_all(dir.parent_path());
}

// As a plugin author does it: Runnel installed into a prefix, the project built against it with
// find_package(Runnel), its ctest run; test `runnel` uses the prefix's runnel, found by CMake.
TEST(Init, CppPluginProjectBuildsAgainstAnInstallAndPassesItsOwnTest) {
  const auto work = TempDir("init-cpp-plugin");
  const auto prefix = work / "prefix";
  const auto install = RunCommand({RUNNEL_CMAKE, "--install", RUNNEL_BUILD_DIR, "--prefix", prefix.string()},
                                  kProjectTestDeadline);
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  const auto installed_runnel = (prefix / "bin" / "runnel").string();
  ASSERT_TRUE(IsExecutable(installed_runnel));

  const auto dir = work / "shout";
  Init(installed_runnel, "shout", "cpp-plugin", dir,
       {"handler.cpp", "CMakeLists.txt", "runnel.yaml", "sample-input.txt", "expected-output.txt",
        "test_handler.cpp", "test_runnel.sh", "README.md", ".gitignore"});
  EXPECT_TRUE(IsExecutable(dir / "test_runnel.sh"));
  const auto build = dir / "build";
  const auto configure = RunProjectTest(
      {RUNNEL_CMAKE, "-S", dir.string(), "-B", build.string(), "-DCMAKE_PREFIX_PATH=" + prefix.string()}, {});
  ASSERT_EQ(configure.exit_code, 0) << configure.out;
  const auto built = RunProjectTest({RUNNEL_CMAKE, "--build", build.string()}, {});
  ASSERT_EQ(built.exit_code, 0) << built.out;
  EXPECT_TRUE(fs::is_regular_file(build / "libshout.so"));
  const auto ran =
      RunProjectTest({RUNNEL_CTEST, "--test-dir", build.string(), "--output-on-failure", "-V"}, {});
  EXPECT_EQ(ran.exit_code, 0) << ran.out;
  EXPECT_THAT(ran.out, HasSubstr("100% tests passed, 0 tests failed out of 2"));
  EXPECT_THAT(ran.out, HasSubstr("ok   its output is the expected output"));
  EXPECT_THAT(ran.out, HasSubstr("ok   empty input is bad input"));
  EXPECT_THAT(ran.out, HasSubstr("runnel: " + installed_runnel));
  EXPECT_THAT(ran.out, HasSubstr("ok   runnel invoke shout --file sample-input.txt through a stack"));
  EXPECT_THAT(ran.out, Not(HasSubstr("Skipped")));
  fs::remove_all(work);
}

// Without --dir the project goes to ./NAME.
TEST(Init, DefaultFolderIsTheName) {
  const auto cwd = TempDir("init-default");
  const auto run = RunCommand(
      {"bash", "-c", "cd \"$1\" && exec \"$2\" init hello --template exec", "-", cwd.string(), RunnelBin()});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(fs::is_regular_file(cwd / "hello" / "handler.sh"));
  EXPECT_THAT(run.out, HasSubstr("Test it: cd hello && ./test.sh"));
  fs::remove_all(cwd);
}

struct Refusal {
  std::vector<std::string> args;  // after `runnel init`
  int exit_code;
  std::string message;  // a piece of stderr
};

TEST(Init, RefusesWithAPreciseError) {
  const auto work = TempDir("init-refusals");
  const auto full = work / "full";
  fs::create_directories(full);
  std::ofstream(full / "keep.txt") << "mine";
  std::ofstream(work / "a-file") << "x";
  fs::create_directories(work / "empty");
  const std::vector<Refusal> cases = {
      {{"f", "--template", "exec", "--dir", full.string()},
       1,
       "runnel: " + full.string() + " exists and is not empty; choose another --dir, or remove it\n"},
      {{"f", "--template", "exec", "--dir", (work / "a-file").string()},
       1,
       (work / "a-file").string() + " exists and is not a directory"},
      {{"a/b", "--template", "exec", "--dir", (work / "x").string()},
       2,
       "'a/b' is not a function name: it must be 1..249 of [A-Za-z0-9._-], not . or .."},
      {{"..", "--template", "python", "--dir", (work / "x").string()}, 2, "'..' is not a function name"},
      {{std::string(250, 'f'), "--template", "python", "--dir", (work / "x").string()},
       2,
       "is not a function name: it must be 1..249"},
      {{"f", "--template", "rust", "--dir", (work / "x").string()},
       2,
       "unknown template 'rust' (the templates: cpp-plugin, exec, python)"},
      {{"f", "--dir", (work / "x").string()}, 2, "--template is required"},
      {{"--template", "exec"}, 2, "NAME is required"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {RunnelBin(), "init"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const auto run = RunCommand(argv);
    EXPECT_EQ(run.exit_code, c.exit_code) << c.args[0] << ": " << run.err;
    EXPECT_THAT(run.err, HasSubstr(c.message)) << c.args[0];
  }
  EXPECT_FALSE(fs::exists(work / "x")) << "a refused init wrote nothing";
  EXPECT_EQ(ReadAll(full / "keep.txt"), "mine");
  EXPECT_EQ(std::distance(fs::directory_iterator(full), fs::directory_iterator()), 1);
  // An empty folder is taken.
  const auto into_empty =
      RunCommand({RunnelBin(), "init", "f", "--template", "python", "--dir", (work / "empty").string()});
  EXPECT_EQ(into_empty.exit_code, 0) << into_empty.err;
  EXPECT_TRUE(fs::is_regular_file(work / "empty" / "handler.py"));
  // The longest name runnel.yaml takes.
  const std::string longest(249, 'f');
  const auto longest_run = RunCommand(
      {RunnelBin(), "init", longest, "--template", "python", "--dir", (work / "longest").string()});
  EXPECT_EQ(longest_run.exit_code, 0) << longest_run.err;
  EXPECT_THAT(ReadAll(work / "longest" / "runnel.yaml"), HasSubstr("- name: " + longest + "\n"));
  fs::remove_all(work);
}

}  // namespace
}  // namespace runnel::testing
