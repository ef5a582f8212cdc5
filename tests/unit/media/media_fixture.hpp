// Shared pieces of the media tests: a temporary directory per test, a Context that writes outputs
// there, and generators for images (any format, EXIF orientations) and short videos.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <string>

#include "runnel/functions/function.hpp"

namespace runnel::functions::testing {

class FakeContext final : public Context {
 public:
  explicit FakeContext(const std::filesystem::path& root);
  const nlohmann::json& Params() const override { return params_; }
  std::chrono::steady_clock::time_point Deadline() const override { return deadline_; }
  spdlog::logger& Log() override { return *logger_; }
  OutputStore& Outputs() override { return store_; }
  void Emit(std::string_view, std::string_view, std::string, Headers) override {}

  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::now() + std::chrono::hours(1);

 private:
  nlohmann::json params_ = nlohmann::json::object();
  std::shared_ptr<spdlog::logger> logger_;
  OutputStore store_;
};

// One temporary directory per test, removed afterwards; outputs go to dir()/out.
class MediaTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  const std::filesystem::path& Dir() const { return dir_; }

  // Runs a built-in function on an event; the result's JSON is parsed into output_.
  Result Run(const std::string& function, const nlohmann::json& params, const Event& event);
  // Runs and expects a FunctionError of `code` whose message contains `substring`.
  void ExpectError(const std::string& function, const nlohmann::json& params, const Event& event, Errc code,
                   const std::string& substring);
  std::string WriteFile(const std::string& name, const std::string& bytes) const;

  std::unique_ptr<FakeContext> ctx_;
  nlohmann::json output_;  // the last Run's parsed result

 private:
  std::filesystem::path dir_;
};

Event InlineEvent(std::string payload);
Event FileEvent(const std::string& path);

std::string ReadFile(const std::string& path);
// cv::imencode into a string; ext like ".jpg".
std::string Encode(const cv::Mat& image, const std::string& ext, const std::vector<int>& params = {});
cv::Mat Decode(const std::string& bytes);
// Gradient plus noise: realistic entropy for codecs.
cv::Mat NoisyImage(int width, int height, unsigned seed = 1);
// Red top-left quadrant, blue elsewhere: shows where a transform moved the origin.
cv::Mat QuadrantImage(int width, int height);
// Which quadrant of `image` is red: "TL", "TR", "BL", "BR", or "?".
std::string RedQuadrant(const cv::Mat& image);
// Inserts an APP1 EXIF segment with the given orientation right after the JPEG's SOI.
std::string WithExifOrientation(const std::string& jpeg, int orientation, bool little_endian = true);
// A PNG whose IHDR claims width x height, with a token IDAT and IEND.
std::string FakePng(std::uint32_t width, std::uint32_t height);
// A minimal valid 2x1 GIF.
std::string TinyGif();

// Writes `frames` frames of `size` at `fps`; false when this fourcc cannot be written here.
bool WriteVideo(const std::string& path, const std::string& fourcc, double fps, int frames, cv::Size size);
// Copies the MP4 at `from` to `to` (no re-encoding) with a display matrix rotating it `clockwise`
// degrees, as phones record portrait video. False when FFmpeg refuses.
bool RemuxRotated(const std::string& from, const std::string& to, int clockwise);

}  // namespace runnel::functions::testing
