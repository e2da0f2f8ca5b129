// Frames and label maps in and out: padding to the manifest's multiple, RGB/BGR to float planes,
// label ids to one-hot probabilities, logits to label ids and probabilities (cropped).
#pragma once

#include <cstdint>
#include <vector>

#include "hmmn/hmmn.h"

namespace hmmn {

struct Padding {
  int top = 0, bottom = 0, left = 0, right = 0;
};

// Zero padding that makes both sides multiples of `multiple` (the manifest's input.multiple),
// split as hmmn_ref.video.padding_for.
Padding padding_for(int height, int width, int multiple);

// Error(ARGUMENT) unless the image is usable and height x width.
void check_image(const hmmn_image* image, int height, int width);
void check_labels(const hmmn_labels* labels, int height, int width);

// frame [1, 3, H, W] float32 (H, W padded): RGB / 255 inside the padding, which stays zero.
void write_frame(const hmmn_image& image, const Padding& pad, float* frame, int padded_h, int padded_w);

// Object ids of a label map, ascending (0 is the background).
std::vector<int32_t> object_ids(const hmmn_labels& labels);

// probs [1 + ids.size(), H, W] padded: background then one plane per id, zero in the padding.
void write_one_hot(const hmmn_labels& labels, const std::vector<int32_t>& ids, const Padding& pad, float* probs,
                   int padded_h, int padded_w);

// logits [K, H, W] padded -> the cropped label map (argmax, first on ties) as ids [0, objects...].
void write_labels(const float* logits, int k, int padded_h, int padded_w, const Padding& pad,
                  const std::vector<int32_t>& ids, int32_t* out);
// logits [K, H, W] padded -> softmax over K, cropped: probs [K, h0, w0].
void write_probs(const float* logits, int k, int padded_h, int padded_w, const Padding& pad, float* out);

}  // namespace hmmn
