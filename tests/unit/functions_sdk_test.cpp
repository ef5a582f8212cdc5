#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "runnel/functions/function.hpp"

namespace runnel::functions {
namespace {

using ::testing::HasSubstr;

Event Inline(std::string payload) {
  Event e;
  e.envelope.id = "e1";
  e.payload = std::move(payload);
  return e;
}

TEST(Registry, UnknownFunctionNamesTheKnownOnes) {
  try {
    Builtins().Create("no.such", {});
    FAIL();
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.Code(), Errc::kUnknownFunction);
    EXPECT_THAT(e.what(), HasSubstr("unknown function 'no.such'"));
    EXPECT_THAT(e.what(), HasSubstr("echo"));
  }
}

TEST(Registry, BadParamsAreConfigErrors) {
  try {
    Builtins().Create("sleep", {{"ms", -5}});
    FAIL();
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.Code(), Errc::kBadConfig);
    EXPECT_FALSE(e.Retriable());
  }
}

TEST(ReadInput, InlineAndFileAndLimits) {
  EXPECT_EQ(Context::ReadInput(Inline("abc"), 3), "abc");
  EXPECT_THROW(Context::ReadInput(Inline("abcd"), 3), FunctionError);

  const auto path = std::filesystem::temp_directory_path() / ("runnel-input-" + std::to_string(::getpid()));
  std::ofstream(path) << "file bytes";
  Event e = Inline("");
  e.envelope.file = FileRef{path.string(), std::nullopt, {}};
  EXPECT_EQ(Context::ReadInput(e, 100), "file bytes");
  try {
    Context::ReadInput(e, 4);
    FAIL();
  } catch (const FunctionError& err) {
    EXPECT_EQ(err.Code(), Errc::kLimitExceeded);
  }
  std::filesystem::remove(path);
  try {
    Context::ReadInput(e, 100);
    FAIL();
  } catch (const FunctionError& err) {
    EXPECT_EQ(err.Code(), Errc::kBadInput);
    EXPECT_THAT(err.what(), HasSubstr("cannot open input file"));
  }
}

TEST(OutputStore, RerunsOverwriteInsteadOfDuplicating) {
  const auto root = std::filesystem::temp_directory_path() / ("runnel-out-" + std::to_string(::getpid()));
  OutputStore store(root);
  auto first = store.Write("image.thumbnail", "ev1", "256.jpg", "one");
  auto second = store.Write("image.thumbnail", "ev1", "256.jpg", "second");
  EXPECT_EQ(first.path, second.path);
  EXPECT_EQ(second.bytes, 6u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(root / "image.thumbnail" / "ev1"),
                          std::filesystem::directory_iterator()),
            1);
  EXPECT_THROW(store.Write("f", "..", "x", "y"), FunctionError);
  std::filesystem::remove_all(root);
}

TEST(EffectiveBatch, TheConfigOverridesTheFunctionsDefault) {
  const auto ingest = Builtins().Create("iot.ingest", nlohmann::json::object());
  ASSERT_TRUE(ingest->TakesBatches());
  const BatchSpec declared = EffectiveBatch(*ingest, std::nullopt);
  EXPECT_EQ(declared.size, 100u) << "Lambda's Kafka trigger defaults";
  EXPECT_EQ(declared.window, std::chrono::milliseconds(500));
  const BatchSpec configured = EffectiveBatch(*ingest, BatchSpec{50, std::chrono::milliseconds(200)});
  EXPECT_EQ(configured.size, 50u);
  EXPECT_EQ(configured.window, std::chrono::milliseconds(200));
  EXPECT_EQ(EffectiveBatch(*ingest, BatchSpec{1, {}}).size, 1u) << "size 1 turns batching off";
}

TEST(EffectiveBatch, AFunctionWithoutBatchesTakesOnlySizeOne) {
  const auto echo = Builtins().Create("echo", nlohmann::json::object());
  EXPECT_FALSE(echo->TakesBatches());
  EXPECT_EQ(EffectiveBatch(*echo, std::nullopt).size, 1u);
  EXPECT_EQ(EffectiveBatch(*echo, BatchSpec{1, std::chrono::milliseconds(100)}).size, 1u);
  try {
    EffectiveBatch(*echo, BatchSpec{50, std::chrono::milliseconds(200)});
    ADD_FAILURE() << "batch.size 50 accepted for echo";
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.Code(), Errc::kBadConfig);
    EXPECT_STREQ(
        e.what(),
        "batch.size 50: this function takes one event per call (it does not declare batches); remove "
        "batch or set batch.size: 1");
  }
}

}  // namespace
}  // namespace runnel::functions
