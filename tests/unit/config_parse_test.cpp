// runnel.yaml read from a file and from text (ParseStackConfig), and the inputs the config fuzz
// target (tests/fuzz/config_fuzz.cpp) found: each must be a ConfigError naming file and line.
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

#include "runnel/core/config.hpp"
#include "runnel/core/error.hpp"
#include "runnel/testing/child_process.hpp"
#include "runnel/testing/config_error.hpp"

namespace runnel {
namespace {

using ::testing::HasSubstr;

class ConfigParse : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TempDir("config-parse"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path Write(const std::string& yaml) {
    auto file = dir_ / "runnel.yaml";
    std::ofstream(file, std::ios::binary) << yaml;
    return file;
  }
  // LoadStackConfig's message for `yaml`, with the file's path replaced by F.
  std::string Error(const std::string& yaml) {
    return testing::ConfigErrorOf(Write(yaml),
                                  [](const std::filesystem::path& f) { return LoadStackConfig(f); });
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigParse, TextAndFileGiveTheSameStack) {
  const std::string yaml = "functions:\n  - name: echo\n    topic: in\n    next: upper\n  - name: upper\n";
  const StackConfig from_file = LoadStackConfig(Write(yaml));
  const StackConfig from_text = ParseStackConfig(yaml, dir_ / "runnel.yaml");
  ASSERT_EQ(from_text.functions.size(), 2u);
  EXPECT_EQ(from_text.source, from_file.source);
  EXPECT_EQ(from_text.functions[0].topic, "in");
  EXPECT_EQ(from_text.functions[0].next, from_file.functions[0].next);
  EXPECT_EQ(from_text.functions[1].handler_dir, dir_.string());
}

TEST_F(ConfigParse, FileErrorsKeepTheirMessages) {
  try {
    (void)LoadStackConfig(dir_ / "missing.yaml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), (dir_ / "missing.yaml").string() + ": cannot read the file");
  }
  EXPECT_EQ(Error(""), "F: the file is empty");
  EXPECT_THAT(Error("functions: [\n"), HasSubstr("F:2: not valid YAML: "));
}

// Found by fuzzing: a mapping or a list as a key escaped as YAML::BadConversion, without file,
// line or key, instead of a ConfigError.
TEST_F(ConfigParse, AKeyThatIsAMappingOrAListIsAConfigError) {
  EXPECT_EQ(Error("{i}: b, topicto"), "F:1: (top level): a key must be a name, not a mapping or a list");
  EXPECT_EQ(Error("functions:\n  - name: a\n    [x, y]: 1\n"),
            "F:3: functions[0]: a key must be a name, not a mapping or a list");
  EXPECT_EQ(Error("functions:\n  - name: a\n    params:\n      ? {k: v}\n      : 1\n"),
            "F:4: functions[0].params: a key must be a name, not a mapping or a list");
}

// Found while writing the config fuzz target (an input made by hand; the fuzzer had not built one
// in 5 minutes): params nesting aliases ten to a level ("billion laughs") were copied out in full,
// 10^8 values from 377 bytes (minutes and gigabytes).
TEST_F(ConfigParse, ParamsMultipliedByAliasesAreBounded) {
  const auto laughs = [](int levels) {
    std::string yaml = "functions:\n  - name: f\n    params:\n      a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (int level = 1; level < levels; ++level) {
      const std::string prev(1, static_cast<char>('a' + level - 1)), name(1, static_cast<char>('a' + level));
      yaml += fmt::format("      {}: &{} [", name, name);
      for (int i = 0; i < 10; ++i) yaml += (i ? ", *" : "*") + prev;
      yaml += "]\n";
    }
    return yaml;
  };
  EXPECT_EQ(Error(laughs(6)),
            "F:4: functions[0].params: holds more than 100000 values (YAML aliases copied too often?)");
  const StackConfig config = LoadStackConfig(Write(laughs(4)));  // 10^4 values: a real, if odd, config
  EXPECT_EQ(config.functions[0].params["d"][9][9][9][9], "x");
}

// Found by fuzzing (CI's fuzz_smoke, a sanitizer build): params nested hundreds of levels deep
// ("[[[[...", as deep as yaml-cpp's own parser allows) overflowed the stack of the walks that
// expand ${VAR} and copy params out. Nesting is bounded, also where aliases stack one deep
// value inside another (each alone under the bound, together past it).
TEST_F(ConfigParse, NestingIsBoundedAlsoThroughAliases) {
  const auto nested = [](int levels, const std::string& inner) {
    return std::string(levels, '[') + inner + std::string(levels, ']');
  };
  EXPECT_THAT(
      Error("functions:\n  - name: f\n    params: " + nested(200, "x") + "\n"),
      ::testing::MatchesRegex("F:3: functions\\[0\\]\\.params(\\[0\\])+: nests deeper than 64 levels"));
  std::string stacked = "functions:\n  - name: f\n    params:\n      a0: &a0 " + nested(40, "x") + "\n";
  for (int i = 1; i < 4; ++i) {
    stacked += fmt::format("      a{}: &a{} {}\n", i, i, nested(40, fmt::format("*a{}", i - 1)));
  }
  EXPECT_EQ(Error(stacked), "F:4: functions[0].params: nests deeper than 64 levels");
  const StackConfig config = LoadStackConfig(
      Write("functions:\n  - name: f\n    params: {deep: " + nested(60, "x") + "}\n"));  // deep, but real
  nlohmann::json value = config.functions[0].params["deep"];
  for (int level = 0; level < 60; ++level) value = nlohmann::json(value[0]);
  EXPECT_EQ(value, "x");
}

// replication_factor: the top-level value for every function, a function's own value for its topics.
TEST_F(ConfigParse, ReplicationFactorIsTopLevelOrPerFunction) {
  const StackConfig c = LoadStackConfig(Write(
      "replication_factor: 3\nfunctions:\n  - name: echo\n  - name: upper\n    replication_factor: 2\n"));
  EXPECT_EQ(c.replication_factor, 3);
  EXPECT_EQ(c.functions.at(0).replication_factor, 3);
  EXPECT_EQ(c.functions.at(1).replication_factor, 2);
  EXPECT_FALSE(
      LoadStackConfig(Write("functions:\n  - name: echo\n")).functions.at(0).replication_factor.has_value())
      << "unset: the broker's default";
  EXPECT_EQ(Error("replication_factor: 0\nfunctions:\n  - name: echo\n"),
            "F:1: replication_factor: 0 is outside 1..32");
  EXPECT_EQ(Error("functions:\n  - name: echo\n    replication_factor: three\n"),
            "F:3: functions[0].replication_factor: 'three' is not a valid integer");
}

TEST_F(ConfigParse, ListenTakesAHostAPortOrARangePerSocketKind) {
  const StackConfig c = LoadStackConfig(
      Write("listen:\n  dispatchers: 0.0.0.0:7000-7009\n  results: '[::]:7100'\n  control: 10.1.2.3\n"
            "  metrics: 0.0.0.0:9464\nadvertise: stack.example.com\nfunctions:\n  - name: echo\n"));
  EXPECT_EQ(c.listen.dispatchers.ZmqEndpoint(0), "tcp://0.0.0.0:7000");
  EXPECT_EQ(c.listen.dispatchers.ZmqEndpoint(3), "tcp://0.0.0.0:7003");
  EXPECT_EQ(c.listen.dispatchers.Ports(), 10u);
  EXPECT_EQ(c.listen.dispatchers.line, 2);
  EXPECT_EQ(c.listen.results.ZmqEndpoint(), "tcp://[::]:7100");
  EXPECT_EQ(c.listen.control.ZmqEndpoint(), "tcp://10.1.2.3:*") << "a bare host: any free port";
  EXPECT_EQ(c.metrics_listen, "0.0.0.0:9464");
  EXPECT_EQ(c.advertise, "stack.example.com");
  const StackConfig d = LoadStackConfig(Write("functions:\n  - name: echo\n"));
  for (const auto* address : {&d.listen.dispatchers, &d.listen.results, &d.listen.control}) {
    EXPECT_EQ(address->ZmqEndpoint(), "tcp://127.0.0.1:*") << "the default is loopback, any free port";
    EXPECT_TRUE(address->IsLoopback());
  }
  EXPECT_TRUE(d.security.curve) << "CURVE is on by default";
}

TEST_F(ConfigParse, ListenRefusesWhatIsNotAnAddressOfThisHost) {
  const std::string fns = "functions:\n  - name: echo\n";
  EXPECT_EQ(
      Error("listen:\n  results: example.com:7000\n" + fns),
      "F:2: listen.results: 'example.com:7000': 'example.com' is not an IP address of this host (0.0.0.0 or "
      ":: for all of them) (HOST, HOST:PORT or HOST:LOW-HIGH)");
  EXPECT_EQ(Error("listen:\n  results: 0.0.0.0:70000\n" + fns),
            "F:2: listen.results: '0.0.0.0:70000': '70000' is not a port (0..65535) (HOST, HOST:PORT or "
            "HOST:LOW-HIGH)");
  EXPECT_EQ(
      Error("listen:\n  dispatchers: 0.0.0.0:7009-7000\n" + fns),
      "F:2: listen.dispatchers: '0.0.0.0:7009-7000': a port range is LOW-HIGH with 1 <= LOW <= HIGH (HOST, "
      "HOST:PORT or HOST:LOW-HIGH)");
  EXPECT_EQ(Error("listen:\n  results: 0.0.0.0:7000-7001\n" + fns),
            "F:2: listen.results: takes one port, not a range");
  EXPECT_EQ(
      Error("listen:\n  results: '::1:99999'\n" + fns),
      "F:2: listen.results: '::1:99999': write an IPv6 host in brackets, e.g. [::]:7000 (HOST, HOST:PORT or "
      "HOST:LOW-HIGH)");
  EXPECT_EQ(Error("listen:\n  sockets: 0.0.0.0\n" + fns),
            "F:2: listen.sockets: unknown key (known: control, dispatchers, metrics, results)");
  EXPECT_EQ(Error("metrics: 0.0.0.0:9464\nlisten:\n  metrics: 0.0.0.0:9465\n" + fns),
            "F:3: listen.metrics: is also set as the top-level metrics: set it in one place");
  EXPECT_EQ(Error("advertise: 'http://x'\n" + fns),
            "F:1: advertise: 'http://x' is not a host name or IPv4 address");
  EXPECT_EQ(Error("listen:\n  dispatchers: 0.0.0.0:7000\nfunctions:\n  - name: echo\n  - name: sleep\n"),
            "F:2: listen.dispatchers: 1 port(s) for 2 functions: give a range with a port for each, e.g. "
            "0.0.0.0:7000-7001");
}

TEST_F(ConfigParse, CurveMayBeOffOnlyWhenEveryBindIsLoopback) {
  const std::string fns = "functions:\n  - name: echo\n";
  const StackConfig off =
      LoadStackConfig(Write("security:\n  curve: false\nlisten:\n  results: 127.0.0.1:7100\n" + fns));
  EXPECT_FALSE(off.security.curve);
  EXPECT_EQ(Error("security:\n  curve: false\nlisten:\n  dispatchers: 0.0.0.0\n" + fns),
            "F:4: listen.dispatchers: binds 0.0.0.0, beyond this host, while security.curve is false (line "
            "2): CURVE "
            "may be off only when every socket binds a loopback address");
  EXPECT_EQ(
      Error("listen:\n  control: '::'\nsecurity: {curve: false}\n" + fns),
      "F:2: listen.control: binds ::, beyond this host, while security.curve is false (line 3): CURVE may be "
      "off only when every socket binds a loopback address");
  EXPECT_EQ(Error("security:\n  curve: maybe\n" + fns),
            "F:2: security.curve: 'maybe' is not a valid boolean");
  EXPECT_EQ(Error("security:\n  keys: x\n" + fns), "F:2: security.keys: unknown key (known: clients, curve)");
  // The metrics endpoint is HTTP, not a CURVE socket: it may serve beyond loopback either way.
  EXPECT_EQ(Error("security:\n  curve: false\nmetrics: 0.0.0.0:9464\n" + fns), "(no error)");
}

TEST_F(ConfigParse, OutputsTakeAnHttpUrlHeadersAndATimeout) {
  const StackConfig c =
      LoadStackConfig(Write("outputs:\n  url: https://store.example.com:9000/bucket/runnel/\n  headers:\n"
                            "    Authorization: Bearer s3cr3t\n    x-amz-acl: private\n  timeout: "
                            "5s\nfunctions:\n  - name: echo\n"));
  ASSERT_TRUE(c.outputs);
  EXPECT_EQ(c.outputs->url, "https://store.example.com:9000/bucket/runnel") << "the trailing / is dropped";
  ASSERT_EQ(c.outputs->headers.size(), 2u);
  EXPECT_EQ(c.outputs->headers[0].first, "Authorization");
  EXPECT_EQ(c.outputs->headers[0].second.Reveal(), "Bearer s3cr3t");
  EXPECT_EQ(fmt::format("{}", c.outputs->headers[0].second), "***") << "header values are secrets";
  EXPECT_EQ(c.outputs->headers[1].first, "x-amz-acl");
  EXPECT_EQ(c.outputs->timeout, std::chrono::seconds(5));
  const StackConfig d =
      LoadStackConfig(Write("outputs: {url: \"http://127.0.0.1:8080\"}\nfunctions:\n  - name: echo\n"));
  ASSERT_TRUE(d.outputs);
  EXPECT_EQ(d.outputs->timeout, std::chrono::seconds(30)) << "the default timeout";
  EXPECT_TRUE(d.outputs->headers.empty());
  EXPECT_FALSE(LoadStackConfig(Write("functions:\n  - name: echo\n")).outputs) << "no outputs: output_dir";
}

TEST_F(ConfigParse, OutputsRefuseWhatCannotBePutTo) {
  const std::string fns = "functions:\n  - name: echo\n";
  EXPECT_EQ(Error("outputs:\n  url: ftp://store/b\n" + fns),
            "F:2: outputs.url: 'ftp://store/b' is not an http:// or https:// URL");
  EXPECT_EQ(Error("outputs:\n  url: HTTP://store/b\n" + fns),
            "F:2: outputs.url: 'HTTP://store/b' is not an http:// or https:// URL");
  EXPECT_EQ(Error("outputs:\n  headers: {a: b}\n" + fns),
            "F:2: outputs.url: is required (the base URL each output file is PUT under)");
  EXPECT_EQ(Error("outputs: http://store/b\n" + fns),
            "F:1: outputs: must be a mapping like {url: \"http://store:9000/bucket/runnel\", headers: {...}, "
            "timeout: 30s}");
  EXPECT_EQ(Error("outputs:\n  url: http://store/b\n  retries: 3\n" + fns),
            "F:3: outputs.retries: unknown key (known: headers, timeout, url)");
  EXPECT_EQ(
      Error("outputs:\n  url: http://store/b?sig=s3cr3t\n" + fns),
      "F:2: outputs.url: URL 'http://store/b' has a query: each file is PUT to "
      "<url>/<function>/<event id>/<name>, so give a URL without one (credentials go in outputs.headers)");
  EXPECT_EQ(
      Error("outputs:\n  url: http://user:pw@store/b\n" + fns),
      "F:2: outputs.url: URL 'http://store/b' has userinfo (user:password@ before the host), which is not "
      "allowed");
  EXPECT_EQ(Error("outputs:\n  url: http://store:99999/b\n" + fns),
            "F:2: outputs.url: URL 'http://store:99999/b' has a port outside 1..65535");
  EXPECT_EQ(Error("outputs:\n  url: http:///b\n" + fns), "F:2: outputs.url: URL 'http:///b' has no host");
  EXPECT_EQ(Error("outputs:\n  url: http://store/b\n  timeout: 30\n" + fns),
            "F:3: outputs.timeout: '30' has no unit: durations need one, write \"30s\" or \"30ms\"");
  EXPECT_EQ(Error("outputs:\n  url: http://store/b\n  timeout: 2h\n" + fns),
            "F:3: outputs.timeout: must be between 100ms and 1h");
  EXPECT_EQ(Error("outputs:\n  url: http://store/b\n  headers: [a]\n" + fns),
            "F:3: outputs.headers: must be a mapping of HTTP header names to values");
  EXPECT_EQ(
      Error("outputs:\n  url: http://store/b\n  headers:\n    Content-Length: '5'\n" + fns),
      "F:4: outputs.headers.Content-Length: header Content-Length is set by Runnel, not by outputs.headers");
  EXPECT_EQ(
      Error("outputs:\n  url: http://store/b\n  headers:\n    'bad name': x\n" + fns),
      "F:4: outputs.headers.bad name: header name 'bad name' is not an HTTP field name (1..128 of letters, "
      "digits and !#$%&'*+-.^_`|~)");
  EXPECT_EQ(
      Error("outputs:\n  url: http://store/b\n  headers:\n    Authorization: \"Bearer s3cr3t\\r\\nX: y\"\n" +
            fns),
      "F:4: outputs.headers.Authorization: header Authorization: its value has a control character (CR, "
      "LF...) or a non-ASCII byte, which is not allowed")
      << "the value, maybe a credential, is not shown";
  EXPECT_EQ(Error("outputs:\n  url: http://store/b\n  headers:\n    X-A: 1\n    x-a: 2\n" + fns),
            "F:5: outputs.headers.x-a: repeats header X-A");
}

}  // namespace
}  // namespace runnel
