#include "runnel/core/envelope.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace runnel {
namespace {

using ::testing::HasSubstr;

Envelope Full() {
  Envelope env;
  env.id = "01J9Z3F6ABCDEFGHJKMNPQRSTV";
  env.content_type = "image/jpeg";
  env.attempt = 3;
  env.hop = 2;
  env.reply_to = "invoke.7f3a";
  env.deadline_ms = 1'790'000'000'000;
  env.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  env.file = FileRef{"/data/uploads/holiday photo (1).jpg", 123456, "holiday photo (1).jpg"};
  env.job_id = "nightly-2026-11-22";
  env.extra = {{"x-tenant", "acme"}, {"x-bin", std::string("\0\xff", 2)}, {"x-tenant", "second"}};
  return env;
}

TEST(Envelope, RoundTripsEveryField) {
  const Envelope env = Full();
  EXPECT_EQ(Envelope::Decode(env.Encode()), env);
}

TEST(Envelope, DefaultsEncodeToNoHeaders) {
  EXPECT_TRUE(Envelope{}.Encode().empty());
  const Envelope decoded = Envelope::Decode({});
  EXPECT_EQ(decoded.attempt, 1);
  EXPECT_EQ(decoded.hop, 0);
  EXPECT_FALSE(decoded.file.has_value());
}

TEST(Envelope, KeepsForeignHeadersInOrder) {
  const Headers in = {{"a", "1"}, {"runnel-hop", "4"}, {"b", "2"}, {"a", "3"}};
  const Envelope env = Envelope::Decode(in);
  EXPECT_EQ(env.hop, 4);
  EXPECT_EQ(env.extra, (Headers{{"a", "1"}, {"b", "2"}, {"a", "3"}}));
}

TEST(Envelope, FileUriEscapesAndDecodes) {
  EXPECT_EQ(FileUriFromPath("/a b/c%d/é.jpg"), "file:///a%20b/c%25d/%C3%A9.jpg");
  EXPECT_EQ(PathFromFileUri("file:///a%20b/c%25d/%C3%A9.jpg"), "/a b/c%d/é.jpg");
  EXPECT_EQ(PathFromFileUri("file://localhost/tmp/x"), "/tmp/x");
}

struct BadCase {
  Headers headers;
  std::string message;
};

class MalformedHeaders : public ::testing::TestWithParam<BadCase> {};

TEST_P(MalformedHeaders, AreRejectedWithAPreciseMessage) {
  try {
    Envelope::Decode(GetParam().headers);
    FAIL() << "decoded without error";
  } catch (const EnvelopeError& e) {
    EXPECT_THAT(e.what(), HasSubstr(GetParam().message));
    EXPECT_FALSE(e.Retriable());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Envelope, MalformedHeaders,
    ::testing::Values(
        BadCase{{{"runnel-id", ""}}, "header 'runnel-id': is empty"},
        BadCase{{{"runnel-id", "a b"}}, "outside [A-Za-z0-9._:-]"},
        BadCase{{{"runnel-id", std::string(129, 'a')}}, "more than the limit of 128"},
        BadCase{{{"runnel-id", "a"}, {"runnel-id", "b"}}, "'runnel-id': appears more than once"},
        BadCase{{{"content-type", "jpeg"}}, "is not a MIME type"},
        BadCase{{{"content-type", "text/plain\n"}}, "not printable ASCII"},
        BadCase{{{"runnel-attempt", "0"}}, "0 is outside 1..1000"},
        BadCase{{{"runnel-attempt", "-1"}}, "is not a decimal integer"},
        BadCase{{{"runnel-attempt", "+2"}}, "is not a decimal integer"},
        BadCase{{{"runnel-hop", "3x"}}, "'runnel-hop': '3x' is not a decimal integer"},
        BadCase{{{"runnel-hop", "1001"}}, "outside 0..1000"},
        BadCase{{{"runnel-deadline-ms", "99999999999999999999"}}, "is not a decimal integer"},
        BadCase{{{"runnel-trace", "abc"}}, "is not 32 hex digits"},
        BadCase{{{"runnel-trace", "4BF92F3577B34DA6A3CE929D0E0E4736"}}, "is not lowercase hex"},
        BadCase{{{"runnel-trace", std::string(32, '0')}}, "is all zeros"},
        BadCase{{{"runnel-file", "ftp://x/y"}}, "is not a file://, http:// or https:// URI"},
        BadCase{{{"runnel-file", "file://host/y"}}, "only local absolute paths"},
        BadCase{{{"runnel-file", "file:///a/../etc/passwd"}}, "'..' segment"},
        BadCase{{{"runnel-file", "file:///a%2"}}, "bad percent escape"},
        BadCase{{{"runnel-file", "file:///a%00b"}}, "NUL byte"},
        BadCase{{{"runnel-file", "file:///tmp/"}}, "names a directory"},
        BadCase{{{"runnel-file-size", "10"}}, "is set without 'runnel-file'"},
        BadCase{{{"runnel-file", "file:///x"}, {"runnel-file-name", "../y"}}, "is not a plain file name"},
        BadCase{{{"runnel-job", "a/b"}}, "outside [A-Za-z0-9._:-]"}));

TEST(Envelope, HttpAndHttpsReferencesDecodeAsUrls) {
  const std::string presigned =
      "https://bucket.s3.eu-west-1.amazonaws.com/up/cat%20(1).jpg?X-Amz-Expires=600&X-Amz-Signature=0a1b";
  const Envelope env = Envelope::Decode({{"runnel-file", presigned}, {"runnel-file-name", "cat (1).jpg"}});
  ASSERT_TRUE(env.file.has_value());
  EXPECT_TRUE(env.file->IsUrl());
  EXPECT_EQ(env.file->url, presigned);  // kept as sent: the signature is part of it
  EXPECT_EQ(env.file->path, "");
  EXPECT_EQ(env.file->name, "cat (1).jpg");
  EXPECT_EQ(Envelope::Decode(env.Encode()), env);

  for (const std::string url : {"http://127.0.0.1:8080/x.jpg", "http://localhost", "https://[::1]:443/a?b=c",
                                "https://my-host.example_1.org/a/b/"}) {
    const Envelope decoded = Envelope::Decode({{"runnel-file", url}});
    ASSERT_TRUE(decoded.file.has_value()) << url;
    EXPECT_EQ(decoded.file->url, url);
  }
  // file:// references are unchanged: a path, no URL.
  const Envelope local = Envelope::Decode({{"runnel-file", "file:///tmp/x"}});
  EXPECT_FALSE(local.file->IsUrl());
  EXPECT_EQ(local.file->path, "/tmp/x");
}

TEST(Envelope, UrlForLogsDropsTheQueryAndUserinfo) {
  EXPECT_EQ(UrlForLogs("https://b.example/k/x.jpg?X-Amz-Signature=secret"), "https://b.example/k/x.jpg");
  EXPECT_EQ(UrlForLogs("http://u:secret@h:81/p#frag"), "http://h:81/p");
  EXPECT_EQ(UrlForLogs("http://h?q=secret"), "http://h/");
  EXPECT_EQ(UrlForLogs("http://h/a\nb"), "http://h/a?b");
  EXPECT_EQ(UrlForLogs("a#b://c"), "(not an http(s) URL)");
}

struct BadUrl {
  std::string url;
  std::string message;  // the whole message
};

class MalformedUrls : public ::testing::TestWithParam<BadUrl> {};

TEST_P(MalformedUrls, AreRejectedWithThisExactMessage) {
  try {
    Envelope::Decode({{"runnel-file", GetParam().url}});
    FAIL() << "decoded without error";
  } catch (const EnvelopeError& e) {
    EXPECT_EQ(std::string(e.what()), GetParam().message);
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("secret")));  // neither the query nor the userinfo
    EXPECT_FALSE(e.Retriable());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Envelope, MalformedUrls,
    ::testing::Values(
        BadUrl{"ftp://h/x", "header 'runnel-file': 'ftp://...' is not a file://, http:// or https:// URI"},
        BadUrl{"HTTPS://u:secret@h/x",
               "header 'runnel-file': 'HTTPS://...' is not a file://, http:// or https:// URI"},
        BadUrl{"/tmp/x", "header 'runnel-file': '/tmp/x' is not a file://, http:// or https:// URI"},
        BadUrl{
            "https://user:secret@h/x",
            "header 'runnel-file': URL 'https://h/x' has userinfo (user:password@ before the host), which is "
            "not allowed"},
        BadUrl{
            "https://secret@h/x",
            "header 'runnel-file': URL 'https://h/x' has userinfo (user:password@ before the host), which is "
            "not allowed"},
        BadUrl{"http://h/a\nb?k=secret",
               "header 'runnel-file': URL 'http://h/a?b' has a control character, space or non-ASCII byte "
               "(percent-encode it)"},
        BadUrl{"http://h/a b",
               "header 'runnel-file': URL 'http://h/a?b' has a control character, space or "
               "non-ASCII byte (percent-encode it)"},
        BadUrl{"http://h/\xc3\xa9",
               "header 'runnel-file': URL 'http://h/?\?' has a control character, space or "
               "non-ASCII byte (percent-encode it)"},
        BadUrl{std::string("http://h/a\0b", 12),
               "header 'runnel-file': URL 'http://h/a?b' has a control character, space or non-ASCII byte "
               "(percent-encode it)"},
        BadUrl{"http:///x", "header 'runnel-file': URL 'http:///x' has no host"},
        BadUrl{"http://:80/x", "header 'runnel-file': URL 'http://:80/x' has no host"},
        BadUrl{"http://h:/x", "header 'runnel-file': URL 'http://h:/x' has an empty port"},
        BadUrl{"http://h:0/x", "header 'runnel-file': URL 'http://h:0/x' has a port outside 1..65535"},
        BadUrl{"http://h:65536/x",
               "header 'runnel-file': URL 'http://h:65536/x' has a port outside 1..65535"},
        BadUrl{"http://h:8a/x", "header 'runnel-file': URL 'http://h:8a/x' has a port outside 1..65535"},
        BadUrl{"http://[::1/x", "header 'runnel-file': URL 'http://[::1/x' has a bad IPv6 host"},
        BadUrl{"http://[::g]/x", "header 'runnel-file': URL 'http://[::g]/x' has a bad IPv6 host"},
        BadUrl{"http://h$x/a",
               "header 'runnel-file': URL 'http://h$x/a' has a character outside [A-Za-z0-9._-] "
               "in its host"},
        BadUrl{"http://h/a#f",
               "header 'runnel-file': URL 'http://h/a' has a fragment ('#'), which is never "
               "sent to the server"},
        BadUrl{"http://h/a%2g?k=secret",
               "header 'runnel-file': URL 'http://h/a%2g' has a bad percent escape"},
        BadUrl{"http://h/a?k=secret%", "header 'runnel-file': URL 'http://h/a' has a bad percent escape"},
        BadUrl{"http://h/" + std::string(4088, 'a'), "header 'runnel-file': is longer than 4096 bytes"}));

TEST(EventId, IsTimeOrderedAndUnique) {
  std::set<std::string> ids;
  std::string previous;
  for (int i = 0; i < 10000; ++i) {
    std::string id = NewEventId();
    ASSERT_EQ(id.size(), 26u);
    // Same millisecond ids may come out of order; across a millisecond the prefix (time) orders them.
    EXPECT_LE(previous.substr(0, 10), id.substr(0, 10));
    previous = id;
    ids.insert(std::move(id));
  }
  EXPECT_EQ(ids.size(), 10000u);
  EXPECT_NO_THROW(Envelope::Decode({{"runnel-id", NewEventId()}, {"runnel-trace", NewTraceId()}}));
}

}  // namespace
}  // namespace runnel
