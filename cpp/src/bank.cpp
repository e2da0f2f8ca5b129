#include "bank.hpp"

#include <cstring>
#include <utility>

namespace hmmn {

namespace {
const char* const kFineNames[4] = {"key8", "value8", "key4", "value4"};
const char* const kFineInputs[4] = {"mem_key8", "mem_value8", "mem_key4", "mem_value4"};

Buffer alloc(const GraphSpec& match, const char* input, int64_t leading, const DimValues& dims) {
  const TensorSpec& spec = match.input(input);
  Shape shape = spec.shape(dims);
  shape[0] = leading;
  return Buffer(spec.dtype, shape);
}

// A copy of b [S, N, ...] with only objects `keep` of axis 1.
Buffer select_axis1(const Buffer& b, const std::vector<size_t>& keep) {
  Shape shape = b.shape();
  const size_t n = static_cast<size_t>(shape[1]);
  const size_t inner = b.row_bytes() / n;  // bytes of one object in one slot
  shape[1] = static_cast<int64_t>(keep.size());
  Buffer out(b.view().dtype, shape);
  for (int64_t s = 0; s < shape[0]; ++s)
    for (size_t i = 0; i < keep.size(); ++i)
      std::memcpy(out.row(s) + i * inner, b.row(s) + keep[i] * inner, inner);
  return out;
}
}  // namespace

GroupBank::GroupBank(std::vector<int32_t> labels, int start, int capacity, int mem_every, const Manifest& manifest,
                     const DimValues& dims)
    : labels_(std::move(labels)), policy_(start, capacity, mem_every) {
  const GraphSpec& match = manifest.graph(kMatch);
  const DimValues d = dims.with_objects(static_cast<int64_t>(labels_.size()));
  key16_ = alloc(match, "mem_key16", capacity, d);
  value16_ = alloc(match, "mem_value16", capacity, d);
  tracks_ = alloc(match, "tracks", capacity, d);
  tracks_out_ = alloc(match, "tracks", capacity, d);
  slot_age_ = alloc(match, "slot_age", capacity, d);
  for (int i = 0; i < 4; ++i) fine_[i] = alloc(match, kFineInputs[i], 2, d);
}

void GroupBank::memory_targets(std::vector<Binding>& out) const {
  const int s16 = policy_.slot16(), fine = policy_.fine_slot();
  out.push_back({"key16", key16_.at(s16)});  // [N, ...] views of one slot
  out.push_back({"value16", value16_.at(s16)});
  for (int i = 0; i < 4; ++i) out.push_back({kFineNames[i], fine_[i].at(fine)});
}

void GroupBank::match_inputs(int previous, std::vector<Binding>& feeds) {
  const int t = policy_.slots_read();
  std::vector<int32_t> ages = policy_.ages(previous);
  if (ages != ages_written_) {  // changes only when a slot is kept or replaced
    std::memcpy(slot_age_.as<int32_t>(), ages.data(), ages.size() * sizeof(int32_t));
    ages_written_ = std::move(ages);
  }
  feeds.push_back({"mem_key16", key16_.rows(0, t)});
  feeds.push_back({"mem_value16", value16_.rows(0, t)});
  feeds.push_back({"tracks", tracks_.rows(0, t)});
  feeds.push_back({"slot_age", slot_age_.rows(0, t)});
  for (int i = 0; i < 4; ++i) feeds.push_back({kFineInputs[i], fine_[i].view()});
}

void GroupBank::match_outputs(std::vector<Binding>& out) const {
  out.push_back({"tracks_out", tracks_out_.rows(0, policy_.slots_read())});
}

void GroupBank::update(int previous) {
  const int last = policy_.slots_read() - 1;  // slot P: the previous frame
  const SlotPolicy::Decision d = policy_.decide(previous);
  if (d.kind == SlotPolicy::Decision::kReplace) {  // one slot copy, in place
    for (Buffer* b : {&key16_, &value16_, &tracks_out_}) std::memcpy(b->row(d.slot), b->row(last), b->row_bytes());
  }
  policy_.apply(d, previous);
  // tracks_out rows 0..P-1 are the kept slots' maps now: swap instead of copying.
  std::swap(tracks_, tracks_out_);
}

void GroupBank::select_objects(const std::vector<size_t>& keep) {
  std::vector<int32_t> labels;
  for (size_t i : keep) labels.push_back(labels_[i]);
  labels_ = std::move(labels);
  for (Buffer* b : {&key16_, &value16_, &tracks_, &tracks_out_}) *b = select_axis1(*b, keep);
  for (Buffer& b : fine_) b = select_axis1(b, keep);
}

}  // namespace hmmn
