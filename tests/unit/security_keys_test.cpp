// The stack's key files (security/key_files.hpp) and CURVE key checks: created once and kept,
// private, refused when readable by others or when the halves do not match; security.clients read
// like authorized_keys, with file:line for a line that is not a key.
#include <gmock/gmock.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "runnel/core/error.hpp"
#include "runnel/security/curve.hpp"
#include "runnel/security/key_files.hpp"
#include "runnel/security/tokens.hpp"
#include "runnel/testing/child_process.hpp"

namespace runnel::security {
namespace {

using ::testing::HasSubstr;

class KeyFiles : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TempDir("key-files"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string ErrorOf(const std::function<void()>& f) {
    try {
      f();
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }
  std::filesystem::path dir_;
};

TEST(CurveKeys, APairIsTwoZ85KeysAndThePublicHalfFollowsFromTheSecret) {
  const KeyPair pair = NewKeyPair();
  EXPECT_TRUE(IsKey(pair.public_key));
  EXPECT_TRUE(IsKey(pair.secret_key.Reveal()));
  EXPECT_NE(pair.public_key, pair.secret_key.Reveal());
  EXPECT_EQ(PublicKeyOf(pair.secret_key, "test"), pair.public_key);
  EXPECT_FALSE(IsKey(pair.public_key.substr(1)));
  EXPECT_FALSE(IsKey(std::string(39, 'a') + "\""));  // '"' is not in the Z85 alphabet
  EXPECT_THROW((void)PublicKeyOf(Secret("short"), "test"), ConfigError);
  EXPECT_EQ(fmt::format("{}", pair.secret_key), "***") << "a secret key never prints";
}

TEST_F(KeyFiles, CreatedOnTheFirstStartAndKeptAfterItPrivate) {
  const StackKeys first = LoadOrCreateStackKeys(dir_);
  const StackKeys again = LoadOrCreateStackKeys(dir_);
  EXPECT_EQ(first.server, again.server);
  EXPECT_EQ(first.local, again.local);
  EXPECT_NE(first.server.public_key, first.local.public_key);
  struct stat st {};
  ASSERT_EQ(::stat(KeyDir(dir_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const char* file : {"server.pub", "server.secret", "local.pub", "local.secret"}) {
    ASSERT_EQ(::stat((KeyDir(dir_) / file).c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << file;
  }
  const ClientKeys local = LoadLocalClientKeys(KeyDir(dir_));
  EXPECT_EQ(local.server_key, first.server.public_key);
  EXPECT_EQ(local.own, first.local);
  // A lost public half is written again from its secret.
  std::filesystem::remove(KeyDir(dir_) / "server.pub");
  EXPECT_EQ(LoadOrCreateStackKeys(dir_).server, first.server);
}

TEST_F(KeyFiles, ASecretReadableByOthersOrHalvesThatDoNotMatchAreRefused) {
  (void)LoadOrCreateStackKeys(dir_);
  const auto secret = KeyDir(dir_) / "server.secret";
  std::filesystem::permissions(secret, std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  EXPECT_EQ(ErrorOf([&] { (void)LoadOrCreateStackKeys(dir_); }),
            secret.string() + ": a secret key readable by others (mode 604): chmod 600 it");
  std::filesystem::permissions(secret, std::filesystem::perms::others_read,
                               std::filesystem::perm_options::remove);
  std::ofstream(KeyDir(dir_) / "server.pub") << NewKeyPair().public_key << "\n";
  EXPECT_THAT(ErrorOf([&] { (void)LoadOrCreateStackKeys(dir_); }),
              HasSubstr("server.pub: does not hold the public key of"));
  std::ofstream(secret) << "not a key\n";
  EXPECT_EQ(ErrorOf([&] { (void)LoadOrCreateStackKeys(dir_); }),
            secret.string() + ": not a CURVE secret key (40 characters of Z85 text)");
}

TEST_F(KeyFiles, ALocalClientWithoutTheKeysIsToldWhy) {
  EXPECT_THAT(ErrorOf([&] { (void)LoadLocalClientKeys(dir_); }),
              HasSubstr("server.pub: no such key: has a stack with CURVE started in this state dir?"));
  // endpoints.json of a stack with CURVE off: no keys wanted.
  EXPECT_FALSE(LocalClientKeysFor(dir_, {{"curve", false}}));
  EXPECT_FALSE(LocalClientKeysFor(dir_, nlohmann::json::object()));
}

TEST_F(KeyFiles, ClientKeysAreReadLikeAuthorizedKeys) {
  const KeyPair a = NewKeyPair();
  const KeyPair b = NewKeyPair();
  std::ofstream(dir_ / "team.pub") << "# the team\n\n"
                                   << a.public_key << " alice@laptop\r\n  " << b.public_key << "\n";
  std::ofstream(dir_ / ".hidden") << "not read\n";
  const auto keys = ReadAuthorizedKeys(dir_);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].public_key, a.public_key);
  EXPECT_EQ(keys[0].name, "team.pub:3");
  EXPECT_EQ(keys[1].public_key, b.public_key);
  EXPECT_EQ(keys[1].name, "team.pub:4");
  std::ofstream(dir_ / "bad.pub") << "ssh-ed25519 AAAA\n";
  EXPECT_EQ(ErrorOf([&] { (void)ReadAuthorizedKeys(dir_); }),
            (dir_ / "bad.pub").string() + ":1: not a CURVE public key (40 characters of Z85 text)");
  EXPECT_THAT(ErrorOf([&] { (void)ReadAuthorizedKeys(dir_ / "missing"); }),
              HasSubstr("cannot read the client keys"));
}

TEST(JoinTokens, ARecordAdmitsItsSocketsUntilItIsRevokedOrExpires) {
  TokenRecord r;
  r.functions = {"echo"};
  r.expires_ms = 1000;
  EXPECT_TRUE(r.Admits("dispatcher/echo", 999));
  EXPECT_TRUE(r.Admits("results", 999));
  EXPECT_TRUE(r.Admits("control", 999)) << "status, trace and outcome";
  EXPECT_FALSE(r.Admits("dispatcher/sleep", 999)) << "another function's dispatcher";
  EXPECT_FALSE(r.Admits("jobs", 999)) << "a token for some functions runs no jobs";
  EXPECT_FALSE(r.Admits("dispatcher/echo", 1000)) << "expired";
  r.functions.clear();
  EXPECT_TRUE(r.Admits("jobs", 999)) << "a token for every function reaches job control";
  r.expires_ms = 0;
  EXPECT_TRUE(r.Admits("dispatcher/any", 1'000'000'000'000)) << "no expiry";
  r.revoked = true;
  EXPECT_FALSE(r.Admits("control", 0));
}

TEST_F(KeyFiles, ATokenIsCreatedListedReadBackAndRevoked) {
  const nlohmann::json endpoints = {
      {"curve", true},
      {"server_key", NewKeyPair().public_key},
      {"pid", 42},
      {"results", "tcp://10.0.0.5:7410"},
      {"control", "tcp://10.0.0.5:7420"},
      {"dispatchers", {{"echo", "tcp://10.0.0.5:7400"}, {"sleep", "tcp://10.0.0.5:7401"}}}};
  TokenStore store(dir_);
  const JoinToken token = store.Create({"echo"}, std::chrono::hours(1), endpoints);
  EXPECT_EQ(token.endpoints.at("dispatchers"), nlohmann::json({{"echo", "tcp://10.0.0.5:7400"}}))
      << "only the dispatchers of its functions";
  EXPECT_EQ(token.endpoints.at("control"), "tcp://10.0.0.5:7420") << "status, trace, outcome";
  EXPECT_FALSE(token.endpoints.contains("pid"));
  const auto file = dir_ / "echo.token";
  WritePrivateFile(file, EncodeJoinToken(token));
  const JoinToken back = ReadJoinToken(file);
  EXPECT_EQ(back.keys, token.keys);
  EXPECT_EQ(back.record.id, token.record.id);
  EXPECT_EQ(back.endpoints, token.endpoints);
  // The stack's record holds no secret.
  std::ifstream record(store.Dir() / (token.record.id + ".json"));
  const std::string text{std::istreambuf_iterator<char>(record), std::istreambuf_iterator<char>()};
  EXPECT_THAT(text, ::testing::Not(HasSubstr(token.keys.own.secret_key.Reveal())));
  ASSERT_EQ(store.List().size(), 1u);
  EXPECT_FALSE(store.List()[0].revoked);
  EXPECT_TRUE(store.Revoke(token.record.id));
  EXPECT_TRUE(store.List()[0].revoked);
  EXPECT_FALSE(store.Revoke("0123456789abcdef")) << "no such token";
  EXPECT_FALSE(store.Revoke("../../etc/passwd")) << "not a token id";
  EXPECT_THAT(ErrorOf([&] { (void)store.Create({"nosuch"}, {}, endpoints); }),
              HasSubstr("the stack serves no function 'nosuch' (it serves echo, sleep)"));
  EXPECT_THAT(ErrorOf([&] {
                (void)store.Create({}, {}, {{"curve", false}});
              }),
              HasSubstr("does not use CURVE"));
}

TEST_F(KeyFiles, ABadOrExpiredTokenFileIsRefusedWithTheReason) {
  const auto file = dir_ / "t.token";
  WritePrivateFile(file, "{}");
  EXPECT_THAT(ErrorOf([&] { (void)ReadJoinToken(file); }), HasSubstr("not a Runnel join token"));
  WritePrivateFile(file, "not json");
  EXPECT_THAT(ErrorOf([&] { (void)ReadJoinToken(file); }), HasSubstr("not a Runnel join token"));
  const nlohmann::json endpoints = {
      {"curve", true}, {"server_key", NewKeyPair().public_key}, {"dispatchers", {{"echo", "tcp://x:1"}}}};
  JoinToken token = TokenStore(dir_).Create({}, std::chrono::milliseconds(1), endpoints);
  token.record.expires_ms = NowMs() - 1;
  WritePrivateFile(file, EncodeJoinToken(token));
  EXPECT_THAT(ErrorOf([&] { (void)ReadJoinToken(file); }), HasSubstr("expired"));
  token.record.expires_ms = 0;
  token.keys.own.secret_key = NewKeyPair().secret_key;
  WritePrivateFile(file, EncodeJoinToken(token));
  EXPECT_THAT(ErrorOf([&] { (void)ReadJoinToken(file); }), HasSubstr("does not match its public key"));
}

}  // namespace
}  // namespace runnel::security
