// video.thumbnails and video.probe on short clips written by the tests with cv::VideoWriter.
#include <cstdlib>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "media_fixture.hpp"
#include "test_http_server.hpp"

namespace runnel::functions::testing {
namespace {

using Json = nlohmann::json;

// 10 s at 10 fps, 160x120, Motion-JPEG in AVI: every frame a keyframe, quick to write.
class MediaVideoFunctions : public MediaTest {
 protected:
  void SetUp() override {
    MediaTest::SetUp();
    clip_ = (Dir() / "clip.avi").string();
    ASSERT_TRUE(WriteVideo(clip_, "MJPG", 10, 100, {160, 120}));
  }
  std::string clip_;
};

TEST_F(MediaVideoFunctions, ProbeReportsTheStream) {
  Run("video.probe", Json::object(), FileEvent(clip_));
  EXPECT_EQ(output_["container"], "avi");
  EXPECT_EQ(output_["codec"], "MJPG");
  EXPECT_EQ(output_["width"], 160);
  EXPECT_EQ(output_["height"], 120);
  EXPECT_DOUBLE_EQ(output_["fps"].get<double>(), 10.0);
  EXPECT_EQ(output_["frame_count"], 100);
  EXPECT_DOUBLE_EQ(output_["duration"].get<double>(), 10.0);
  EXPECT_EQ(output_["bytes"], std::filesystem::file_size(clip_));
}

TEST_F(MediaVideoFunctions, ProbeReadsH264InMp4) {
  const auto path = (Dir() / "clip.mp4").string();
  if (!WriteVideo(path, "avc1", 25, 50, {320, 240}))
    GTEST_SKIP() << "this OpenCV/FFmpeg cannot write H.264 (avc1)";
  Run("video.probe", Json::object(), FileEvent(path));
  EXPECT_EQ(output_["container"], "mp4");
  EXPECT_EQ(output_["codec"], "avc1");
  EXPECT_EQ(output_["frame_count"], 50);
  EXPECT_DOUBLE_EQ(output_["duration"].get<double>(), 2.0);
}

TEST_F(MediaVideoFunctions, EverySecondWithContactSheet) {
  const Result result = Run("video.thumbnails", Json::object(), FileEvent(clip_));
  ASSERT_EQ(output_["frames"].size(), 10u);
  for (int i = 0; i < 10; ++i) {
    const auto& frame = output_["frames"][i];
    EXPECT_EQ(frame["index"], i * 10);
    EXPECT_NEAR(frame["time"].get<double>(), i, 0.01);
    EXPECT_EQ(frame["width"], 160);  // narrower than the default 320: never upscaled
    EXPECT_THAT(frame["path"].get<std::string>(),
                ::testing::EndsWith(fmt::format("/frame_{:04}.jpg", i + 1)));
    EXPECT_EQ(Decode(ReadFile(frame["path"])).size(), cv::Size(160, 120));
  }
  const auto& sheet = output_["contact_sheet"];
  EXPECT_EQ(sheet["columns"], 4);
  EXPECT_EQ(sheet["rows"], 3);
  EXPECT_EQ(Decode(ReadFile(sheet["path"])).size(), cv::Size(4 * 164 + 4, 3 * 124 + 4));
  EXPECT_EQ(result.files.size(), 11u);
  EXPECT_EQ(output_["frames_decoded"], 100);
  EXPECT_EQ(output_["truncated"], false);
  EXPECT_EQ(output_["source"]["frame_count"], 100);
}

// The frames are decoded and scaled by our own FFmpeg pipeline, not cv::VideoCapture: the pixels
// must still be the frame OpenCV decodes, shrunk the way image.thumbnail shrinks (INTER_AREA).
TEST_F(MediaVideoFunctions, ThumbnailsShowTheSameFrameOpenCvDecodes) {
  Run("video.thumbnails", {{"count", 2}, {"width", 80}, {"contact_sheet", false}}, FileEvent(clip_));
  cv::VideoCapture capture(clip_, cv::CAP_FFMPEG);
  ASSERT_TRUE(capture.isOpened());
  cv::Mat frame;
  for (int i = 0; i <= output_["frames"][1]["index"].get<int>(); ++i) ASSERT_TRUE(capture.read(frame));
  cv::Mat expected;
  cv::resize(frame, expected, {80, 60}, 0, 0, cv::INTER_AREA);
  const cv::Mat got = Decode(ReadFile(output_["frames"][1]["path"]));
  ASSERT_EQ(got.size(), expected.size());
  cv::Mat diff;
  cv::absdiff(got, expected, diff);
  const cv::Scalar mean = cv::mean(diff);
  for (int c = 0; c < 3; ++c) EXPECT_LT(mean[c], 6.0) << "channel " << c;  // JPEG q85 and filter rounding
  // Another frame differs by far more: the comparison can tell frames apart.
  cv::Mat first;
  cv::absdiff(Decode(ReadFile(output_["frames"][0]["path"])), expected, first);
  EXPECT_GT(cv::mean(first)[0] + cv::mean(first)[1], 20.0);
}

// A portrait phone video: stored 160x120 with a display matrix turning it 90 degrees clockwise
// (as `ffmpeg` and players show it). The thumbnails are upright: 120 wide, 160 high, the stored
// frame turned clockwise. (OpenCV 4.6's VideoCapture turns such a video the other way.)
TEST_F(MediaVideoFunctions, TheDisplayRotationIsApplied) {
  const auto stored = (Dir() / "stored.mp4").string();
  const auto rotated = (Dir() / "rotated.mp4").string();
  ASSERT_TRUE(WriteVideo(stored, "mp4v", 10, 20, {160, 120}));
  ASSERT_TRUE(RemuxRotated(stored, rotated, 90));
  Run("video.probe", Json::object(), FileEvent(rotated));
  EXPECT_EQ(output_["width"], 120);
  EXPECT_EQ(output_["height"], 160);
  Run("video.thumbnails", {{"count", 1}, {"width", 60}, {"contact_sheet", false}}, FileEvent(rotated));
  ASSERT_EQ(output_["frames"].size(), 1u);
  EXPECT_EQ(output_["frames"][0]["width"], 60);
  EXPECT_EQ(output_["frames"][0]["height"], 80);
  const cv::Mat got = Decode(ReadFile(output_["frames"][0]["path"]));
  ASSERT_EQ(got.size(), cv::Size(60, 80));

  cv::VideoCapture capture(stored, cv::CAP_FFMPEG);  // no rotation in this file
  ASSERT_TRUE(capture.isOpened());
  cv::Mat frame;
  for (int i = 0; i <= output_["frames"][0]["index"].get<int>(); ++i) ASSERT_TRUE(capture.read(frame));
  const auto difference = [&](cv::RotateFlags turn) {
    cv::Mat turned, small, diff;
    cv::rotate(frame, turned, turn);
    cv::resize(turned, small, {60, 80}, 0, 0, cv::INTER_AREA);
    cv::absdiff(got, small, diff);
    const cv::Scalar mean = cv::mean(diff);
    return mean[0] + mean[1] + mean[2];
  };
  const double clockwise = difference(cv::ROTATE_90_CLOCKWISE);
  EXPECT_LT(clockwise, 3 * 8.0);  // JPEG q85 and filter rounding
  // Turned the other way (the frame number then sits at the bottom instead of the top) is further
  // off: the comparison sees the direction.
  EXPECT_GT(difference(cv::ROTATE_90_COUNTERCLOCKWISE), 2 * clockwise) << "clockwise " << clockwise;
}

TEST_F(MediaVideoFunctions, FractionalInterval) {
  Run("video.thumbnails", {{"every_seconds", 2.5}, {"contact_sheet", false}}, FileEvent(clip_));
  ASSERT_EQ(output_["frames"].size(), 4u);
  EXPECT_NEAR(output_["frames"][3]["time"].get<double>(), 7.5, 0.01);
  EXPECT_TRUE(output_["contact_sheet"].is_null());
}

TEST_F(MediaVideoFunctions, CountIsEvenlySpaced) {
  const Result result =
      Run("video.thumbnails", {{"count", 3}, {"width", 80}, {"columns", 2}}, FileEvent(clip_));
  ASSERT_EQ(output_["frames"].size(), 3u);
  EXPECT_EQ(output_["frames"][0]["index"], 16);
  EXPECT_EQ(output_["frames"][1]["index"], 50);
  EXPECT_EQ(output_["frames"][2]["index"], 83);
  EXPECT_EQ(output_["frames"][0]["width"], 80);
  EXPECT_EQ(output_["frames"][0]["height"], 60);
  EXPECT_EQ(output_["contact_sheet"]["rows"], 2);
  EXPECT_EQ(result.files.size(), 4u);
}

TEST_F(MediaVideoFunctions, InlinePayloadGoesThroughATemporaryFileThatIsRemoved) {
  const auto tmp = Dir() / "tmp";
  std::filesystem::create_directory(tmp);
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old ? old : "";
  ::setenv("TMPDIR", tmp.c_str(), 1);
  Run("video.thumbnails", {{"count", 2}}, InlineEvent(ReadFile(clip_)));
  old ? ::setenv("TMPDIR", saved.c_str(), 1) : ::unsetenv("TMPDIR");
  EXPECT_EQ(output_["frames"].size(), 2u);
  EXPECT_TRUE(std::filesystem::is_empty(tmp));
}

TEST_F(MediaVideoFunctions, AUrlIsStreamedToATemporaryFileThatIsRemoved) {
  ::setenv("no_proxy", "127.0.0.1", 1);
  const std::string clip = ReadFile(clip_);
  TestServer server({{"/clip.avi", clip}});
  const auto tmp = Dir() / "tmp";
  std::filesystem::create_directory(tmp);
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old ? old : "";
  ::setenv("TMPDIR", tmp.c_str(), 1);
  Event event = InlineEvent("");
  event.envelope.file = FileRef{{}, std::nullopt, "clip.avi", server.Url("/clip.avi?sig=abc")};
  Run("video.probe", Json::object(), event);
  EXPECT_EQ(output_["container"], "avi");
  EXPECT_EQ(output_["frame_count"], 100);
  EXPECT_EQ(output_["bytes"], clip.size());
  EXPECT_TRUE(std::filesystem::is_empty(tmp));
  // Over max_bytes (from Content-Length), and a 404: the temporary file is gone too.
  ExpectError("video.probe", {{"max_bytes", 1000}}, event, Errc::kLimitExceeded,
              "its Content-Length is over the limit of 1000 bytes");
  event.envelope.file->url = server.Url("/missing");
  ExpectError("video.probe", Json::object(), event, Errc::kBadInput, "/missing: HTTP 404");
  old ? ::setenv("TMPDIR", saved.c_str(), 1) : ::unsetenv("TMPDIR");
  EXPECT_TRUE(std::filesystem::is_empty(tmp));
}

TEST_F(MediaVideoFunctions, TruncatedFileYieldsItsDecodablePrefixWithAWarning) {
  const std::string bytes = ReadFile(clip_);
  const auto cut = WriteFile("cut.avi", bytes.substr(0, bytes.size() / 2));
  Run("video.thumbnails", Json::object(), FileEvent(cut));
  EXPECT_EQ(output_["truncated"], true);
  const auto decoded = output_["frames_decoded"].get<int>();
  EXPECT_GT(decoded, 10);
  EXPECT_LT(decoded, 90);
  EXPECT_EQ(output_["warning"], fmt::format("truncated: {} frames decoded of 100 expected", decoded));
  EXPECT_GE(output_["frames"].size(), 2u);
}

// ---- hostile input

TEST_F(MediaVideoFunctions, EmptyFileIsBadInput) {
  ExpectError("video.thumbnails", Json::object(), FileEvent(WriteFile("empty.mp4", "")), Errc::kBadInput,
              "input is empty (0 bytes)");
  ExpectError("video.probe", Json::object(), InlineEvent(""), Errc::kBadInput, "input is empty");
}

TEST_F(MediaVideoFunctions, GarbageIsBadInput) {
  ExpectError("video.thumbnails", Json::object(), FileEvent(WriteFile("x.mp4", std::string(5000, 'z'))),
              Errc::kBadInput, "not a recognised video container");
}

TEST_F(MediaVideoFunctions, PlaylistsAreNeverHandedToFfmpeg) {
  const std::string playlist =
      "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n";
  ExpectError("video.probe", Json::object(), FileEvent(WriteFile("evil.mp4", playlist)), Errc::kBadInput,
              "not a recognised video container");
}

TEST_F(MediaVideoFunctions, ContainerMagicWithGarbageBodyIsBadInput) {
  std::string fake = std::string(
                         "\0\0\0\x18"
                         "ftypisom\0\0\x02\0isomiso2",
                         24) +
                     std::string(4000, '\x7f');
  ExpectError("video.thumbnails", Json::object(), FileEvent(WriteFile("fake.mp4", fake)), Errc::kBadInput,
              "not a readable video");
}

TEST_F(MediaVideoFunctions, Mp4CutInHalfIsBadInput) {
  // OpenCV's MP4 muxer writes the index (moov) last: half a file has no index at all.
  const auto path = (Dir() / "clip.mp4").string();
  ASSERT_TRUE(WriteVideo(path, "mp4v", 10, 30, {160, 120}));
  const std::string bytes = ReadFile(path);
  ExpectError("video.thumbnails", Json::object(),
              FileEvent(WriteFile("cut.mp4", bytes.substr(0, bytes.size() / 2))), Errc::kBadInput,
              "not a readable video");
}

TEST_F(MediaVideoFunctions, Caps) {
  ExpectError("video.thumbnails", {{"max_bytes", 1000}}, FileEvent(clip_), Errc::kLimitExceeded,
              "over the limit of 1000 (max_bytes)");
  ExpectError("video.thumbnails", {{"max_pixels", 19199}}, FileEvent(clip_), Errc::kLimitExceeded,
              "160x120 = 19200 pixels, over the limit of 19199");
  ExpectError("video.thumbnails", {{"max_frames_scanned", 99}}, FileEvent(clip_), Errc::kLimitExceeded,
              "declares 100 frames, over the limit of 99");
  ExpectError("video.thumbnails", {{"every_seconds", 0.5}, {"max_thumbnails", 10}}, FileEvent(clip_),
              Errc::kLimitExceeded, "makes 20 thumbnails, over the limit of 10");
  ExpectError("video.probe", {{"max_bytes", 10}}, FileEvent(clip_), Errc::kLimitExceeded, "max_bytes");
}

TEST_F(MediaVideoFunctions, DeadlineStopsTheScan) {
  ctx_->deadline_ = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  ExpectError("video.thumbnails", Json::object(), FileEvent(clip_), Errc::kTimeout, "deadline passed");
}

TEST_F(MediaVideoFunctions, BadParamsNameTheKey) {
  struct Case {
    Json params;
    const char* message;
  };
  const Case cases[] = {
      {{{"every_seconds", 1}, {"count", 3}},
       "video.thumbnails: params.count: give every_seconds or count, not both"},
      {{{"count", 0}}, "params.count: 0 is outside 1..1000"},
      {{{"every_seconds", 0}}, "params.every_seconds: 0 is outside 0.001..86400"},
      {{{"width", 8}}, "params.width: 8 is outside 16..1920"},
      {{{"contact_sheet", "yes"}}, "params.contact_sheet: must be true or false"},
      {{{"count", 50}, {"max_thumbnails", 10}}, "params.count: 50 is over max_thumbnails (10)"},
      {{{"fps", 3}}, "params.fps: unknown parameter"},
  };
  for (const auto& c : cases) {
    try {
      Builtins().Create("video.thumbnails", c.params);
      ADD_FAILURE() << c.message;
    } catch (const FunctionError& e) {
      EXPECT_EQ(e.Code(), Errc::kBadConfig) << e.what();
      EXPECT_THAT(e.what(), ::testing::HasSubstr(c.message));
    }
  }
}

}  // namespace
}  // namespace runnel::functions::testing
