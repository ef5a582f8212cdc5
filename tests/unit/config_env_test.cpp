// Environment variable expansion in runnel.yaml: the expansion rules on their own (with an injected
// environment), then through LoadStackConfig, where every error names the file, line and key and
// never the value of a variable.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <stdlib.h>

#include <fstream>
#include <map>
#include <sstream>

#include "runnel/core/config.hpp"
#include "runnel/core/env_expand.hpp"
#include "runnel/core/error.hpp"
#include "runnel/testing/child_process.hpp"
#include "runnel/testing/config_error.hpp"

namespace runnel {
namespace {

const std::map<std::string, std::string> kEnv = {
    {"A", "x"}, {"EMPTY", ""}, {"DOLLAR", "p$${A}w{"}, {"DIR", "/srv/in"}};

std::optional<std::string> FakeEnv(const std::string& name) {
  const auto it = kEnv.find(name);
  if (it == kEnv.end()) return std::nullopt;
  return it->second;
}

std::string Expand(const std::string& text) { return ExpandEnv(text, FakeEnv); }

std::string ExpandError(const std::string& text) {
  try {
    return "(no error: '" + Expand(text) + "')";
  } catch (const ConfigError& e) {
    return e.what();
  }
}

TEST(ExpandEnv, ReplacesReferencesAndKeepsTheRest) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"plain text", "plain text"},
      {"${A}", "x"},
      {"pre-${A}-post", "pre-x-post"},
      {"${A}${A}", "xx"},
      {"${EMPTY}", ""},
      {"${UNSET:-fallback}", "fallback"},
      {"${EMPTY:-fallback}", "fallback"},  // :- also covers set-but-empty, as in the shell
      {"${A:-fallback}", "x"},
      {"${UNSET:-}", ""},
      {"${UNSET:-${DIR}/photos}", "/srv/in/photos"},  // a default may hold references
      {"${UNSET:-a}b}", "ab}"},
      {"$$", "$"},
      {"cost $$5", "cost $5"},
      {"$${A}", "${A}"},
      {"${UNSET:-$$}", "$"},
      {"${DOLLAR}", "p$${A}w{"},  // a value from the environment is never expanded again
      {"${A:?needed}", "x"},
  };
  for (const auto& [text, want] : cases) EXPECT_EQ(Expand(text), want) << text;
}

TEST(ExpandEnv, EachMistakeHasAPreciseMessage) {
  EXPECT_EQ(ExpandError("${UNSET}"), "${UNSET} is not set (set it, or give a default: ${UNSET:-value})");
  EXPECT_EQ(ExpandError("${UNSET:?the SASL password}"), "${UNSET} is not set: the SASL password");
  EXPECT_EQ(ExpandError("${EMPTY:?needed for uploads}"), "${EMPTY} is empty: needed for uploads");
  EXPECT_EQ(ExpandError("${UNSET:?}"), "${UNSET} is not set: it is required");
  EXPECT_EQ(ExpandError("${UNSET:-${ALSO_UNSET}}"),
            "${ALSO_UNSET} is not set (set it, or give a default: ${ALSO_UNSET:-value})");
  EXPECT_EQ(ExpandError("$HOME/photos"),
            "'$HOME' is not expanded: write ${HOME} for the variable, or $$HOME for the text");
  EXPECT_EQ(ExpandError("price 5$"), "a lone '$': write $$ for a literal $, or ${NAME} for a variable");
  EXPECT_EQ(ExpandError("${A"), "'${A' has no closing }");
  EXPECT_EQ(ExpandError("x ${UNSET:-${A}"), "'${UNSET:-${A}' has no closing }");
  EXPECT_EQ(ExpandError("${}"),
            "'${}' is not a variable reference: a name is letters, digits and _, not starting with a digit");
  EXPECT_EQ(
      ExpandError("${1A}"),
      "'${1A}' is not a variable reference: a name is letters, digits and _, not starting with a digit");
  EXPECT_EQ(ExpandError("${A-x}"),
            "'${A-x}': after the name A comes '-'; expected }, :-default or :?message");
  EXPECT_EQ(ExpandError("${A:=x}"),
            "'${A:=x}': after the name A comes ':'; expected }, :-default or :?message");
}

// Found while fuzzing ExpandEnv, by an input made by hand (the fuzzer's inputs of a few KiB cannot
// nest deep enough): every level of a nested default was a recursion that also rescanned its text,
// so a value nesting 20,000 defaults took seconds and overflowed the stack under ASan.
TEST(ExpandEnv, NestingIsBoundedSoADeepValueIsAnErrorNotACrash) {
  const auto nested = [](int levels) {
    std::string s;
    for (int i = 0; i < levels; ++i) s += "${UNSET:-";
    return s + "x" + std::string(static_cast<std::size_t>(levels), '}');
  };
  EXPECT_EQ(Expand(nested(16)), "x");
  EXPECT_EQ(ExpandError(nested(17)), "a default or message nests ${...} more than 16 deep");
  EXPECT_EQ(ExpandError("${UNSET:?" + nested(16) + "}"),
            "a default or message nests ${...} more than 16 deep");
  EXPECT_EQ(ExpandError(nested(20'000)), "a default or message nests ${...} more than 16 deep");
  EXPECT_EQ(Expand("${A:-" + nested(40) + "}"), "x");  // a set variable's default is never expanded
}

// Through the config loader, with the real process environment (variables unique to this test).
class ConfigEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir("config-env");
    ::setenv("RUNNEL_TEST_BOOTSTRAP", "kafka-1:9092,kafka-2:9092", 1);
    ::setenv("RUNNEL_TEST_PASSWORD", "s3cr3t-$-{}", 1);
    ::setenv("RUNNEL_TEST_PARTITIONS", "6", 1);
    ::setenv("RUNNEL_TEST_DATA", (dir_ / "data").c_str(), 1);
    ::unsetenv("RUNNEL_TEST_UNSET");
  }
  void TearDown() override {
    for (const char* name :
         {"RUNNEL_TEST_BOOTSTRAP", "RUNNEL_TEST_PASSWORD", "RUNNEL_TEST_PARTITIONS", "RUNNEL_TEST_DATA"}) {
      ::unsetenv(name);
    }
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path Write(const std::string& yaml) {
    auto file = dir_ / "runnel.yaml";
    std::ofstream(file) << yaml;
    return file;
  }
  // The loader's message for `yaml`, with the file's path replaced by F.
  std::string Error(const std::string& yaml) {
    return testing::ConfigErrorOf(Write(yaml),
                                  [](const std::filesystem::path& f) { return LoadStackConfig(f); });
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigEnv, ExpandsSecretsPathsAndNumbers) {
  const auto config = LoadStackConfig(Write(R"(kafka:
  bootstrap: ${RUNNEL_TEST_BOOTSTRAP}
  options:
    security.protocol: SASL_SSL
    sasl.username: ${RUNNEL_TEST_USER:-runnel}
    sasl.password: ${RUNNEL_TEST_PASSWORD}
output_dir: ${RUNNEL_TEST_DATA}/outputs
functions:
  - name: echo
    partitions: ${RUNNEL_TEST_PARTITIONS}
    params:
      copies: ${RUNNEL_TEST_PARTITIONS}
      label: "${RUNNEL_TEST_PARTITIONS}"
      price: $$5
      dir: &d "${RUNNEL_TEST_DATA}"
    results_topic: echo.${RUNNEL_TEST_UNSET:-results}
  - name: sleep
    params: {again: *d}
schedules:
  - name: nightly
    cron: "0 2 * * *"
    function: echo
    files: {dir: "${RUNNEL_TEST_DATA}/in", glob: "*.png"}
)"));
  EXPECT_EQ(config.kafka_bootstrap, "kafka-1:9092,kafka-2:9092");
  EXPECT_EQ(config.kafka_secrets.at("sasl.username").Reveal(), "runnel");
  EXPECT_EQ(config.kafka_secrets.at("sasl.password").Reveal(), "s3cr3t-$-{}");
  EXPECT_EQ(config.output_dir, (dir_ / "data" / "outputs").string());
  ASSERT_EQ(config.functions.size(), 2u);
  EXPECT_EQ(config.functions[0].partitions, 6);
  EXPECT_EQ(config.functions[0].params["copies"], 6);   // a plain scalar: typed after expansion
  EXPECT_EQ(config.functions[0].params["label"], "6");  // a quoted one stays a string
  EXPECT_EQ(config.functions[0].params["price"], "$5");
  EXPECT_EQ(config.functions[0].params["dir"], (dir_ / "data").string());
  EXPECT_EQ(config.functions[1].params["again"], (dir_ / "data").string());  // an alias, expanded once
  EXPECT_EQ(config.functions[0].results_topic, "echo.results");
  ASSERT_EQ(config.schedules.size(), 1u);
  EXPECT_EQ(config.schedules[0].files->dir, (dir_ / "data" / "in").string());
}

TEST_F(ConfigEnv, AnUnsetVariableNamesFileLineAndKey) {
  EXPECT_EQ(
      Error("kafka:\n  options:\n    sasl.password: ${RUNNEL_TEST_UNSET}\nfunctions:\n  - name: echo\n"),
      "F:3: kafka.options.sasl.password: ${RUNNEL_TEST_UNSET} is not set (set it, or give a default: "
      "${RUNNEL_TEST_UNSET:-value})");
  EXPECT_EQ(
      Error("functions:\n  - name: echo\n  - name: sleep\n    params:\n      thresholds: {temp: {above: "
            "\"${RUNNEL_TEST_UNSET:?the alert level}\"}}\n"),
      "F:5: functions[1].params.thresholds.temp.above: ${RUNNEL_TEST_UNSET} is not set: the alert level");
  EXPECT_EQ(
      Error("functions:\n  - name: echo\nschedules:\n  - name: n\n    cron: '@daily'\n    function: echo\n"
            "    files:\n      dir: $RUNNEL_TEST_DATA\n"),
      "F:8: schedules[0].files.dir: '$RUNNEL_TEST_DATA' is not expanded: write ${RUNNEL_TEST_DATA} for the "
      "variable, or $$RUNNEL_TEST_DATA for the text");
  EXPECT_EQ(
      Error("functions:\n  - name: echo\n    next: [sleep, \"${RUNNEL_TEST_UNSET\"]\n  - name: sleep\n"),
      "F:3: functions[0].next[1]: '${RUNNEL_TEST_UNSET' has no closing }");
}

TEST_F(ConfigEnv, AnExpandedValueIsValidatedLikeAWrittenOne) {
  ::setenv("RUNNEL_TEST_PARTITIONS", "many", 1);
  EXPECT_EQ(Error("functions:\n  - name: echo\n    partitions: ${RUNNEL_TEST_PARTITIONS}\n"),
            "F:3: functions[0].partitions: 'many' is not a valid integer");
}

// What is secret is said by the type: kafka.secrets, and the options librdkafka flags sensitive,
// are held as Secret (printed ***); every other option, whatever its name, is a plain value.
TEST_F(ConfigEnv, SecretsAreHeldAsSecretsAndOtherOptionsAsValues) {
  const auto config = LoadStackConfig(Write(R"(kafka:
  options:
    ssl.key.password: ${RUNNEL_TEST_PASSWORD}
    socket.keepalive.enable: "true"
    sasl.oauthbearer.token.endpoint.url: https://idp.example/token
  secrets:
    sasl.oauthbearer.client.secret: ${RUNNEL_TEST_PASSWORD}
functions:
  - name: echo
)"));
  EXPECT_EQ(config.kafka_secrets.at("ssl.key.password").Reveal(), "s3cr3t-$-{}");
  EXPECT_EQ(config.kafka_secrets.at("sasl.oauthbearer.client.secret").Reveal(), "s3cr3t-$-{}");
  EXPECT_FALSE(config.kafka_options.contains("ssl.key.password"));
  EXPECT_EQ(config.kafka_options.at("socket.keepalive.enable"), "true");
  EXPECT_EQ(config.kafka_options.at("sasl.oauthbearer.token.endpoint.url"), "https://idp.example/token");
  EXPECT_EQ(fmt::format("{}", config.kafka_secrets.at("ssl.key.password")), "***");
  std::ostringstream streamed;
  streamed << config.kafka_secrets.at("ssl.key.password");
  EXPECT_EQ(streamed.str(), "***");
}

TEST_F(ConfigEnv, ASecretSetTwiceIsAnErrorNamingTheLine) {
  EXPECT_EQ(Error("kafka:\n  options:\n    sasl.password: a\n  secrets:\n    sasl.password: b\nfunctions:\n"
                  "  - name: echo\n"),
            "F:5: kafka.secrets.sasl.password: is also set in kafka.options: set it in one place");
  EXPECT_EQ(Error("kafka:\n  secrets: [a]\nfunctions:\n  - name: echo\n"),
            "F:2: kafka.secrets: must be a mapping of librdkafka options whose values are secret");
}

TEST_F(ConfigEnv, ASecretNeverAppearsInAnError) {
  // A secret that breaks a later check: the message names the key, not the value.
  const std::string message = Error(
      "kafka:\n  options:\n    sasl.password: ${RUNNEL_TEST_PASSWORD}\nfunctions:\n  - name: echo\n    "
      "bogus: 1\n");
  EXPECT_THAT(message, ::testing::HasSubstr("functions[0].bogus: unknown key"));
  EXPECT_THAT(message, ::testing::Not(::testing::HasSubstr("s3cr3t")));
}

}  // namespace
}  // namespace runnel
