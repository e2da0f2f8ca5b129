#include "protocol.hpp"

#include <string>

#include "error.hpp"

namespace hmmn {

std::string settings_problem(int capacity, int mem_every) {
  if (capacity < kMinCapacity)
    return "capacity must be a whole number >= " + std::to_string(kMinCapacity) + " (the first and the previous frame), got " +
           std::to_string(capacity);
  if (mem_every < kMinMemEvery)
    return "mem_every must be a whole number >= " + std::to_string(kMinMemEvery) + ", got " + std::to_string(mem_every);
  return "";
}

SlotPolicy::SlotPolicy(int start, int capacity, int mem_every) : start_(start), capacity_(capacity), mem_every_(mem_every) {
  const std::string problem = settings_problem(capacity, mem_every);
  if (!problem.empty()) fail(HMMN_ERROR_ARGUMENT, problem);
  frames_.reserve(static_cast<size_t>(capacity));
}

std::vector<int32_t> SlotPolicy::ages(int previous) const {
  std::vector<int> all = frames_;
  all.push_back(previous);
  std::vector<int32_t> out;
  for (int f : all) {
    int32_t newer = 0;
    for (int other : all) newer += other > f;
    out.push_back(newer);
  }
  return out;
}

SlotPolicy::Decision SlotPolicy::decide(int previous) const {
  const bool keep = (previous - start_) % mem_every_ == 0;
  if (!keep) return {Decision::kDrop, -1};
  if (slots_read() < capacity_) return {Decision::kAppend, permanent()};
  if (permanent() > 1) {  // full: the oldest kept slot after the first frame
    int oldest = 1;
    for (int s = 2; s < permanent(); ++s)
      if (frames_[static_cast<size_t>(s)] < frames_[static_cast<size_t>(oldest)]) oldest = s;
    return {Decision::kReplace, oldest};
  }
  return {Decision::kDrop, -1};  // capacity 2: the previous frame is only read, never kept
}

void SlotPolicy::apply(const Decision& d, int previous) {
  if (d.kind == Decision::kAppend) frames_.push_back(previous);
  if (d.kind == Decision::kReplace) frames_[static_cast<size_t>(d.slot)] = previous;
}

}  // namespace hmmn
