// video.thumbnails vs a raw OpenCV grab loop over the same file: 10 s of 1080p at 25 fps.
//
// The clip is written with cv::VideoWriter as H.264 (avc1) in MP4 when this OpenCV/FFmpeg can
// encode it, else MPEG-4 Part 2 (mp4v); the program says which. video.thumbnails runs with its
// defaults (a 320 px thumbnail every second and a contact sheet) through the Registry. Each figure
// is the best of several rounds after one warm-up round, in wall time and in CPU time (this
// process's, every thread: both sides decode with FFmpeg's threads). On a shared machine the CPU
// time is the steadier figure; the load average is printed with the results.
//
// Usage: bench_media_video [--quick] [--rounds N] [--keep DIR]
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <string>

#include "bench_context.hpp"

namespace fs = std::filesystem;
using runnel::functions::bench::BenchContext;
using runnel::functions::bench::SecondsSince;

namespace {

// Textured background panning right, plus a moving disc: motion the encoder has to code.
std::string WriteClip(const fs::path& dir, int seconds, std::string& codec) {
  const cv::Size size(1920, 1080);
  const double fps = 25;
  cv::Mat background(size.height, size.width * 2, CV_8UC3);
  cv::randu(background, cv::Scalar::all(0), cv::Scalar::all(40));
  for (int x = 0; x < background.cols; x += 64) {
    cv::line(background, {x, 0}, {x + 300, size.height}, cv::Scalar(200, 120, 40), 6);
  }
  for (const auto& [fourcc, name] :
       {std::pair{"avc1", "H.264 (avc1)"}, std::pair{"mp4v", "MPEG-4 Part 2 (mp4v)"}}) {
    auto path = (dir / (std::string("clip-") + fourcc + ".mp4")).string();
    if (fs::exists(path)) {
      codec = name;
      return path;
    }
    cv::VideoWriter writer(path, cv::CAP_FFMPEG,
                           cv::VideoWriter::fourcc(fourcc[0], fourcc[1], fourcc[2], fourcc[3]), fps, size);
    if (!writer.isOpened()) continue;
    const int frames = seconds * static_cast<int>(fps);
    for (int i = 0; i < frames; ++i) {
      cv::Mat frame = background(cv::Rect(i * 4 % size.width, 0, size.width, size.height)).clone();
      cv::circle(frame, {200 + i * 6, 540}, 150, cv::Scalar(30, 200, 250), -1);
      cv::putText(frame, std::to_string(i), {60, 120}, cv::FONT_HERSHEY_SIMPLEX, 3, cv::Scalar(255, 255, 255),
                  5);
      writer.write(frame);
    }
    writer.release();
    codec = name;
    return path;
  }
  std::fprintf(stderr, "neither avc1 nor mp4v can be written here\n");
  std::exit(1);
}

// CPU seconds used by this process so far, every thread counted.
double ProcessCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

// NOLINTNEXTLINE(bugprone-exception-escape): a bench that throws is meant to abort with the error
int main(int argc, char** argv) {
  bool quick = false;
  int rounds = 3;
  std::string keep;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (arg == "--keep" && i + 1 < argc) {
      keep = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--rounds N] [--keep DIR]\n", argv[0]);
      return 2;
    }
  }
  const int seconds = quick ? 3 : 10;
  if (quick) rounds = 1;

  char pattern[] = "/tmp/runnel-bench-video-XXXXXX";
  const fs::path dir = keep.empty() ? fs::path(::mkdtemp(pattern)) : fs::path(keep);
  fs::create_directories(dir);
  std::string codec;
  std::printf("writing a %d s 1920x1080 25 fps clip ...\n", seconds);
  const auto start_write = std::chrono::steady_clock::now();
  const std::string clip = WriteClip(dir, seconds, codec);
  std::printf("  %s, %.1f MB, written in %.1f s\n", codec.c_str(),
              static_cast<double>(fs::file_size(clip)) / 1e6, SecondsSince(start_write));

  BenchContext ctx(dir / "out");
  const auto thumbnails = runnel::functions::Builtins().Create("video.thumbnails", nlohmann::json::object());
  double raw_best = 1e9, raw_cpu_best = 1e9;
  double fn_best = 1e9, fn_cpu_best = 1e9;
  long frames = 0;
  std::size_t outputs = 0;
  for (int r = 0; r < rounds + 1; ++r) {  // round 0 warms the page cache and FFmpeg, not counted
    auto start = std::chrono::steady_clock::now();
    double cpu_start = ProcessCpuSeconds();
    cv::VideoCapture capture(clip, cv::CAP_FFMPEG);
    frames = 0;
    while (capture.grab()) ++frames;
    capture.release();
    if (r > 0) {
      raw_best = std::min(raw_best, SecondsSince(start));
      raw_cpu_best = std::min(raw_cpu_best, ProcessCpuSeconds() - cpu_start);
    }

    start = std::chrono::steady_clock::now();
    cpu_start = ProcessCpuSeconds();
    const auto result = thumbnails->Handle(runnel::functions::bench::FileEvent(clip, "ev1"), ctx);
    if (r > 0) {
      fn_best = std::min(fn_best, SecondsSince(start));
      fn_cpu_best = std::min(fn_cpu_best, ProcessCpuSeconds() - cpu_start);
    }
    outputs = result.files.size();
  }
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  std::printf("\n%s, %ld frames, best of %d rounds (load average %.2f %.2f %.2f)\n", codec.c_str(), frames,
              rounds, load[0], load[1], load[2]);
  std::printf("                                        wall               CPU (all threads)\n");
  std::printf("  raw grab loop (VideoCapture::grab)   %7.3f s  %6.1f fps  %7.3f s\n", raw_best,
              static_cast<double>(frames) / raw_best, raw_cpu_best);
  std::printf("  video.thumbnails (%zu outputs)       %7.3f s  %6.1f fps  %7.3f s\n", outputs, fn_best,
              static_cast<double>(frames) / fn_best, fn_cpu_best);
  std::printf(
      "ratio video.thumbnails / raw grab: wall %.3f (overhead %+.1f%%), CPU %.3f (overhead %+.1f%%); "
      "target <= 1.10\n",
      fn_best / raw_best, 100 * (fn_best / raw_best - 1), fn_cpu_best / raw_cpu_best,
      100 * (fn_cpu_best / raw_cpu_best - 1));
  if (keep.empty()) fs::remove_all(dir);
  return 0;
}
