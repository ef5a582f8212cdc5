// The header parser: dimensions without decoding, EXIF orientation, and every way a file can be
// short or malformed. It is the guard in front of the decoders, so it must never crash or over-read.
#include "image_header.hpp"

#include <opencv2/imgcodecs.hpp>
#include <random>

#include "image_ops.hpp"
#include "media_fixture.hpp"

namespace runnel::functions::media {
namespace {

using testing::Encode;
using ::testing::HasSubstr;
using testing::NoisyImage;

void ExpectBadInput(std::string_view bytes, const std::string& substring) {
  try {
    ParseImageHeader(bytes);
    ADD_FAILURE() << "parsed; expected an error containing '" << substring << "'";
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.Code(), Errc::kBadInput);
    EXPECT_THAT(e.what(), HasSubstr(substring));
  }
}

TEST(MediaImageHeader, JpegSizeAndChannels) {
  const auto info = ParseImageHeader(Encode(NoisyImage(123, 45), ".jpg"));
  EXPECT_EQ(info.format, ImageFormat::kJpeg);
  EXPECT_EQ(info.width, 123u);
  EXPECT_EQ(info.height, 45u);
  EXPECT_EQ(info.channels, 3);
  EXPECT_EQ(info.orientation, 1);
  EXPECT_TRUE(info.truncated.empty());
  EXPECT_EQ(ParseImageHeader(Encode(cv::Mat(7, 9, CV_8UC1, cv::Scalar(3)), ".jpg")).channels, 1);
}

TEST(MediaImageHeader, ProgressiveJpeg) {
  const auto info = ParseImageHeader(Encode(NoisyImage(64, 48), ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  EXPECT_EQ(info.width, 64u);
  EXPECT_TRUE(info.truncated.empty());
}

TEST(MediaImageHeader, JpegWithTrailingBytesAfterEndOfImageIsComplete) {
  const auto info = ParseImageHeader(Encode(NoisyImage(32, 32), ".jpg") + "trailing vendor data");
  EXPECT_TRUE(info.truncated.empty());
}

TEST(MediaImageHeader, PngSizeAndChannels) {
  auto info = ParseImageHeader(Encode(NoisyImage(300, 200), ".png"));
  EXPECT_EQ(info.format, ImageFormat::kPng);
  EXPECT_EQ(info.width, 300u);
  EXPECT_EQ(info.height, 200u);
  EXPECT_EQ(info.channels, 3);
  EXPECT_EQ(ParseImageHeader(Encode(cv::Mat(5, 6, CV_8UC4, cv::Scalar::all(9)), ".png")).channels, 4);
  EXPECT_EQ(ParseImageHeader(Encode(cv::Mat(5, 6, CV_16UC1, cv::Scalar::all(9)), ".png")).channels, 1);
}

TEST(MediaImageHeader, WebpLossyLosslessAndAlpha) {
  auto lossy = ParseImageHeader(Encode(NoisyImage(150, 100), ".webp", {cv::IMWRITE_WEBP_QUALITY, 80}));
  EXPECT_EQ(lossy.format, ImageFormat::kWebp);
  EXPECT_EQ(lossy.width, 150u);
  EXPECT_EQ(lossy.height, 100u);
  auto lossless = ParseImageHeader(Encode(NoisyImage(33, 17), ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}));
  EXPECT_EQ(lossless.width, 33u);
  EXPECT_EQ(lossless.height, 17u);
  auto alpha = ParseImageHeader(Encode(cv::Mat(20, 30, CV_8UC4, cv::Scalar(1, 2, 3, 4)), ".webp"));
  EXPECT_EQ(alpha.width, 30u);
  EXPECT_EQ(alpha.height, 20u);
  EXPECT_EQ(alpha.channels, 4);
}

TEST(MediaImageHeader, BmpSize) {
  const auto info = ParseImageHeader(Encode(NoisyImage(31, 7), ".bmp"));
  EXPECT_EQ(info.format, ImageFormat::kBmp);
  EXPECT_EQ(info.width, 31u);
  EXPECT_EQ(info.height, 7u);
  EXPECT_TRUE(info.truncated.empty());
}

TEST(MediaImageHeader, GifSize) {
  const auto info = ParseImageHeader(testing::TinyGif());
  EXPECT_EQ(info.format, ImageFormat::kGif);
  EXPECT_EQ(info.width, 2u);
  EXPECT_EQ(info.height, 1u);
  EXPECT_FALSE(info.animated);
  EXPECT_TRUE(info.truncated.empty());
}

TEST(MediaImageHeader, ExifOrientationInBothByteOrders) {
  const std::string jpeg = Encode(NoisyImage(40, 20), ".jpg");
  for (int orientation = 1; orientation <= 8; ++orientation) {
    for (bool little : {true, false}) {
      const auto info = ParseImageHeader(testing::WithExifOrientation(jpeg, orientation, little));
      EXPECT_EQ(info.orientation, orientation) << (little ? "II" : "MM");
      EXPECT_EQ(info.DisplayWidth(), orientation >= 5 ? 20u : 40u);
    }
  }
}

TEST(MediaImageHeader, OutOfRangeOrMalformedExifMeansOrientationOne) {
  const std::string jpeg = Encode(NoisyImage(40, 20), ".jpg");
  EXPECT_EQ(ParseImageHeader(testing::WithExifOrientation(jpeg, 9)).orientation, 1);
  EXPECT_EQ(ParseImageHeader(testing::WithExifOrientation(jpeg, 0)).orientation, 1);
  EXPECT_EQ(ExifOrientation(std::string("II\x2A\0\xFF\xFF\xFF\x7F", 8)), 1);  // IFD offset far past the end
  EXPECT_EQ(ExifOrientation("MM"), 1);
  EXPECT_EQ(ExifOrientation(std::string("XX\x2A\0\x08\0\0\0", 8)), 1);
}

TEST(MediaImageHeader, EmptyInput) { ExpectBadInput("", "input is empty (0 bytes)"); }

TEST(MediaImageHeader, NotAnImage) {
  ExpectBadInput("hello, this is a text file named photo.jpg", "not a recognised image");
  ExpectBadInput("abc", "not a recognised image: only 3 bytes");
}

TEST(MediaImageHeader, JpegCutInHalfIsTruncated) {
  const std::string jpeg = Encode(NoisyImage(200, 150), ".jpg");
  const auto info = ParseImageHeader(std::string_view(jpeg).substr(0, jpeg.size() / 2));
  EXPECT_EQ(info.width, 200u);
  EXPECT_THAT(info.truncated, HasSubstr("truncated JPEG"));
}

TEST(MediaImageHeader, JpegCutBeforeFrameHeaderIsAnError) {
  ExpectBadInput(std::string("\xFF\xD8\xFF\xE0\x00\x10JFIF", 10),
                 "truncated JPEG: the file ends before the frame header");
}

TEST(MediaImageHeader, JpegGarbageWhereAMarkerBelongs) {
  ExpectBadInput(std::string("\xFF\xD8\xFF\xE0\x00\x04xxGARBAGE", 15), "corrupt JPEG: expected a marker");
}

TEST(MediaImageHeader, PngWithoutIendIsTruncated) {
  const std::string png = Encode(NoisyImage(64, 64), ".png");
  const auto info = ParseImageHeader(std::string_view(png).substr(0, png.size() - 12));
  EXPECT_THAT(info.truncated, HasSubstr("truncated PNG"));
  ExpectBadInput(std::string_view(png).substr(0, 20), "truncated PNG: the file ends inside the IHDR chunk");
}

TEST(MediaImageHeader, HugePngHeaderIsReadNotDecoded) {
  const auto info = ParseImageHeader(testing::FakePng(100000, 100000));
  EXPECT_EQ(info.width, 100000u);
  EXPECT_EQ(info.Pixels(), 10'000'000'000u);
  EXPECT_TRUE(info.truncated.empty());
}

TEST(MediaImageHeader, WebpShorterThanItsRiffSizeIsTruncated) {
  const std::string webp = Encode(NoisyImage(64, 64), ".webp");
  const auto info = ParseImageHeader(std::string_view(webp).substr(0, webp.size() - 10));
  EXPECT_THAT(info.truncated, HasSubstr("truncated WebP"));
}

TEST(MediaImageHeader, BmpMissingRowsIsTruncated) {
  const std::string bmp = Encode(NoisyImage(64, 64), ".bmp");
  const auto info = ParseImageHeader(std::string_view(bmp).substr(0, bmp.size() - 100));
  EXPECT_THAT(info.truncated, HasSubstr("truncated BMP"));
}

TEST(MediaImageHeader, GifWithoutTrailerIsTruncated) {
  const std::string gif = testing::TinyGif();
  EXPECT_THAT(ParseImageHeader(gif.substr(0, gif.size() - 1)).truncated, HasSubstr("truncated GIF"));
}

// Found by fuzzing: a last chunk of odd size without its padding byte put the chunk walk one byte
// past the end, and the next read threw std::out_of_range instead of answering.
TEST(MediaImageHeader, WebpOddLastChunkWithoutPaddingIsRead) {
  // RIFF, then a 5-byte VP8L chunk (a 3x2 image): odd, so a pad byte would follow; the file ends.
  const std::string vp8l = std::string("\x2F\x02\x40\x00\x00", 5);
  const std::string body = std::string("WEBPVP8L\x05\0\0\0", 12) + vp8l;
  const std::string webp =
      std::string("RIFF", 4) + std::string{static_cast<char>(body.size()), 0, 0, 0} + body;
  const auto info = ParseImageHeader(webp);
  EXPECT_EQ(info.format, ImageFormat::kWebp);
  EXPECT_EQ(info.width, 3u);
  EXPECT_EQ(info.height, 2u);
  EXPECT_TRUE(info.truncated.empty());
  // And the fuzzer's own input, an extended WebP whose EXIF chunk is the odd last one.
  const std::string hex =
      "52494646f80000005745425056503858290000007a00037000fefbfd50004558"
      "494146ba0000004578ffd8ffe100006978bc0045660003000025000866";
  std::string found;
  for (std::size_t i = 0; i < hex.size(); i += 2)
    found += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  try {
    (void)ParseImageHeader(found);
  } catch (const FunctionError& e) {
    EXPECT_EQ(e.Code(), Errc::kBadInput);
  }
}

// Every prefix and many single-byte corruptions of each format: the parser either answers or throws
// kBadInput; it never crashes, hangs or reads out of bounds (run under ASan to see the last).
TEST(MediaImageHeader, PrefixesAndBitFlipsNeverCrash) {
  const cv::Mat image = NoisyImage(24, 16);
  std::vector<std::string> files = {
      Encode(image, ".jpg"),  Encode(image, ".png"),
      Encode(image, ".webp"), Encode(image, ".bmp"),
      testing::TinyGif(),     testing::WithExifOrientation(Encode(image, ".jpg"), 6, false)};
  std::mt19937 rng(7);
  for (const auto& file : files) {
    for (std::size_t n = 0; n <= file.size(); ++n) {
      try {
        const auto info = ParseImageHeader(std::string_view(file).substr(0, n));
        if (n < file.size() && file.size() - n > 32) {
          EXPECT_FALSE(info.truncated.empty()) << n << " of " << file.size();
        }
      } catch (const FunctionError& e) {
        EXPECT_EQ(e.Code(), Errc::kBadInput);
      }
    }
    for (int i = 0; i < 2000; ++i) {
      std::string mutated = file;
      mutated[rng() % mutated.size()] = static_cast<char>(rng());
      try {
        ParseImageHeader(mutated);
      } catch (const FunctionError& e) {
        EXPECT_EQ(e.Code(), Errc::kBadInput);
      }
    }
  }
}

TEST(MediaImageGeometry, FitInsideKeepsAspectAndNeverUpscales) {
  EXPECT_EQ(FitInside({4000, 3000}, {256, 256}), cv::Size(256, 192));
  EXPECT_EQ(FitInside({3000, 4000}, {256, 256}), cv::Size(192, 256));
  EXPECT_EQ(FitInside({100, 80}, {256, 256}), cv::Size(100, 80));
  EXPECT_EQ(FitInside({10000, 10}, {100, 100}), cv::Size(100, 1));
}

TEST(MediaImageGeometry, CoverSizeCoversTheBox) {
  EXPECT_EQ(CoverSize({4000, 3000}, {256, 256}), cv::Size(342, 256));
  EXPECT_EQ(CoverSize({100, 50}, {256, 256}), cv::Size(100, 50));  // never larger than the source
}

TEST(MediaImageGeometry, JpegReductionIsTheLargestThatKeepsTheTarget) {
  EXPECT_EQ(JpegReduction({4000, 3000}, {256, 192}), 8);
  EXPECT_EQ(JpegReduction({4000, 3000}, {1200, 900}), 2);
  EXPECT_EQ(JpegReduction({4000, 3000}, {900, 700}), 4);
  EXPECT_EQ(JpegReduction({4000, 3000}, {2100, 1575}), 1);
  EXPECT_EQ(JpegReduction({2001, 1000}, {251, 125}), 8);  // libjpeg rounds scaled sizes up
}

}  // namespace
}  // namespace runnel::functions::media
