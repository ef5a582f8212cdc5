#include "media_fixture.hpp"

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/display.h>
}

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <random>
#include <sstream>

namespace runnel::functions::testing {

FakeContext::FakeContext(const std::filesystem::path& root)
    : logger_(std::make_shared<spdlog::logger>("media-test")), store_(root) {}

void MediaTest::SetUp() {
  std::string pattern = (std::filesystem::temp_directory_path() / "runnel-media-test-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  dir_ = pattern;
  ctx_ = std::make_unique<FakeContext>(dir_ / "out");
}

void MediaTest::TearDown() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Result MediaTest::Run(const std::string& function, const nlohmann::json& params, const Event& event) {
  auto fn = Builtins().Create(function, params);
  Result result = fn->Handle(event, *ctx_);
  output_ = nlohmann::json::parse(result.output);
  return result;
}

void MediaTest::ExpectError(const std::string& function, const nlohmann::json& params, const Event& event,
                            Errc code, const std::string& substring) {
  try {
    Run(function, params, event);
    ADD_FAILURE() << function << " succeeded; expected " << ErrcName(code) << " containing '" << substring
                  << "'";
  } catch (const FunctionError& e) {
    EXPECT_EQ(ErrcName(e.Code()), ErrcName(code)) << e.what();
    EXPECT_THAT(e.what(), ::testing::HasSubstr(substring));
  }
}

std::string MediaTest::WriteFile(const std::string& name, const std::string& bytes) const {
  auto path = (dir_ / name).string();
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

Event InlineEvent(std::string payload) {
  Event e;
  e.envelope.id = "ev1";
  e.payload = std::move(payload);
  return e;
}

Event FileEvent(const std::string& path) {
  Event e;
  e.envelope.id = "ev1";
  e.envelope.file = FileRef{path, std::nullopt, std::filesystem::path(path).filename().string()};
  return e;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Encode(const cv::Mat& image, const std::string& ext, const std::vector<int>& params) {
  std::vector<uchar> buffer;
  EXPECT_TRUE(cv::imencode(ext, image, buffer, params)) << ext;
  return {buffer.begin(), buffer.end()};
}

cv::Mat Decode(const std::string& bytes) {
  return cv::imdecode(std::vector<uchar>(bytes.begin(), bytes.end()), cv::IMREAD_COLOR);
}

cv::Mat NoisyImage(int width, int height, unsigned seed) {
  cv::Mat image(height, width, CV_8UC3);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(-40, 40);
  for (int y = 0; y < height; ++y) {
    auto* row = image.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width; ++x) {
      const int base = (x * 255 / width + y * 255 / height) / 2;
      row[x] = cv::Vec3b(cv::saturate_cast<uchar>(base + noise(rng)),
                         cv::saturate_cast<uchar>(255 - base + noise(rng)),
                         cv::saturate_cast<uchar>(x % 256 + noise(rng)));
    }
  }
  return image;
}

cv::Mat QuadrantImage(int width, int height) {
  cv::Mat image(height, width, CV_8UC3, cv::Scalar(255, 0, 0));
  image(cv::Rect(0, 0, width / 2, height / 2)).setTo(cv::Scalar(0, 0, 255));
  return image;
}

std::string RedQuadrant(const cv::Mat& image) {
  const auto red = [&](int x, int y) {
    const cv::Vec3b& p = image.at<cv::Vec3b>(y, x);
    return p[2] > 150 && p[0] < 100;
  };
  const int x1 = image.cols / 4, x2 = image.cols * 3 / 4, y1 = image.rows / 4, y2 = image.rows * 3 / 4;
  std::string found = "?";
  int hits = 0;
  if (red(x1, y1)) found = "TL", ++hits;
  if (red(x2, y1)) found = "TR", ++hits;
  if (red(x1, y2)) found = "BL", ++hits;
  if (red(x2, y2)) found = "BR", ++hits;
  return hits == 1 ? found : "?";
}

std::string WithExifOrientation(const std::string& jpeg, int orientation, bool little_endian) {
  std::string tiff =
      little_endian ? std::string("II\x2A\0\x08\0\0\0", 8) : std::string("MM\0\x2A\0\0\0\x08", 8);
  const auto u16 = [&](int v) {
    const char hi = static_cast<char>((v >> 8) & 0xFF), lo = static_cast<char>(v & 0xFF);
    tiff += little_endian ? std::string{lo, hi} : std::string{hi, lo};
  };
  const auto u32 = [&](int v) {
    if (little_endian) {
      u16(v & 0xFFFF), u16(v >> 16);
    } else {
      u16(v >> 16), u16(v & 0xFFFF);
    }
  };
  u16(2);  // two IFD0 entries: an unrelated one first, so the parser has to walk
  u16(0x010F), u16(2), u32(4), tiff += std::string("Cam\0", 4);  // Make = "Cam"
  u16(0x0112), u16(3), u32(1), u16(orientation), u16(0);
  u32(0);  // no next IFD
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const auto length = static_cast<int>(payload.size() + 2);
  std::string segment = "\xFF\xE1";
  segment += static_cast<char>(length >> 8);
  segment += static_cast<char>(length & 0xFF);
  segment += payload;
  return jpeg.substr(0, 2) + segment + jpeg.substr(2);
}

namespace {

std::string Be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string Chunk(const std::string& type, const std::string& data) {
  return Be32(static_cast<std::uint32_t>(data.size())) + type + data +
         Be32(0);  // CRC unchecked by the parser
}

}  // namespace

std::string FakePng(std::uint32_t width, std::uint32_t height) {
  const std::string ihdr = Be32(width) + Be32(height) + std::string("\x08\x02\0\0\0", 5);
  return std::string("\x89PNG\r\n\x1A\n", 8) + Chunk("IHDR", ihdr) +
         Chunk("IDAT", std::string("\x78\x9c\x03\0\0\0\0\x01", 8)) + Chunk("IEND", "");
}

std::string TinyGif() {
  // 2x1 screen, 2-colour global table, one image, trailer.
  return std::string("GIF89a\x02\0\x01\0\x80\0\0", 13) + std::string("\0\0\0\xFF\xFF\xFF", 6) +
         std::string("\x2C\0\0\0\0\x02\0\x01\0\0", 10) + std::string("\x02\x02\x44\x01\0", 5) + ";";
}

bool WriteVideo(const std::string& path, const std::string& fourcc, double fps, int frames, cv::Size size) {
  cv::VideoWriter writer(path, cv::CAP_FFMPEG,
                         cv::VideoWriter::fourcc(fourcc[0], fourcc[1], fourcc[2], fourcc[3]), fps, size);
  if (!writer.isOpened()) return false;
  for (int i = 0; i < frames; ++i) {
    cv::Mat frame(size, CV_8UC3, cv::Scalar((i * 7) % 256, (i * 13) % 256, 128));
    cv::putText(frame, std::to_string(i), {4, size.height / 2}, cv::FONT_HERSHEY_SIMPLEX, 1.0,
                cv::Scalar(255, 255, 255), 2);
    writer.write(frame);
  }
  writer.release();
  return true;
}

bool RemuxRotated(const std::string& from, const std::string& to, int clockwise) {
  AVFormatContext* in = nullptr;
  if (avformat_open_input(&in, from.c_str(), nullptr, nullptr) < 0) return false;
  AVFormatContext* out = nullptr;
  bool ok = avformat_find_stream_info(in, nullptr) >= 0 &&
            avformat_alloc_output_context2(&out, nullptr, "mp4", to.c_str()) >= 0;
  AVStream* stream = ok ? avformat_new_stream(out, nullptr) : nullptr;
  ok = ok && stream != nullptr && avcodec_parameters_copy(stream->codecpar, in->streams[0]->codecpar) >= 0;
  if (ok) {
    stream->codecpar->codec_tag = 0;
    stream->time_base = in->streams[0]->time_base;
    auto* matrix = reinterpret_cast<std::int32_t*>(
        av_stream_new_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(std::int32_t)));
    ok = matrix != nullptr;
    if (ok) av_display_rotation_set(matrix, clockwise);  // "a pure clockwise rotation" (display.h)
  }
  ok =
      ok && avio_open(&out->pb, to.c_str(), AVIO_FLAG_WRITE) >= 0 && avformat_write_header(out, nullptr) >= 0;
  if (ok) {
    AVPacket* packet = av_packet_alloc();
    while (av_read_frame(in, packet) >= 0) {
      if (packet->stream_index == 0) {
        av_packet_rescale_ts(packet, in->streams[0]->time_base, stream->time_base);
        ok = ok && av_interleaved_write_frame(out, packet) >= 0;
      }
      av_packet_unref(packet);
    }
    av_packet_free(&packet);
    ok = av_write_trailer(out) >= 0 && ok;
  }
  if (out != nullptr && out->pb != nullptr) avio_closep(&out->pb);
  avformat_free_context(out);
  avformat_close_input(&in);
  return ok;
}

}  // namespace runnel::functions::testing
