// JPEG frames for hmmn_segment (libjpeg), when the build found it.
#pragma once

#include <string>

#include "png_io.hpp"

// Throws std::runtime_error naming the file when it cannot be read.
RgbImage read_jpeg_rgb(const std::string& path);
