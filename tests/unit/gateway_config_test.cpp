// runnel.yaml's `gateway:` (docs/config.md#gateway): defaults, every key read, and each refusal
// with its line and key.
#include <gmock/gmock.h>

#include <filesystem>

#include "runnel/core/config.hpp"
#include "runnel/core/error.hpp"

namespace runnel {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::filesystem::path kFile = "/etc/runnel/runnel.yaml";

constexpr const char* kFunctions = "functions:\n  - name: echo\n  - name: sleep\n";

StackConfig Parse(const std::string& gateway) {
  return ParseStackConfig(std::string(kFunctions) + gateway, kFile);
}

std::string Error(const std::string& gateway) {
  try {
    (void)Parse(gateway);
  } catch (const ConfigError& e) {
    std::string m = e.what();
    if (m.rfind(kFile.string(), 0) == 0) m = "F" + m.substr(kFile.string().size());
    return m;
  }
  return "(no error)";
}

TEST(GatewayConfig, OnByDefaultOnLoopbackWithAFreePort) {
  const auto g = Parse("").gateway;
  EXPECT_TRUE(g.enabled);
  EXPECT_EQ(g.listen.host, "127.0.0.1");
  EXPECT_EQ(g.listen.port_low, 0);
  EXPECT_EQ(g.max_concurrent, 64);
  EXPECT_EQ(g.max_body, std::size_t{8} << 30);
  EXPECT_EQ(g.timeout, std::chrono::seconds(30));
  EXPECT_EQ(g.max_timeout, std::chrono::minutes(5));
  EXPECT_EQ(g.read_timeout, std::chrono::seconds(30));
  EXPECT_EQ(g.upload_dir, "");
  EXPECT_TRUE(g.tokens.empty());
}

TEST(GatewayConfig, EveryKeyIsRead) {
  const auto g = Parse(R"(gateway:
  enabled: true
  listen: 0.0.0.0:8080
  max_concurrent: 8
  max_body: 1048576
  timeout: 5s
  max_timeout: 1m
  read_timeout: 2s
  upload_dir: up
  tokens:
    - token: abcdefghijklmnop
      functions: [sleep]
)")
                     .gateway;
  EXPECT_EQ(g.listen.HostPort(), "0.0.0.0:8080");
  EXPECT_EQ(g.max_concurrent, 8);
  EXPECT_EQ(g.max_body, 1048576u);
  EXPECT_EQ(g.timeout, std::chrono::seconds(5));
  EXPECT_EQ(g.max_timeout, std::chrono::minutes(1));
  EXPECT_EQ(g.read_timeout, std::chrono::seconds(2));
  EXPECT_EQ(g.upload_dir, "/etc/runnel/up");
  ASSERT_EQ(g.tokens.size(), 1u);
  EXPECT_EQ(g.tokens[0].token.Reveal(), "abcdefghijklmnop");
  EXPECT_EQ(g.tokens[0].functions, std::vector<std::string>{"sleep"});
  EXPECT_FALSE(Parse("gateway: {enabled: false}\n").gateway.enabled);
  // A max_timeout below the default timeout lowers it.
  EXPECT_EQ(Parse("gateway: {max_timeout: 10s}\n").gateway.timeout, std::chrono::seconds(10));
}

TEST(GatewayConfig, EachRefusalNamesItsLineAndKey) {
  EXPECT_EQ(
      Error("gateway: {colour: blue}\n"),
      "F:4: gateway.colour: unknown key (known: enabled, listen, max_body, max_concurrent, max_timeout, "
      "read_timeout, timeout, tokens, upload_dir)");
  EXPECT_EQ(Error("gateway: 3\n"), "F:4: gateway: must be a mapping");
  EXPECT_EQ(Error("gateway: {enabled: yes}\n"), "F:4: gateway.enabled: 'yes' is not a valid boolean");
  EXPECT_EQ(Error("gateway: {max_concurrent: 0}\n"), "F:4: gateway.max_concurrent: 0 is outside 1..10000");
  EXPECT_EQ(Error("gateway: {max_concurrent: lots}\n"),
            "F:4: gateway.max_concurrent: 'lots' is not a valid integer");
  EXPECT_EQ(Error("gateway: {max_body: 0}\n"), "F:4: gateway.max_body: 0 is outside 1..4398046511104");
  EXPECT_THAT(Error("gateway: {timeout: 10}\n"), HasSubstr("F:4: gateway.timeout: '10' has no unit"));
  EXPECT_EQ(Error("gateway: {timeout: 2h}\n"), "F:4: gateway.timeout: must be within 1ms..1h");
  EXPECT_EQ(Error("gateway: {timeout: 2m, max_timeout: 1m}\n"),
            "F:4: gateway.timeout: 120000 ms is above gateway.max_timeout (60000 ms)");
  EXPECT_EQ(Error("gateway: {read_timeout: 10ms}\n"), "F:4: gateway.read_timeout: must be within 100ms..1h");
  EXPECT_THAT(Error("gateway: {listen: 'localhost:99999'}\n"), HasSubstr("F:4: gateway.listen: "));
  EXPECT_EQ(Error("gateway: {listen: '127.0.0.1:8000-8010'}\n"),
            "F:4: gateway.listen: takes one port, not a range");
  EXPECT_EQ(Error("gateway: {upload_dir: ''}\n"), "F:4: gateway.upload_dir: must not be empty");
  EXPECT_EQ(Error("gateway: {tokens: abc}\n"), "F:4: gateway.tokens: must be a list of {token, functions}");
  EXPECT_EQ(Error("gateway:\n  tokens:\n    - {token: short, functions: [echo]}\n"),
            "F:6: gateway.tokens[0].token: is shorter than 16 characters");
  EXPECT_EQ(Error("gateway:\n  tokens:\n    - {token: abcdefghijklmnop}\n"),
            "F:6: gateway.tokens[0].functions: must be a non-empty list of the stack's functions");
  EXPECT_EQ(Error("gateway:\n  tokens:\n    - {token: abcdefghijklmnop, functions: [nope]}\n"),
            "F:6: gateway.tokens[0].functions[0]: 'nope' is not a function of this stack");
  EXPECT_EQ(Error("gateway:\n  tokens:\n    - {token: abcdefghijklmnop, functions: [echo], extra: 1}\n"),
            "F:6: gateway.tokens[0].extra: unknown key (known: functions, token)");
  EXPECT_EQ(Error("gateway:\n  tokens:\n    - {token: abcdefghijklmnop, functions: [echo]}\n"
                  "    - {token: abcdefghijklmnop, functions: [sleep]}\n"),
            "F:7: gateway.tokens[1].token: repeats gateway.tokens[0]");
}

TEST(GatewayConfig, ATokenNeverAppearsInAnError) {
  const std::string e =
      Error("gateway:\n  tokens:\n    - {token: \"secret with space\", functions: [echo]}\n");
  EXPECT_THAT(e, HasSubstr("may hold only printable ASCII"));
  EXPECT_THAT(e, Not(HasSubstr("secret with space")));
}

}  // namespace
}  // namespace runnel
