// The memory policy of one object group, without buffers (docs/protocol.md, "Slots").
// The group's first frame and every mem_every-th frame after it are kept in the 1/16 memory;
// the previous frame is always read; past `capacity` slots the oldest kept slot after the
// first frame is overwritten.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hmmn {

// The limits of the settings, as Python's hmmn_ref/protocol.py MINIMUM (tests/data/protocol_cases.json
// holds both to the same cases). Defaults are not here: they are the manifest's.
constexpr int kMinCapacity = 2;  // slots read: the first frame and the previous one
constexpr int kMinMemEvery = 1;

// What is wrong with these settings ("" when nothing), worded as Python's settings_problem.
std::string settings_problem(int capacity, int mem_every);

class SlotPolicy {
 public:
  SlotPolicy(int start, int capacity, int mem_every);  // Error(ARGUMENT) for settings below their limits

  int start() const { return start_; }
  int capacity() const { return capacity_; }
  int permanent() const { return static_cast<int>(frames_.size()); }  // P: kept slots 0..P-1
  int slots_read() const { return permanent() + 1; }                   // T = P + 1, previous frame last
  const std::vector<int>& frames() const { return frames_; }            // frame index held by each kept slot

  // Where encode_memory writes frame t-1: 1/16 slot P; fine slot 0 on the group's first call, else 1.
  int slot16() const { return permanent(); }
  int fine_slot() const { return permanent() == 0 ? 0 : 1; }

  // slot_age of the T slots read when the previous frame is `previous`: per slot, how many
  // of the T slots hold a newer frame (T-1..0 in temporal order, 0 for the previous frame).
  std::vector<int32_t> ages(int previous) const;

  // After the frame: is `previous` kept (slot P appended, or an evicted slot overwritten)?
  struct Decision {
    enum Kind { kDrop, kAppend, kReplace } kind;
    int slot;  // kAppend: P (already in place); kReplace: the slot to overwrite with slot P
  };
  Decision decide(int previous) const;
  void apply(const Decision& d, int previous);  // updates the slot frames

 private:
  int start_, capacity_, mem_every_;
  std::vector<int> frames_;
};

}  // namespace hmmn
