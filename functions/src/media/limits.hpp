// Decode limits of the media family that code outside the module needs too (builtins.cpp hands
// them to OpenCV through the environment before the module loads). No OpenCV here.
#pragma once

#include <cstdint>

namespace runnel::functions::media {

// The largest max_pixels a config may ask for; OpenCV's own cap is set to the same (builtins.cpp).
inline constexpr std::uint64_t kMaxPixelsCeiling = 268'435'456;  // 16384 x 16384
// Longest side we decode; JPEG and WebP cannot exceed it anyway.
inline constexpr std::uint32_t kMaxDecodeSide = 65535;

}  // namespace runnel::functions::media
