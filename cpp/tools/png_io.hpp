// PNG frames and label maps for hmmn_segment (libpng).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // RGB, row-major, stride 3 * width
};

struct LabelImage {
  int width = 0, height = 0;
  std::vector<int32_t> ids;      // row-major
  std::vector<uint8_t> palette;  // RGB triples (the PNG's own, or the DAVIS palette for greyscale)
};

// Each throws std::runtime_error naming the file when it cannot be read or written.
RgbImage read_png_rgb(const std::string& path);
LabelImage read_png_labels(const std::string& path);  // palette or greyscale PNG
void write_png_labels(const std::string& path, const int32_t* ids, int width, int height,
                      const std::vector<uint8_t>& palette);  // ids must be 0..255
std::vector<uint8_t> davis_palette();
