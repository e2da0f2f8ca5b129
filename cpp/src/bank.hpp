// The memory bank of one object group: buffers for `capacity` 1/16 slots allocated at start,
// written in place by encode_memory and match, read by match (docs/protocol.md).
#pragma once

#include <cstdint>
#include <vector>

#include "manifest.hpp"
#include "protocol.hpp"
#include "runner.hpp"
#include "tensor.hpp"

namespace hmmn {

class GroupBank {
 public:
  // labels: object ids in channel order; start: the group's first frame; dims: the video's sizes.
  GroupBank(std::vector<int32_t> labels, int start, int capacity, int mem_every, const Manifest& manifest,
            const DimValues& dims);

  const std::vector<int32_t>& labels() const { return labels_; }
  const SlotPolicy& policy() const { return policy_; }

  // encode_memory's outputs for the previous frame: views into slot P (1/16) and the fine slot.
  void memory_targets(std::vector<Binding>& out) const;
  // match's bank inputs (T = P + 1 slots, ages written only when they change) and its tracks_out.
  void match_inputs(int previous, std::vector<Binding>& feeds);
  void match_outputs(std::vector<Binding>& out) const;
  // After the frame: keep or drop the previous frame's slot; swap the tracking-map buffers.
  void update(int previous);
  // Keep only objects `keep` (indices into labels): one copy, on removal only.
  void select_objects(const std::vector<size_t>& keep);

 private:
  std::vector<int32_t> labels_;
  SlotPolicy policy_;
  Buffer key16_, value16_;      // [C, N, Ck, h, w], [C, N, Cv, h, w]
  Buffer tracks_, tracks_out_;  // [C, N, h, w] int32: match reads tracks, writes tracks_out (never aliased)
  Buffer slot_age_;             // [C] int32
  Buffer fine_[4];              // key8, value8, key4, value4: [2, N, h, w, p, C]; slot 0 first frame, 1 previous
  std::vector<int32_t> ages_written_;
};

}  // namespace hmmn
