#include "labels.hpp"

#include <dirent.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace hmmnseg {

std::vector<Box> object_boxes(const int32_t* ids, int width, int height, const std::vector<int32_t>& objects) {
  std::map<int32_t, Box> boxes;
  for (int32_t id : objects) boxes[id] = Box{id, width, height, -1, -1, 0};  // width/height: max corner for now
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      auto it = boxes.find(ids[static_cast<size_t>(y) * width + x]);
      if (it == boxes.end()) continue;
      Box& b = it->second;
      b.x = std::min(b.x, x), b.y = std::min(b.y, y);
      b.width = std::max(b.width, x), b.height = std::max(b.height, y);
      ++b.pixels;
    }
  std::vector<Box> out;
  for (int32_t id : objects) {
    Box b = boxes[id];
    if (b.pixels == 0) continue;
    b.width = b.width - b.x + 1, b.height = b.height - b.y + 1;
    out.push_back(b);
  }
  return out;
}

void write_gray(const int32_t* ids, int width, int height, uint8_t* out, int stride) {
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      out[static_cast<size_t>(y) * stride + x] = static_cast<uint8_t>(ids[static_cast<size_t>(y) * width + x]);
}

void paint_overlay(const uint8_t* rgb, int rgb_stride, const int32_t* ids, int width, int height,
                   const std::vector<uint8_t>& palette, uint8_t* out, int out_stride) {
  for (int y = 0; y < height; ++y) {
    const uint8_t* in = rgb + static_cast<size_t>(y) * rgb_stride;
    uint8_t* o = out + static_cast<size_t>(y) * out_stride;
    for (int x = 0; x < width; ++x) {
      const int32_t id = ids[static_cast<size_t>(y) * width + x];
      const size_t c = 3 * static_cast<size_t>(id);
      for (int k = 0; k < 3; ++k)
        o[3 * x + k] = id == 0 || c + 2 >= palette.size() ? in[3 * x + k]
                                                          : static_cast<uint8_t>((in[3 * x + k] + palette[c + k] + 1) / 2);
    }
  }
}

std::map<int64_t, std::string> annotations_by_index(const std::string& folder) {
  DIR* dir = opendir(folder.c_str());
  if (!dir) throw std::runtime_error("cannot open the annotations folder '" + folder + "'");
  std::map<int64_t, std::string> out;
  while (dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name.size() <= 4 || name.size() > 22 || strcasecmp(name.c_str() + name.size() - 4, ".png") != 0) continue;
    const std::string stem = name.substr(0, name.size() - 4);
    if (std::all_of(stem.begin(), stem.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      out[std::stoll(stem)] = folder + "/" + name;
  }
  closedir(dir);
  return out;
}

}  // namespace hmmnseg
