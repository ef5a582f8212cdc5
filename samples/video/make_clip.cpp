// Writes the short synthetic clip the video sample and the demo upload (samples/data/clip.mp4):
// six one-second "scenes" of different colours with a moving disc and the time printed on each
// frame, so every tile of the contact sheet looks different. H.264 when this OpenCV/FFmpeg can
// write it, else MPEG-4 Part 2.
//
//   make_clip OUTPUT.mp4 [SECONDS] [WIDTH] [HEIGHT]      (defaults: 6 s, 480 x 270, 12 fps)
#include <cstdio>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2 || argc > 5) {
    std::fprintf(stderr, "usage: %s OUTPUT.mp4 [SECONDS] [WIDTH] [HEIGHT]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const int seconds = argc > 2 ? std::stoi(argv[2]) : 6;
  const cv::Size size(argc > 3 ? std::stoi(argv[3]) : 480, argc > 4 ? std::stoi(argv[4]) : 270);
  const int fps = 12;
  if (seconds < 1 || seconds > 3600 || size.width < 16 || size.height < 16 || size.width > 3840 ||
      size.height > 2160) {
    std::fprintf(stderr, "seconds must be 1..3600, the size 16x16..3840x2160\n");
    return 2;
  }
  const cv::Scalar scenes[] = {{90, 40, 20}, {20, 90, 40}, {40, 20, 90},
                               {90, 90, 20}, {20, 90, 90}, {90, 20, 90}};
  for (const char* fourcc : {"avc1", "mp4v"}) {
    cv::VideoWriter writer(path, cv::CAP_FFMPEG,
                           cv::VideoWriter::fourcc(fourcc[0], fourcc[1], fourcc[2], fourcc[3]), fps, size);
    if (!writer.isOpened()) continue;
    for (int i = 0; i < seconds * fps; ++i) {
      cv::Mat frame(size, CV_8UC3, scenes[(i / fps) % 6]);
      const int x = size.width / 8 + (i % fps) * (size.width * 3 / 4) / fps;
      cv::circle(frame, {x, size.height / 2}, size.height / 5, cv::Scalar(40, 200, 250), -1);
      const std::string label =
          "t = " + std::to_string(i / fps) + "." + std::to_string((i % fps) * 10 / fps) + " s";
      cv::putText(frame, label, {size.width / 20, size.height / 6}, cv::FONT_HERSHEY_SIMPLEX,
                  size.height / 180.0, cv::Scalar(255, 255, 255), 2);
      writer.write(frame);
    }
    writer.release();
    std::printf("%s: %d s, %dx%d, %d fps, %s\n", path.c_str(), seconds, size.width, size.height, fps, fourcc);
    return 0;
  }
  std::fprintf(stderr, "this OpenCV cannot write avc1 or mp4v video to %s\n", path.c_str());
  return 1;
}
