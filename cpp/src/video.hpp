// A model (manifest + runner + memory settings, shared) and a video (everything one video
// owns). Per frame t (docs/protocol.md): encode_memory of frame t-1 for every group (of the
// frame, or of encode_query's outputs for it when its contract reads those), encode_query of
// frame t, match per group into its objects' readout rows, decode of all objects at once, then
// each group keeps or drops the previous frame's slot.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bank.hpp"
#include "image.hpp"
#include "manifest.hpp"
#include "runner.hpp"
#include "tensor.hpp"

namespace hmmn {

struct Model {
  Manifest manifest;
  std::unique_ptr<Runner> runner;
  int capacity = 0, mem_every = 0;  // the options', else the manifest's
};

std::shared_ptr<Model> open_model(const std::string& folder, const RunnerOptions& options, int capacity, int mem_every);

class Video {
 public:
  Video(std::shared_ptr<const Model> model, const hmmn_image& frame, const hmmn_labels& labels);

  int height() const { return height_; }
  int width() const { return width_; }
  std::vector<int32_t> object_ids() const;
  const std::vector<GroupBank>& groups() const { return groups_; }

  // labels_out [h0 * w0]; probs_out null or [(N+1) * h0 * w0]
  void step(const hmmn_image& frame, int32_t* labels_out, float* probs_out);
  void add_objects(const hmmn_labels& labels);
  void remove_objects(const std::vector<int32_t>& ids);

 private:
  void allocate_objects(Buffer probs);  // per-object buffers for the current groups; probs [K, H, W]
  std::vector<int32_t> new_labels(const hmmn_labels& labels) const;
  void run_query(const Buffer& frame);            // encode_query of frame into query_
  Binding query_output(const std::string& name) const;  // one of query_, bound by its contract name
  void memory_feeds(View masks);                  // feeds_ = encode_memory's inputs for frame t-1
  View probs_rows(int64_t begin, int64_t end) const { return probs_.rows(begin, end); }
  int padded_height() const { return height_ + pad_.top + pad_.bottom; }  // H
  int padded_width() const { return width_ + pad_.left + pad_.right; }     // W

  std::shared_ptr<const Model> model_;
  int height_, width_;
  Padding pad_;
  DimValues dims_;                   // N = 1 here; per-object shapes use with_objects
  Buffer frame_prev_, frame_cur_;    // [1, 3, H, W] float32: frames t-1 and t
  std::vector<Buffer> query_;        // encode_query's outputs, in the contract's order
  std::vector<const char*> query_names_;
  Buffer pad_tensor_;                // [4] int32: top, bottom, left, right
  std::vector<GroupBank> groups_;
  int t_ = 0;                        // index of the last frame with probabilities
  Buffer probs_, objects_sum_, logits_;  // [K, H, W], [1, H, W], [K, H, W] (decode's outputs)
  Buffer readouts_[3];               // readout16, readout8, readout4: [N, ...] rows of every group's objects
  std::vector<Binding> feeds_, outs_;  // reused per graph call
};

}  // namespace hmmn
