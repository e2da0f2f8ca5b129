#include "image.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "error.hpp"

namespace hmmn {

namespace {
void split(int size, int multiple, int& before, int& after) {
  const int rem = size % multiple;
  const int d = rem ? multiple - rem : 0;
  before = d / 2;
  after = d - d / 2;
}

std::string size_text(int h, int w) { return std::to_string(h) + "x" + std::to_string(w); }
}  // namespace

Padding padding_for(int height, int width, int multiple) {
  Padding p;
  split(height, multiple, p.top, p.bottom);
  split(width, multiple, p.left, p.right);
  return p;
}

void check_image(const hmmn_image* image, int height, int width) {
  if (!image) fail(HMMN_ERROR_ARGUMENT, "the frame is a null pointer");
  if (!image->pixels) fail(HMMN_ERROR_ARGUMENT, "the frame's pixels are a null pointer");
  if (image->format != HMMN_RGB8 && image->format != HMMN_BGR8)
    fail(HMMN_ERROR_ARGUMENT, "unknown pixel format " + std::to_string(image->format) + "; use HMMN_RGB8 or HMMN_BGR8");
  if (image->width <= 0 || image->height <= 0)
    fail(HMMN_ERROR_ARGUMENT, "the frame is " + size_text(image->height, image->width) + " (height x width); both must be positive");
  if (image->stride < 3LL * image->width)
    fail(HMMN_ERROR_ARGUMENT, "the frame's stride " + std::to_string(image->stride) + " is less than 3 * width = " +
                                  std::to_string(3LL * image->width) + " bytes");
  if (height > 0 && (image->height != height || image->width != width))
    fail(HMMN_ERROR_ARGUMENT, "frame is " + size_text(image->height, image->width) + " but this video is " +
                                  size_text(height, width) + "; resize it or start a new video");
}

void check_labels(const hmmn_labels* labels, int height, int width) {
  if (!labels) fail(HMMN_ERROR_ARGUMENT, "the label map is a null pointer");
  if (!labels->ids) fail(HMMN_ERROR_ARGUMENT, "the label map's ids are a null pointer");
  if (labels->stride < labels->width)
    fail(HMMN_ERROR_ARGUMENT, "the label map's stride " + std::to_string(labels->stride) + " is less than its width " +
                                  std::to_string(labels->width) + " (the stride counts int32 elements)");
  if (labels->height != height || labels->width != width)
    fail(HMMN_ERROR_ARGUMENT, "label map is " + size_text(labels->height, labels->width) + " but the frames are " +
                                  size_text(height, width) + "; resize it with nearest-neighbour sampling");
}

void write_frame(const hmmn_image& image, const Padding& pad, float* frame, int padded_h, int padded_w) {
  const size_t plane = static_cast<size_t>(padded_h) * static_cast<size_t>(padded_w);
  const int r = image.format == HMMN_BGR8 ? 2 : 0, b = 2 - r;  // byte offsets of red and blue
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* src = image.pixels + static_cast<int64_t>(y) * image.stride;
    float* dst = frame + static_cast<size_t>(y + pad.top) * static_cast<size_t>(padded_w) + static_cast<size_t>(pad.left);
    for (int x = 0; x < image.width; ++x, src += 3) {
      dst[x] = static_cast<float>(src[r]) / 255.0f;  // as torch divides uint8 frames (float32)
      dst[plane + static_cast<size_t>(x)] = static_cast<float>(src[1]) / 255.0f;
      dst[2 * plane + static_cast<size_t>(x)] = static_cast<float>(src[b]) / 255.0f;
    }
  }
}

std::vector<int32_t> object_ids(const hmmn_labels& labels) {
  std::set<int32_t> ids;
  for (int y = 0; y < labels.height; ++y) {
    const int32_t* row = labels.ids + static_cast<int64_t>(y) * labels.stride;
    for (int x = 0; x < labels.width; ++x)
      if (row[x] != 0) ids.insert(row[x]);
  }
  return std::vector<int32_t>(ids.begin(), ids.end());
}

void write_one_hot(const hmmn_labels& labels, const std::vector<int32_t>& ids, const Padding& pad, float* probs,
                   int padded_h, int padded_w) {
  const size_t plane = static_cast<size_t>(padded_h) * static_cast<size_t>(padded_w);
  std::fill(probs, probs + plane * (ids.size() + 1), 0.0f);
  for (int y = 0; y < labels.height; ++y) {
    const int32_t* row = labels.ids + static_cast<int64_t>(y) * labels.stride;
    const size_t base = static_cast<size_t>(y + pad.top) * static_cast<size_t>(padded_w) + static_cast<size_t>(pad.left);
    for (int x = 0; x < labels.width; ++x) {
      auto it = std::lower_bound(ids.begin(), ids.end(), row[x]);
      const bool object = row[x] != 0 && it != ids.end() && *it == row[x];  // other ids count as background
      const size_t channel = object ? 1 + static_cast<size_t>(it - ids.begin()) : 0;
      probs[channel * plane + base + static_cast<size_t>(x)] = 1.0f;
    }
  }
}

void write_labels(const float* logits, int k, int padded_h, int padded_w, const Padding& pad,
                  const std::vector<int32_t>& ids, int32_t* out) {
  const size_t plane = static_cast<size_t>(padded_h) * static_cast<size_t>(padded_w);
  const int h0 = padded_h - pad.top - pad.bottom, w0 = padded_w - pad.left - pad.right;
  for (int y = 0; y < h0; ++y) {
    for (int x = 0; x < w0; ++x) {
      const size_t at = static_cast<size_t>(y + pad.top) * static_cast<size_t>(padded_w) + static_cast<size_t>(x + pad.left);
      int best = 0;
      for (int c = 1; c < k; ++c)
        if (logits[static_cast<size_t>(c) * plane + at] > logits[static_cast<size_t>(best) * plane + at]) best = c;
      out[static_cast<size_t>(y) * static_cast<size_t>(w0) + static_cast<size_t>(x)] = best == 0 ? 0 : ids[static_cast<size_t>(best - 1)];
    }
  }
}

void write_probs(const float* logits, int k, int padded_h, int padded_w, const Padding& pad, float* out) {
  const size_t plane = static_cast<size_t>(padded_h) * static_cast<size_t>(padded_w);
  const int h0 = padded_h - pad.top - pad.bottom, w0 = padded_w - pad.left - pad.right;
  const size_t out_plane = static_cast<size_t>(h0) * static_cast<size_t>(w0);
  for (int y = 0; y < h0; ++y) {
    for (int x = 0; x < w0; ++x) {
      const size_t at = static_cast<size_t>(y + pad.top) * static_cast<size_t>(padded_w) + static_cast<size_t>(x + pad.left);
      const size_t o = static_cast<size_t>(y) * static_cast<size_t>(w0) + static_cast<size_t>(x);
      float top = logits[at];
      for (int c = 1; c < k; ++c) top = std::max(top, logits[static_cast<size_t>(c) * plane + at]);
      double sum = 0;
      for (int c = 0; c < k; ++c) sum += std::exp(static_cast<double>(logits[static_cast<size_t>(c) * plane + at] - top));
      for (int c = 0; c < k; ++c)
        out[static_cast<size_t>(c) * out_plane + o] =
            static_cast<float>(std::exp(static_cast<double>(logits[static_cast<size_t>(c) * plane + at] - top)) / sum);
    }
  }
}

}  // namespace hmmn
