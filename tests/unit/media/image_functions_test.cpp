// image.thumbnail, image.convert and image.metadata through the registry, as a worker calls them.
#include <cstdlib>
#include <opencv2/imgcodecs.hpp>

#include "media_fixture.hpp"

namespace runnel::functions::testing {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

using MediaImageFunctions = MediaTest;

TEST_F(MediaImageFunctions, AllRegistered) {
  for (const char* name :
       {"image.thumbnail", "image.convert", "image.metadata", "video.thumbnails", "video.probe"}) {
    EXPECT_TRUE(Builtins().Contains(name)) << name;
    EXPECT_FALSE(Builtins().Summary(name).empty()) << name;
  }
}

TEST_F(MediaImageFunctions, ThumbnailDefaultIs256FitJpeg) {
  const Result result =
      Run("image.thumbnail", Json::object(), InlineEvent(Encode(NoisyImage(1200, 900), ".jpg")));
  EXPECT_EQ(output_["source"],
            Json({{"format", "jpeg"}, {"width", 1200}, {"height", 900}, {"orientation", 1}}));
  ASSERT_EQ(output_["thumbnails"].size(), 1u);
  const auto& thumb = output_["thumbnails"][0];
  EXPECT_EQ(thumb["width"], 256);
  EXPECT_EQ(thumb["height"], 192);
  EXPECT_EQ(thumb["format"], "jpeg");
  EXPECT_EQ(thumb["path"], (Dir() / "out" / "image.thumbnail" / "ev1" / "256x256.jpg").string());
  ASSERT_EQ(result.files.size(), 1u);
  EXPECT_EQ(result.files[0].path, thumb["path"]);
  EXPECT_EQ(result.files[0].facts["width"], 256);
  const std::string written = ReadFile(thumb["path"]);
  EXPECT_EQ(thumb["bytes"], written.size());
  const cv::Mat decoded = Decode(written);
  EXPECT_EQ(decoded.size(), cv::Size(256, 192));
}

TEST_F(MediaImageFunctions, ThumbnailFitNeverUpscales) {
  Run("image.thumbnail", {{"sizes", {{{"width", 256}, {"height", 256}}}}},
      InlineEvent(Encode(NoisyImage(100, 80), ".png")));
  EXPECT_EQ(output_["thumbnails"][0]["width"], 100);
  EXPECT_EQ(output_["thumbnails"][0]["height"], 80);
}

TEST_F(MediaImageFunctions, ThumbnailFillCropsTheCentreToExactSize) {
  // Left and right quarters green, the middle half red: a centred square crop is all red.
  cv::Mat image(200, 400, CV_8UC3, cv::Scalar(0, 255, 0));
  image(cv::Rect(100, 0, 200, 200)).setTo(cv::Scalar(0, 0, 255));
  Run("image.thumbnail", {{"format", "png"}, {"sizes", {{{"width", 50}, {"height", 50}, {"mode", "fill"}}}}},
      InlineEvent(Encode(image, ".png")));
  const cv::Mat thumb = Decode(ReadFile(output_["thumbnails"][0]["path"]));
  ASSERT_EQ(thumb.size(), cv::Size(50, 50));
  for (cv::Point p : {cv::Point(1, 1), cv::Point(48, 48), cv::Point(25, 25)}) {
    EXPECT_GT(thumb.at<cv::Vec3b>(p)[2], 200) << p;
    EXPECT_LT(thumb.at<cv::Vec3b>(p)[1], 60) << p;
  }
}

TEST_F(MediaImageFunctions, ThumbnailSeveralSizesAndFormats) {
  for (const char* format : {"jpeg", "png", "webp"}) {
    const Json params = {
        {"format", format},
        {"quality", 70},
        {"sizes", {{{"width", 64}, {"height", 64}}, {{"width", 32}, {"height", 16}, {"mode", "fill"}}}}};
    const Result result = Run("image.thumbnail", params, InlineEvent(Encode(NoisyImage(640, 480), ".webp")));
    ASSERT_EQ(result.files.size(), 2u) << format;
    EXPECT_EQ(output_["source"]["format"], "webp");
    const std::string ext = std::string(format) == "jpeg" ? "jpg" : format;
    EXPECT_THAT(output_["thumbnails"][1]["path"].get<std::string>(), ::testing::EndsWith("/32x16." + ext));
    EXPECT_EQ(Decode(ReadFile(output_["thumbnails"][0]["path"])).size(), cv::Size(64, 48)) << format;
    EXPECT_EQ(Decode(ReadFile(output_["thumbnails"][1]["path"])).size(), cv::Size(32, 16)) << format;
    EXPECT_EQ(output_["thumbnails"][1]["format"], format);
  }
}

TEST_F(MediaImageFunctions, ThumbnailReadsBmpAndGrayscaleAndFileInput) {
  Run("image.thumbnail", Json::object(), InlineEvent(Encode(NoisyImage(300, 100), ".bmp")));
  EXPECT_EQ(output_["thumbnails"][0]["height"], 85);
  const cv::Mat gray(300, 400, CV_8UC1, cv::Scalar(77));
  Run("image.thumbnail", Json::object(), FileEvent(WriteFile("gray.jpg", Encode(gray, ".jpg"))));
  EXPECT_EQ(output_["thumbnails"][0]["width"], 256);
  EXPECT_EQ(output_["thumbnails"][0]["height"], 192);
}

// EXIF orientation 1..8 in both byte orders, through the full-size decode (small source) and the
// shrink-on-load decode (large source, 1/8): the red quadrant lands where a viewer would show it.
class MediaThumbnailOrientation : public MediaTest,
                                  public ::testing::WithParamInterface<std::tuple<int, bool, bool>> {};

TEST_P(MediaThumbnailOrientation, IsApplied) {
  const auto [orientation, little_endian, large] = GetParam();
  const cv::Size stored = large ? cv::Size(1600, 1200) : cv::Size(160, 120);
  const std::string jpeg = WithExifOrientation(Encode(QuadrantImage(stored.width, stored.height), ".jpg"),
                                               orientation, little_endian);
  Run("image.thumbnail", {{"format", "png"}, {"sizes", {{{"width", 100}, {"height", 100}}}}},
      InlineEvent(jpeg));
  const bool swapped = orientation >= 5;
  EXPECT_EQ(output_["source"]["width"], swapped ? stored.height : stored.width);
  EXPECT_EQ(output_["source"]["orientation"], orientation);
  const cv::Mat thumb = Decode(ReadFile(output_["thumbnails"][0]["path"]));
  EXPECT_EQ(thumb.size(), swapped ? cv::Size(75, 100) : cv::Size(100, 75));
  static const char* const kExpected[] = {"", "TL", "TR", "BR", "BL", "TL", "TR", "BR", "BL"};
  EXPECT_EQ(RedQuadrant(thumb), kExpected[orientation]);
}

INSTANTIATE_TEST_SUITE_P(AllOrientations, MediaThumbnailOrientation,
                         ::testing::Combine(::testing::Range(1, 9), ::testing::Bool(), ::testing::Bool()));

TEST_F(MediaImageFunctions, ConvertChangesFormatAndDownscales) {
  Run("image.convert", {{"format", "webp"}, {"max_width", 200}},
      InlineEvent(Encode(NoisyImage(800, 400), ".png")));
  EXPECT_EQ(output_["source"]["format"], "png");
  EXPECT_EQ(output_["output"]["format"], "webp");
  EXPECT_EQ(output_["output"]["width"], 200);
  EXPECT_EQ(output_["output"]["height"], 100);
  const std::string written = ReadFile(output_["output"]["path"]);
  EXPECT_EQ(written.substr(8, 4), "WEBP");
  EXPECT_THAT(output_["output"]["path"].get<std::string>(),
              ::testing::EndsWith("image.convert/ev1/converted.webp"));
}

TEST_F(MediaImageFunctions, ConvertKeepsSizeWithoutLimits) {
  Run("image.convert", {{"format", "png"}}, InlineEvent(Encode(NoisyImage(123, 77), ".jpg")));
  EXPECT_EQ(Decode(ReadFile(output_["output"]["path"])).size(), cv::Size(123, 77));
}

TEST_F(MediaImageFunctions, ConvertWithoutParamsWritesJpeg) {
  // The default stack (runnel up without a config) creates image.convert with no params.
  Run("image.convert", Json::object(), InlineEvent(Encode(NoisyImage(64, 48), ".png")));
  EXPECT_EQ(output_["output"]["format"], "jpeg");
  EXPECT_EQ(ReadFile(output_["output"]["path"]).substr(0, 3), "\xFF\xD8\xFF");
  EXPECT_THAT(output_["output"]["path"].get<std::string>(), ::testing::EndsWith("converted.jpg"));
}

TEST_F(MediaImageFunctions, MetadataReadsTheHeaderOnly) {
  Run("image.metadata", Json::object(),
      InlineEvent(WithExifOrientation(Encode(NoisyImage(40, 30), ".jpg"), 6)));
  EXPECT_EQ(output_["format"], "jpeg");
  EXPECT_EQ(output_["width"], 40);
  EXPECT_EQ(output_["height"], 30);
  EXPECT_EQ(output_["channels"], 3);
  EXPECT_EQ(output_["orientation"], 6);
  EXPECT_EQ(output_["display_width"], 30);
  EXPECT_GT(output_["bytes"].get<int>(), 100);
  // A header claiming 10 gigapixels: metadata reports it, nothing is decoded.
  Run("image.metadata", Json::object(), InlineEvent(FakePng(100000, 100000)));
  EXPECT_EQ(output_["width"], 100000);
  Run("image.metadata", Json::object(), InlineEvent(TinyGif()));
  EXPECT_EQ(output_["format"], "gif");
}

// ---- hostile input: each guard, its error kind and message.

TEST_F(MediaImageFunctions, EmptyInputIsBadInput) {
  ExpectError("image.thumbnail", Json::object(), InlineEvent(""), Errc::kBadInput,
              "input is empty (0 bytes)");
  ExpectError("image.metadata", Json::object(), FileEvent(WriteFile("empty.jpg", "")), Errc::kBadInput,
              "input is empty");
}

TEST_F(MediaImageFunctions, NonImageWithImageExtensionIsBadInput) {
  ExpectError("image.thumbnail", Json::object(),
              FileEvent(WriteFile("photo.jpg", "<html>not a photo</html>")), Errc::kBadInput,
              "not a recognised image");
}

TEST_F(MediaImageFunctions, JpegCutInHalfIsTruncatedNotAGrayImage) {
  const std::string jpeg = Encode(NoisyImage(400, 300), ".jpg");
  ExpectError("image.thumbnail", Json::object(), InlineEvent(jpeg.substr(0, jpeg.size() / 2)),
              Errc::kBadInput, "truncated JPEG");
  ExpectError("image.metadata", Json::object(), InlineEvent(jpeg.substr(0, jpeg.size() / 2)), Errc::kBadInput,
              "truncated JPEG");
}

TEST_F(MediaImageFunctions, PngWithoutIendIsTruncated) {
  const std::string png = Encode(NoisyImage(100, 100), ".png");
  ExpectError("image.convert", {{"format", "jpeg"}}, InlineEvent(png.substr(0, png.size() * 2 / 3)),
              Errc::kBadInput, "truncated PNG");
}

TEST_F(MediaImageFunctions, HugeHeaderIsOverTheCapBeforeDecoding) {
  ExpectError("image.thumbnail", Json::object(), InlineEvent(FakePng(100000, 100000)), Errc::kLimitExceeded,
              "a side is over the limit of 65535");
  ExpectError("image.thumbnail", Json::object(), InlineEvent(FakePng(10000, 10000)), Errc::kLimitExceeded,
              "image is 10000x10000 = 100000000 pixels, over the limit of 50000000 (max_pixels)");
}

TEST_F(MediaImageFunctions, PixelCapIsConfigurable) {
  const std::string jpeg = Encode(NoisyImage(200, 100), ".jpg");
  ExpectError("image.thumbnail", {{"max_pixels", 19999}}, InlineEvent(jpeg), Errc::kLimitExceeded,
              "over the limit of 19999");
  Run("image.thumbnail", {{"max_pixels", 20000}}, InlineEvent(jpeg));
}

TEST_F(MediaImageFunctions, DecompressionBombIsRefused) {
  // 8000x8000 of one colour: 64 MB of pixels in a PNG of well under 100 KB.
  const std::string bomb =
      Encode(cv::Mat(8000, 8000, CV_8UC1, cv::Scalar(0)), ".png", {cv::IMWRITE_PNG_COMPRESSION, 9});
  ASSERT_LT(bomb.size(), 100'000u);
  ExpectError("image.thumbnail", Json::object(), InlineEvent(bomb), Errc::kLimitExceeded,
              "over the limit of 50000000");
}

TEST_F(MediaImageFunctions, ByteCapIsCheckedBeforeReading) {
  const std::string jpeg = Encode(NoisyImage(200, 100), ".jpg");
  ExpectError("image.thumbnail", {{"max_bytes", 100}}, InlineEvent(jpeg), Errc::kLimitExceeded,
              "over the limit of 100");
  ExpectError("image.metadata", {{"max_bytes", 100}}, FileEvent(WriteFile("a.jpg", jpeg)),
              Errc::kLimitExceeded, "over the limit of 100");
}

TEST_F(MediaImageFunctions, CorruptPngDataIsBadInput) {
  // Chunk structure intact, compressed pixels scrambled: the header guard passes, libpng refuses.
  std::string png = Encode(NoisyImage(100, 100), ".png");
  const std::size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  for (std::size_t i = idat + 6; i < idat + 1000; ++i) png[i] = static_cast<char>(png[i] ^ 0x5A);
  ExpectError("image.thumbnail", Json::object(), InlineEvent(png), Errc::kBadInput,
              "corrupt PNG: the decoder");
}

TEST_F(MediaImageFunctions, GifIsRecognisedButNotDecodable) {
  ExpectError("image.thumbnail", Json::object(), InlineEvent(TinyGif()), Errc::kBadInput,
              "unsupported image format gif");
}

TEST_F(MediaImageFunctions, MissingInputFileIsBadInput) {
  ExpectError("image.thumbnail", Json::object(), FileEvent((Dir() / "nope.jpg").string()), Errc::kBadInput,
              "cannot open input file");
}

TEST_F(MediaImageFunctions, BadParamsNameTheKey) {
  struct Case {
    const char* function;
    Json params;
    const char* message;
  };
  const Case cases[] = {
      {"image.thumbnail", {{"size", 1}}, "image.thumbnail: params.size: unknown parameter"},
      {"image.thumbnail", {{"quality", 0}}, "image.thumbnail: params.quality: 0 is outside 1..100"},
      {"image.thumbnail", {{"quality", "high"}}, "params.quality: must be an integer"},
      {"image.thumbnail", {{"format", "tiff"}}, "params.format: \"tiff\" is not one of jpeg, png, webp"},
      {"image.thumbnail", {{"sizes", Json::array()}}, "params.sizes: must be a list of 1 to 16"},
      {"image.thumbnail",
       {{"sizes", {{{"width", 0}, {"height", 5}}}}},
       "params.sizes[0].width: 0 is outside 1..16383"},
      {"image.thumbnail", {{"sizes", {{{"width", 5}}}}}, "params.sizes[0]: needs width and height"},
      {"image.thumbnail",
       {{"sizes", {{{"width", 5}, {"height", 5}, {"mode", "stretch"}}}}},
       "params.sizes[0].mode: \"stretch\" is not fit or fill"},
      {"image.thumbnail",
       {{"sizes", {{{"width", 5}, {"height", 5}}, {{"width", 5}, {"height", 5}, {"mode", "fill"}}}}},
       "params.sizes[1]: duplicate size 5x5"},
      {"image.thumbnail",
       {{"max_pixels", 1'000'000'000}},
       "params.max_pixels: 1000000000 is outside 1..268435456"},
      {"image.thumbnail", Json::array(), "image.thumbnail: params must be an object"},
      {"image.convert",
       {{"format", "gif"}},
       "image.convert: params.format: \"gif\" is not one of jpeg, png, webp"},
      {"image.convert",
       {{"format", "webp"}, {"max_width", 20000}},
       "params.max_width: 20000 is outside 1..16383"},
      {"image.metadata", {{"quality", 5}}, "image.metadata: params.quality: unknown parameter"},
  };
  for (const auto& c : cases) {
    try {
      Builtins().Create(c.function, c.params);
      ADD_FAILURE() << c.message;
    } catch (const FunctionError& e) {
      EXPECT_EQ(e.Code(), Errc::kBadConfig) << e.what();
      EXPECT_THAT(e.what(), HasSubstr(c.message));
    }
  }
}

TEST_F(MediaImageFunctions, OpenCvLimitsAreExportedForChildProcesses) {
  Builtins();
  ASSERT_NE(std::getenv("OPENCV_IO_MAX_IMAGE_PIXELS"), nullptr);
  ASSERT_NE(std::getenv("OPENCV_IO_MAX_IMAGE_WIDTH"), nullptr);
}

}  // namespace
}  // namespace runnel::functions::testing
