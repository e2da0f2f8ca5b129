// Pixel work of the hmmnseg element, free of GStreamer: label maps out as GRAY8 or as a
// translucent overlay, each object's box, and the annotations folder's frames by index.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hmmnseg {

struct Box {
  int32_t id = 0;
  int x = 0, y = 0, width = 0, height = 0;  // the smallest rectangle holding the object's pixels
  int64_t pixels = 0;
};

// ids: width*height row-major. One box per id of `objects` that covers at least one pixel.
std::vector<Box> object_boxes(const int32_t* ids, int width, int height, const std::vector<int32_t>& objects);

// GRAY8 rows of `stride` bytes: each pixel its id (ids are 0..255: they come from PNG masks).
void write_gray(const int32_t* ids, int width, int height, uint8_t* out, int stride);

// RGB rows: the frame, and where an object is, half the frame and half its palette colour.
void paint_overlay(const uint8_t* rgb, int rgb_stride, const int32_t* ids, int width, int height,
                   const std::vector<uint8_t>& palette, uint8_t* out, int out_stride);

// PNG files of `folder` whose name is a frame index ("00004.png", "4.png") -> their path.
// Throws std::runtime_error when the folder cannot be read.
std::map<int64_t, std::string> annotations_by_index(const std::string& folder);

}  // namespace hmmnseg
