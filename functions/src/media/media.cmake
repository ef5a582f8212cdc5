# The media family (image.*, video.*): OpenCV's codecs for images; FFmpeg's libraries (the same ones
# OpenCV's videoio uses) for video, to scale kept frames straight to thumbnail size.
# Included from functions/CMakeLists.txt. Built as the module librunnel-media.so, so that only
# processes running a media function load OpenCV and FFmpeg (modules/builtin_module.hpp):
#   runnel_media         the family as a static library (the module's code; its unit tests link it)
#   runnel_media_module  librunnel-media.so: that library plus its entry point, nothing else exported
find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
find_package(PkgConfig REQUIRED)
pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libavutil libswscale)
add_library(runnel_media STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/register.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/params.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/exif.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/image_header.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/image_ops.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/image_functions.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/video_source.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/video_decoder.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/media/video_functions.cpp)
target_include_directories(runnel_media PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_include_directories(runnel_media SYSTEM PUBLIC ${OpenCV_INCLUDE_DIRS})
target_link_libraries(runnel_media PUBLIC runnel::functions ${OpenCV_LIBS} PkgConfig::FFMPEG)
set_target_properties(runnel_media PROPERTIES POSITION_INDEPENDENT_CODE ON)
runnel_warnings(runnel_media)

add_library(runnel_media_module MODULE ${CMAKE_CURRENT_SOURCE_DIR}/src/media/module_entry.cpp)
target_include_directories(runnel_media_module PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_link_libraries(runnel_media_module PRIVATE runnel_media)
# Hidden: everything but the entry point, so the module's copy of the SDK never interposes on the
# executable's. --as-needed: only the libraries it really uses (OpenCV, not librdkafka or yaml-cpp).
target_link_options(runnel_media_module PRIVATE -Wl,--exclude-libs,ALL -Wl,--as-needed -Wl,-z,defs)
set_target_properties(runnel_media_module PROPERTIES OUTPUT_NAME runnel-media PREFIX lib
                      LIBRARY_OUTPUT_DIRECTORY ${RUNNEL_RUNTIME_DIR}
                      CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
runnel_warnings(runnel_media_module)
install(TARGETS runnel_media_module LIBRARY DESTINATION ${RUNNEL_INSTALL_MODULEDIR})
