# The media family (image.*, video.*): OpenCV's codecs for images; FFmpeg's libraries (the same ones
# OpenCV's videoio uses) for video, to scale kept frames straight to thumbnail size.
# Included from functions/CMakeLists.txt.
find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
find_package(PkgConfig REQUIRED)
pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libavutil libswscale)
target_sources(runnel_functions PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/register.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/params.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/exif.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/image_header.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/image_ops.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/image_functions.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/video_source.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/video_decoder.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/video_functions.cpp)
target_include_directories(runnel_functions SYSTEM PRIVATE ${OpenCV_INCLUDE_DIRS})
target_link_libraries(runnel_functions PRIVATE ${OpenCV_LIBS} PkgConfig::FFMPEG)
