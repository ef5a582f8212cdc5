// The plugin loader against real shared libraries: the sample plugin (two functions), one built
// for another ABI version, one without the entry point, and a file that is no library at all.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "runnel/functions/handlers.hpp"
#include "runnel/functions/plugin_function.hpp"
#include "test_context.hpp"

namespace runnel::functions {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::ErrorOf;
using testing::MakeEvent;
using testing::TestContext;

TEST(Plugin, InspectListsTheFunctions) {
  const auto functions = InspectPlugin(RUNNEL_TEXT_TOOLS_PLUGIN);
  ASSERT_EQ(functions.size(), 2u);
  EXPECT_EQ(functions[0].name, "word-count");
  EXPECT_EQ(functions[1].name, "uppercase");
}

TEST(Plugin, RoundTripThroughTheCAbi) {
  TestContext ctx;
  auto count = LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "word-count", {{"min_length", 2}});
  const Result r = count->Handle(MakeEvent("a bb ccc\ndd e\n"), ctx);
  EXPECT_EQ(r.output, R"({"lines":2,"words":3,"bytes":14})");
  EXPECT_EQ(r.content_type, "application/json");

  auto upper = CreateFunction(std::string("plugin:") + RUNNEL_TEXT_TOOLS_PLUGIN + "#uppercase", {});
  auto event = MakeEvent("Hello, plugin");
  event.envelope.content_type = "text/plain";
  EXPECT_EQ(upper->Handle(event, ctx).output, "HELLO, PLUGIN");
}

TEST(Plugin, FileInputsAreReadByThePlugin) {
  const auto path = std::filesystem::temp_directory_path() / ("runnel-plugin-input-" + std::to_string(::getpid()));
  std::ofstream(path) << "one two\nthree\n";
  TestContext ctx;
  auto count = LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "word-count", {});
  auto event = MakeEvent("");
  event.envelope.file = FileRef{path.string(), std::nullopt, "input.txt"};
  EXPECT_EQ(count->Handle(event, ctx).output, R"({"lines":2,"words":3,"bytes":14})");
  std::filesystem::remove(path);
}

TEST(Plugin, StatusesBecomeErrorKinds) {
  TestContext ctx;
  auto count = LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "word-count", {});
  const auto e = ErrorOf([&] { count->Handle(MakeEvent(std::string("bin\0ary", 7)), ctx); });
  EXPECT_EQ(e.Code(), Errc::kBadInput);
  EXPECT_THAT(e.what(), HasSubstr("binary input"));
}

TEST(Plugin, CreateFailureIsABadConfigWithThePluginsReason) {
  const auto e = ErrorOf([] { LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "word-count", {{"min_length", 0}}); });
  EXPECT_EQ(e.Code(), Errc::kBadConfig);
  EXPECT_THAT(e.what(), HasSubstr("params.min_length must be an integer within 1..1000"));
}

TEST(Plugin, SeveralFunctionsNeedANameAndTheNameMustExist) {
  auto e = ErrorOf([] { LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "", {}); });
  EXPECT_THAT(e.what(), AllOf(HasSubstr("provides 2 functions (word-count, uppercase)"), HasSubstr("#NAME")));
  e = ErrorOf([] { LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "nope", {}); });
  EXPECT_THAT(e.what(), HasSubstr("no function 'nope' (it has: word-count, uppercase)"));
}

TEST(Plugin, AnotherAbiVersionIsRefusedNamingTheFileAndBothVersions) {
  const auto e = ErrorOf([] { InspectPlugin(RUNNEL_OTHER_ABI_PLUGIN); });
  EXPECT_EQ(e.Code(), Errc::kBadConfig);
  EXPECT_THAT(e.what(), AllOf(HasSubstr(RUNNEL_OTHER_ABI_PLUGIN), HasSubstr("built for plugin ABI version 2"),
                              HasSubstr("this runnel loads version 1")));
}

TEST(Plugin, AMissingEntryPointIsRefused) {
  const auto e = ErrorOf([] { LoadPluginFunction(RUNNEL_NO_ENTRY_PLUGIN, "", {}); });
  EXPECT_EQ(e.Code(), Errc::kBadConfig);
  EXPECT_THAT(e.what(), AllOf(HasSubstr(RUNNEL_NO_ENTRY_PLUGIN), HasSubstr("does not export runnel_plugin_v1()")));
}

TEST(Plugin, AFileThatIsNoLibraryIsRefused) {
  const auto path = std::filesystem::temp_directory_path() / ("runnel-not-a-plugin-" + std::to_string(::getpid()));
  std::ofstream(path) << "not an ELF file";
  const auto e = ErrorOf([&] { InspectPlugin(path.string()); });
  EXPECT_THAT(e.what(), AllOf(HasSubstr(path.string()), HasSubstr("cannot load it")));
  std::filesystem::remove(path);
}

TEST(Plugin, ConcurrentCallsOnOneInstance) {
  auto upper = LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "uppercase", {});
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      TestContext ctx;
      for (int i = 0; i < 200; ++i) {
        const std::string in = fmt::format("abc{}", t), want = fmt::format("ABC{}", t);
        if (upper->Handle(MakeEvent(in), ctx).output == want) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 800);
}

}  // namespace
}  // namespace runnel::functions
