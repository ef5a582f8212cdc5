// image.thumbnail vs vipsthumbnail: 256 px thumbnails of 4000x3000 JPEGs on one core.
//
// Both sides are pinned to CPU 0. image.thumbnail runs in-process through the Registry with
// cv::setNumThreads(1); vipsthumbnail runs once over all files with VIPS_CONCURRENCY=1. vipsthumbnail
// pays a process start and libvips initialisation, measured separately (the same command on one
// 16x16 JPEG) and reported both ways. Each figure is the best of several rounds.
//
// Usage: bench_media_thumbnail [--quick] [--files N] [--rounds N] [--keep DIR]
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench_context.hpp"

namespace fs = std::filesystem;
using runnel::functions::bench::BenchContext;
using runnel::functions::bench::SecondsSince;

namespace {

// Half smooth gradients with light noise, half heavy noise: entropy like real photos, and worse.
cv::Mat Photo(int index) {
  cv::Mat image(3000, 4000, CV_8UC3);
  std::mt19937 rng(static_cast<unsigned>(index) + 1);
  const int amplitude = index % 2 == 0 ? 12 : 60;
  cv::Mat noise(image.size(), CV_8UC3);
  cv::randu(noise, cv::Scalar::all(0), cv::Scalar::all(amplitude));
  for (int y = 0; y < image.rows; ++y) {
    auto* row = image.ptr<cv::Vec3b>(y);
    for (int x = 0; x < image.cols; ++x) {
      row[x] =
          cv::Vec3b(static_cast<uchar>((x / 16 + index * 20) % 200), static_cast<uchar>(y * 200 / image.rows),
                    static_cast<uchar>((x + y) % 256 * 200 / 256));
    }
  }
  cv::circle(image, {1000 + 200 * index, 1500}, 600, cv::Scalar(40, 160, 220), -1);
  image += noise;
  return image;
}

double RunCommand(const std::string& command) {
  const auto start = std::chrono::steady_clock::now();
  const int rc = std::system(command.c_str());
  const double seconds = SecondsSince(start);
  if (rc != 0) {
    std::fprintf(stderr, "command failed (%d): %s\n", rc, command.c_str());
    std::exit(1);
  }
  return seconds;
}

}  // namespace

// NOLINTNEXTLINE(bugprone-exception-escape): a bench that throws is meant to abort with the error
int main(int argc, char** argv) {
  bool quick = false;
  int files = 10;
  int rounds = 3;
  std::string keep;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--files" && i + 1 < argc) {
      files = std::atoi(argv[++i]);
    } else if (arg == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (arg == "--keep" && i + 1 < argc) {
      keep = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--files N] [--rounds N] [--keep DIR]\n", argv[0]);
      return 2;
    }
  }
  if (quick) files = 3, rounds = 1;
  if (std::system("command -v vipsthumbnail >/dev/null") != 0) {
    std::fprintf(stderr, "vipsthumbnail not found: apt-get install libvips-tools\n");
    return 1;
  }

  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  if (sched_setaffinity(0, sizeof(one), &one) != 0) std::perror("sched_setaffinity");
  cv::setNumThreads(1);

  char pattern[] = "/tmp/runnel-bench-thumb-XXXXXX";
  const fs::path dir = keep.empty() ? fs::path(::mkdtemp(pattern)) : fs::path(keep);
  fs::create_directories(dir / "in");
  std::vector<std::string> inputs;
  std::uint64_t input_bytes = 0;
  std::printf("generating %d 4000x3000 JPEGs (q90) in %s ...\n", files, (dir / "in").c_str());
  for (int i = 0; i < files; ++i) {
    const auto path = (dir / "in" / ("photo" + std::to_string(i) + ".jpg")).string();
    if (!fs::exists(path)) cv::imwrite(path, Photo(i), {cv::IMWRITE_JPEG_QUALITY, 90});
    input_bytes += fs::file_size(path);
    inputs.push_back(path);
  }
  cv::imwrite((dir / "tiny.jpg").string(), cv::Mat(16, 16, CV_8UC3, cv::Scalar(1, 2, 3)));

  // Runnel, in-process.
  BenchContext ctx(dir / "runnel-out");
  const auto thumbnail = runnel::functions::Builtins().Create(
      "image.thumbnail", {{"sizes", {{{"width", 256}, {"height", 256}}}}, {"quality", 85}});
  double runnel_best = 1e9;
  for (int r = 0; r < rounds + 1; ++r) {  // the first round warms the page cache and is not counted
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      thumbnail->Handle(runnel::functions::bench::FileEvent(inputs[i], "ev" + std::to_string(i)), ctx);
    }
    if (r > 0) runnel_best = std::min(runnel_best, SecondsSince(start));
  }

  // vipsthumbnail, one process over all files, pinned to the same CPU.
  fs::create_directories(dir / "vips-out");
  std::string all;
  for (const auto& path : inputs) all += " '" + path + "'";
  const std::string vips = "VIPS_CONCURRENCY=1 taskset -c 0 vipsthumbnail -s 256 -o '" +
                           (dir / "vips-out").string() + "/%s.jpg[Q=85]'";
  double vips_best = 1e9;
  double start_best = 1e9;
  for (int r = 0; r < rounds + 1; ++r) {
    const double total = RunCommand(vips + all);
    const double startup = RunCommand(vips + " '" + (dir / "tiny.jpg").string() + "'");
    if (r > 0) vips_best = std::min(vips_best, total), start_best = std::min(start_best, startup);
  }
  const double vips_net = std::max(1e-9, vips_best - start_best);

  const double n = static_cast<double>(files);
  std::printf("\n%d files, %.1f MB of JPEG, 256 px box, quality 85, one core (CPU 0), best of %d rounds\n",
              files, static_cast<double>(input_bytes) / 1e6, rounds);
  std::printf("  image.thumbnail (in-process)      %8.3f s  %7.2f images/s  %6.1f ms/image\n", runnel_best,
              n / runnel_best, 1000 * runnel_best / n);
  std::printf("  vipsthumbnail (whole command)     %8.3f s  %7.2f images/s  %6.1f ms/image\n", vips_best,
              n / vips_best, 1000 * vips_best / n);
  std::printf("  vipsthumbnail start-up (1 tiny)   %8.3f s\n", start_best);
  std::printf("  vipsthumbnail minus start-up      %8.3f s  %7.2f images/s  %6.1f ms/image\n", vips_net,
              n / vips_net, 1000 * vips_net / n);
  std::printf(
      "ratio image.thumbnail / vipsthumbnail throughput: %.2fx (whole command), %.2fx (start-up excluded); "
      "target >= 1.5x\n",
      vips_best / runnel_best, vips_net / runnel_best);
  if (keep.empty()) fs::remove_all(dir);
  return 0;
}
