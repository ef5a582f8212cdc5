// The plugin loader against real shared libraries: the sample plugin (ABI version 2: three
// functions, outputs, emits, batches), a version 1 plugin, one built for another ABI version, one
// without the entry point, and a file that is no library at all.
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
using testing::ErrorOf;
using ::testing::HasSubstr;
using testing::MakeEvent;
using testing::TestContext;

TEST(Plugin, InspectListsTheFunctions) {
  const auto functions = InspectPlugin(RUNNEL_TEXT_TOOLS_PLUGIN);
  ASSERT_EQ(functions.size(), 3u);
  EXPECT_EQ(functions[0].name, "word-count");
  EXPECT_EQ(functions[1].name, "uppercase");
  EXPECT_EQ(functions[2].name, "split-lines");
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
  const auto path =
      std::filesystem::temp_directory_path() / ("runnel-plugin-input-" + std::to_string(::getpid()));
  std::ofstream(path) << "one two\nthree\n";
  TestContext ctx;
  auto count = LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "word-count", {});
  auto event = MakeEvent("");
  event.envelope.file = FileRef{path.string(), std::nullopt, "input.txt"};
  EXPECT_EQ(count->Handle(event, ctx).output, R"({"lines":2,"words":3,"bytes":14})");
  std::filesystem::remove(path);
}

TEST(Plugin, AUrlReferenceIsRefusedAsBadInputWithoutItsQuery) {
  TestContext ctx;
  auto count = LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "word-count", {});
  auto event = MakeEvent("");
  event.envelope.file = FileRef{{}, std::nullopt, "in.txt", "https://b.example/in.txt?sig=secret"};
  const auto e = ErrorOf([&] { count->Handle(event, ctx); });
  EXPECT_EQ(e.Code(), Errc::kBadInput);
  EXPECT_STREQ(
      e.what(),
      "plugin functions take a file:// reference or an inline payload, not a URL (https://b.example/in.txt)");
}

TEST(Plugin, StatusesBecomeErrorKinds) {
  TestContext ctx;
  auto count = LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "word-count", {});
  const auto e = ErrorOf([&] { count->Handle(MakeEvent(std::string("bin\0ary", 7)), ctx); });
  EXPECT_EQ(e.Code(), Errc::kBadInput);
  EXPECT_THAT(e.what(), HasSubstr("binary input"));
}

TEST(Plugin, CreateFailureIsABadConfigWithThePluginsReason) {
  const auto e = ErrorOf([] {
    LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "word-count", {{"min_length", 0}});
  });
  EXPECT_EQ(e.Code(), Errc::kBadConfig);
  EXPECT_THAT(e.what(), HasSubstr("params.min_length must be an integer within 1..1000"));
}

TEST(Plugin, SeveralFunctionsNeedANameAndTheNameMustExist) {
  auto e = ErrorOf([] { LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "", {}); });
  EXPECT_THAT(e.what(), AllOf(HasSubstr("provides 3 functions (word-count, uppercase, split-lines)"),
                              HasSubstr("#NAME")));
  e = ErrorOf([] { LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "nope", {}); });
  EXPECT_THAT(e.what(), HasSubstr("no function 'nope' (it has: word-count, uppercase, split-lines)"));
}

TEST(Plugin, AnotherAbiVersionIsRefusedNamingTheFileAndTheVersions) {
  const auto e = ErrorOf([] { InspectPlugin(RUNNEL_OTHER_ABI_PLUGIN); });
  EXPECT_EQ(e.Code(), Errc::kBadConfig);
  EXPECT_THAT(e.what(), AllOf(HasSubstr(RUNNEL_OTHER_ABI_PLUGIN), HasSubstr("built for plugin ABI version 3"),
                              HasSubstr("runnel_plugin_v1() is version 1's entry point"),
                              HasSubstr("this runnel loads versions 1 and 2")));
}

TEST(Plugin, AMissingEntryPointIsRefused) {
  const auto e = ErrorOf([] { LoadPluginFunction(RUNNEL_NO_ENTRY_PLUGIN, "", {}); });
  EXPECT_EQ(e.Code(), Errc::kBadConfig);
  EXPECT_THAT(e.what(), AllOf(HasSubstr(RUNNEL_NO_ENTRY_PLUGIN),
                              HasSubstr("exports neither runnel_plugin_v2() nor runnel_plugin_v1()")));
}

TEST(Plugin, VersionOnePluginsStillLoadAndRun) {
  const auto functions = InspectPlugin(RUNNEL_V1_PLUGIN);
  ASSERT_EQ(functions.size(), 1u);
  EXPECT_EQ(functions[0].abi_version, 1u);
  EXPECT_EQ(InspectPlugin(RUNNEL_TEXT_TOOLS_PLUGIN)[0].abi_version, 2u);
  TestContext ctx;
  auto reverse = LoadPluginFunction(RUNNEL_V1_PLUGIN, "", {});
  const Result r = reverse->Handle(MakeEvent("abc"), ctx);
  EXPECT_EQ(r.output, "cba");
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_TRUE(r.files.empty());
  EXPECT_EQ(reverse->Batch().size, 1u);
  EXPECT_EQ(ErrorOf([&] { reverse->Handle(MakeEvent(""), ctx); }).Code(), Errc::kBadInput);
}

TEST(Plugin, OutputFilesAreWrittenToTheStoreAndListed) {
  TestContext ctx;
  auto count = LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "word-count", {{"save", true}}, "words");
  const Result r = count->Handle(MakeEvent("one two three", "ev-out"), ctx);
  ASSERT_EQ(r.files.size(), 1u);
  const auto expected = ctx.Outputs().Root() / "words" / "ev-out" / "counts.json";
  EXPECT_EQ(r.files[0].path, expected.string());
  EXPECT_EQ(r.files[0].bytes, r.output.size());
  EXPECT_EQ(r.files[0].facts, nlohmann::json({{"words", 3}}));
  std::ifstream in(expected);
  std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(written, r.output);
  // A rerun of the event overwrites the same file.
  EXPECT_EQ(count->Handle(MakeEvent("four", "ev-out"), ctx).files[0].path, expected.string());
  std::filesystem::remove_all(ctx.Outputs().Root() / "words");
}

TEST(Plugin, EmitPublishesPipelineRecordsWithTheirKeyAndHeaders) {
  TestContext ctx;
  auto split = LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "split-lines", {{"topic", "lines"}});
  auto event = MakeEvent("first\n\nsecond\n");
  event.key = "doc-1";
  const Result r = split->Handle(event, ctx);
  EXPECT_EQ(r.output, R"({"emitted":2})");
  ASSERT_EQ(ctx.emitted.size(), 2u);
  EXPECT_EQ(ctx.emitted[0].topic, "lines");
  EXPECT_EQ(ctx.emitted[0].key, "doc-1");
  EXPECT_EQ(ctx.emitted[0].payload, "first");
  EXPECT_EQ(ctx.emitted[1].payload, "second");
  EXPECT_EQ(ctx.emitted[1].headers, (Headers{{"content-type", "text/plain"}}));
  const auto e = ErrorOf([] { LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "split-lines", {}); });
  EXPECT_THAT(e.what(), HasSubstr("params.topic must be a topic name"));
}

TEST(Plugin, BatchesDeclaredByThePluginFailOneEventAlone) {
  TestContext ctx;
  auto count = LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "word-count", {});
  EXPECT_EQ(count->Batch().size, 20u);
  EXPECT_EQ(count->Batch().window, std::chrono::milliseconds(100));
  const std::vector<Event> events = {MakeEvent("a b", "e1"), MakeEvent(std::string("x\0y", 3), "e2"),
                                     MakeEvent("c d e", "e3")};
  const std::vector<ResultOrError> outcomes = count->HandleBatch(events, ctx);
  ASSERT_EQ(outcomes.size(), 3u);
  ASSERT_TRUE(outcomes[0].result);
  EXPECT_EQ(outcomes[0].result->output, R"({"lines":1,"words":2,"bytes":3})");
  ASSERT_TRUE(outcomes[1].error);
  EXPECT_EQ(outcomes[1].error->Code(), Errc::kBadInput);
  EXPECT_THAT(outcomes[1].error->what(), HasSubstr("binary input"));
  ASSERT_TRUE(outcomes[2].result);
  EXPECT_EQ(outcomes[2].result->output, R"({"lines":1,"words":3,"bytes":5})");
  // Without handle_batch, a batch is handle() per event.
  auto upper = LoadPluginFunction(RUNNEL_TEXT_TOOLS_PLUGIN, "uppercase", {});
  EXPECT_EQ(upper->Batch().size, 1u);
  EXPECT_EQ(upper->HandleBatch(events, ctx)[2].result->output, "C D E");
}

TEST(Plugin, AFileThatIsNoLibraryIsRefused) {
  const auto path =
      std::filesystem::temp_directory_path() / ("runnel-not-a-plugin-" + std::to_string(::getpid()));
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
