// Handler specs: parsing, path resolution, and their validation in the stack config.
#include "runnel/functions/handlers.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "runnel/core/config.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/handler.hpp"
#include "test_context.hpp"

namespace runnel {
namespace {

using ::testing::HasSubstr;

std::string ConfigErrorOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return {};
}

TEST(HandlerSpec, ParsesTheThreeKinds) {
  auto h = ParseHandler("builtin:echo");
  EXPECT_EQ(h.kind, HandlerSpec::Kind::kBuiltin);
  EXPECT_EQ(h.name, "echo");
  h = ParseHandler("plugin:lib/x.so#word-count");
  EXPECT_EQ(h.kind, HandlerSpec::Kind::kPlugin);
  EXPECT_EQ(h.path, "lib/x.so");
  EXPECT_EQ(h.name, "word-count");
  h = ParseHandler(R"(exec:python3 "my script.py" --mode 'a b' x\ y)");
  EXPECT_EQ(h.kind, HandlerSpec::Kind::kExec);
  EXPECT_EQ(h.argv, (std::vector<std::string>{"python3", "my script.py", "--mode", "a b", "x y"}));
  EXPECT_EQ(ParseHandler(h.ToString()).argv, h.argv) << h.ToString();
}

TEST(HandlerSpec, RefusesWhatItCannotRun) {
  EXPECT_THAT(ConfigErrorOf([] { ParseHandler("lambda:foo"); }),
              HasSubstr("is not builtin:NAME, plugin:PATH[#NAME] or exec:COMMAND"));
  EXPECT_THAT(ConfigErrorOf([] { ParseHandler("builtin:"); }), HasSubstr("needs a function name"));
  EXPECT_THAT(ConfigErrorOf([] { ParseHandler("plugin:x.so#"); }), HasSubstr("nothing after '#'"));
  EXPECT_THAT(ConfigErrorOf([] { ParseHandler("exec:  "); }), HasSubstr("needs a command"));
  EXPECT_THAT(ConfigErrorOf([] { ParseHandler("exec:sh -c 'oops"); }), HasSubstr("unterminated ' quote"));
  EXPECT_THAT(ConfigErrorOf([] { ResolveHandler(ParseHandler("exec:no-such-program-here"), "/"); }),
              HasSubstr("program 'no-such-program-here' is not in PATH"));
  const auto plain =
      std::filesystem::temp_directory_path() / ("runnel-not-executable-" + std::to_string(::getpid()));
  std::ofstream(plain) << "echo hi\n";
  std::filesystem::permissions(plain,
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_THAT(ConfigErrorOf([&] { ResolveHandler(ParseHandler("exec:" + plain.string()), "/"); }),
              HasSubstr("program '" + plain.string() + "' is not executable"));
  std::filesystem::remove(plain);
  EXPECT_THAT(ConfigErrorOf([] { ResolveHandler(ParseHandler("plugin:/tmp"), "/"); }),
              HasSubstr("plugin '/tmp' is not a regular file"));
}

TEST(HandlerSpec, BareProgramNamesAreFoundInPath) {
  const auto h = ResolveHandler(ParseHandler("exec:sh -c true"), "/");
  EXPECT_TRUE(std::filesystem::path(h.argv[0]).is_absolute()) << h.argv[0];
  EXPECT_EQ(h.argv[1], "-c");
}

class StackConfigHandlers : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("runnel-config-handlers-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ / "plugins");
    std::ofstream(dir_ / "plugins" / "libx.so") << "x";
    std::ofstream(dir_ / "run.sh") << "#!/bin/sh\n";
    std::filesystem::permissions(dir_ / "run.sh", std::filesystem::perms::owner_all);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  StackConfig Load(const std::string& yaml) {
    std::ofstream(dir_ / "runnel.yaml") << yaml;
    return LoadStackConfig(dir_ / "runnel.yaml");
  }

  std::filesystem::path dir_;
};

TEST_F(StackConfigHandlers, RelativePathsResolveAgainstTheConfigFilesDirectory) {
  const auto config = Load(R"(functions:
  - name: a
    handler: plugin:plugins/libx.so#count
  - name: b
    handler: exec:./run.sh --fast
  - name: echo
)");
  EXPECT_EQ(config.functions[0].handler, "plugin:" + (dir_ / "plugins/libx.so").string() + "#count");
  EXPECT_EQ(config.functions[1].handler, "exec:" + (dir_ / "run.sh").string() + " --fast");
  EXPECT_EQ(config.functions[1].handler_dir, dir_.string());
  EXPECT_EQ(config.functions[2].handler, "builtin:echo");
}

TEST_F(StackConfigHandlers, ErrorsNameTheFileLineAndKey) {
  const std::string file = (dir_ / "runnel.yaml").string();
  EXPECT_EQ(
      ConfigErrorOf([&] { Load("functions:\n  - name: a\n    handler: plugin:missing.so\n"); }),
      file + ":3: functions[0].handler: plugin '" + (dir_ / "missing.so").string() + "' does not exist");
  EXPECT_EQ(ConfigErrorOf([&] { Load("functions:\n  - name: a\n    handler: exec:./nope.sh\n"); }),
            file + ":3: functions[0].handler: program '" + (dir_ / "nope.sh").string() + "' does not exist");
  EXPECT_THAT(ConfigErrorOf([&] { Load("functions:\n  - name: a\n    handler: docker:x\n"); }),
              HasSubstr(file + ":3: functions[0].handler: 'docker:x' is not builtin:NAME"));
}

TEST(CreateFunction, BuiltinsStillComeFromTheRegistry) {
  functions::testing::TestContext ctx;
  auto fn = functions::CreateFunction("builtin:echo", {});
  EXPECT_EQ(fn->Handle(functions::testing::MakeEvent("hi"), ctx).output, "hi");
  const auto e = functions::testing::ErrorOf([] { functions::CreateFunction("builtin:no.such", {}); });
  EXPECT_EQ(e.Code(), functions::Errc::kUnknownFunction);
}

// Before the fix echo answered a by-reference input (`runnel invoke echo --file F`) with the
// reference's empty inline payload.
TEST(CreateFunction, EchoAnswersAByReferenceInputWithItsBytesWithinMaxBytes) {
  functions::testing::TestContext ctx;
  const auto path = std::filesystem::temp_directory_path() / ("runnel-echo-" + std::to_string(::getpid()));
  std::ofstream(path) << "the file's bytes";
  auto event = functions::testing::MakeEvent("");
  event.envelope.file = FileRef{path.string(), std::nullopt, "f.txt"};
  event.envelope.content_type = "text/plain";
  auto echo = functions::CreateFunction("builtin:echo", {});
  const auto result = echo->Handle(event, ctx);
  EXPECT_EQ(result.output, "the file's bytes");
  EXPECT_EQ(result.content_type, "text/plain");
  auto small = functions::CreateFunction("builtin:echo", {{"max_bytes", 4}});
  EXPECT_EQ(functions::testing::ErrorOf([&] { small->Handle(event, ctx); }).Code(),
            functions::Errc::kLimitExceeded);
  EXPECT_EQ(small->Handle(functions::testing::MakeEvent("inline"), ctx).output, "inline")
      << "an inline payload is the dispatcher's to bound (max_payload)";
  const auto bad = functions::testing::ErrorOf([] {
    functions::CreateFunction("builtin:echo", {{"max_bytes", "big"}});
  });
  EXPECT_EQ(bad.Code(), functions::Errc::kBadConfig);
  EXPECT_THAT(bad.what(), HasSubstr("echo: params.max_bytes \"big\" is not an integer"));
  std::filesystem::remove(path);
}

// sleep answers with its input too, and reads its {"ms"} or {"fail"} from a by-reference input:
// before, it parsed and returned the reference's empty inline payload (`runnel invoke sleep --file F`
// printed nothing and ignored the file).
TEST(CreateFunction, SleepReadsAByReferenceInputLikeEcho) {
  functions::testing::TestContext ctx;
  const auto path = std::filesystem::temp_directory_path() / ("runnel-sleep-" + std::to_string(::getpid()));
  auto event = functions::testing::MakeEvent("");
  event.envelope.file = FileRef{path.string(), std::nullopt, "f.json"};
  auto sleep = functions::CreateFunction("builtin:sleep", {});
  std::ofstream(path) << R"({"ms": 1})";
  EXPECT_EQ(sleep->Handle(event, ctx).output, R"({"ms": 1})");
  std::ofstream(path) << R"({"fail": "said by the file", "permanent": true})";
  const auto failed = functions::testing::ErrorOf([&] { sleep->Handle(event, ctx); });
  EXPECT_EQ(failed.Code(), functions::Errc::kBadInput);
  EXPECT_THAT(failed.what(), HasSubstr("said by the file"));
  auto small = functions::CreateFunction("builtin:sleep", {{"max_bytes", 4}});
  EXPECT_EQ(functions::testing::ErrorOf([&] { small->Handle(event, ctx); }).Code(),
            functions::Errc::kLimitExceeded);
  const auto bad = functions::testing::ErrorOf([] {
    functions::CreateFunction("builtin:sleep", {{"max_bytes", 0}});
  });
  EXPECT_EQ(bad.Code(), functions::Errc::kBadConfig);
  EXPECT_THAT(bad.what(), HasSubstr("sleep: params.max_bytes 0 is not an integer"));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace runnel
