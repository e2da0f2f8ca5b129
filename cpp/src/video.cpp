#include "video.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "error.hpp"

namespace hmmn {

namespace {
const char* const kReadouts[3] = {"readout16", "readout8", "readout4"};

Buffer alloc(const TensorSpec& spec, const DimValues& dims) { return Buffer(spec.dtype, spec.shape(dims)); }

}  // namespace

std::shared_ptr<Model> open_model(const std::string& folder, const RunnerOptions& options, int capacity, int mem_every) {
  auto model = std::make_shared<Model>();
  model->manifest = read_manifest(folder);
  if (capacity < 0 || mem_every < 0)
    fail(HMMN_ERROR_ARGUMENT, "capacity and mem_every must not be negative (0 takes the manifest's)");
  model->capacity = capacity > 0 ? capacity : model->manifest.capacity;
  model->mem_every = mem_every > 0 ? mem_every : model->manifest.mem_every;
  const std::string problem = settings_problem(model->capacity, model->mem_every);
  if (!problem.empty()) fail(HMMN_ERROR_ARGUMENT, problem);
  model->runner = make_runner(model->manifest, options);
  return model;
}

Video::Video(std::shared_ptr<const Model> model, const hmmn_image& frame, const hmmn_labels& labels)
    : model_(std::move(model)), height_(frame.height), width_(frame.width),
      pad_(padding_for(frame.height, frame.width, model_->manifest.pad_multiple)) {
  const Manifest& m = model_->manifest;
  dims_ = m.dims(1, 1, padded_height(), padded_width());
  if (dims_.get("h") * dims_.get("w") < m.min_cells_16)
    fail(HMMN_ERROR_ARGUMENT, std::to_string(height_) + "x" + std::to_string(width_) +
                                  " frames are too small for this model (at least " + std::to_string(m.min_cells_16) +
                                  " cells of 16x16 pixels)");
  check_labels(&labels, height_, width_);
  const GraphSpec& q = m.graph(kEncodeQuery);
  frame_prev_ = alloc(q.input("frame"), dims_);
  frame_cur_ = alloc(q.input("frame"), dims_);
  for (const TensorSpec& s : q.outputs) {
    query_.push_back(alloc(s, dims_));
    query_names_.push_back(s.name.c_str());
  }
  pad_tensor_ = Buffer(DType::I32, {4});
  const int32_t pad[4] = {pad_.top, pad_.bottom, pad_.left, pad_.right};
  std::memcpy(pad_tensor_.as<int32_t>(), pad, sizeof(pad));

  const std::vector<int32_t> ids = new_labels(labels);
  write_frame(frame, pad_, frame_prev_.as<float>(), padded_height(), padded_width());
  Buffer probs(DType::F32, {static_cast<int64_t>(ids.size()) + 1, dims_.H(), dims_.W()});
  write_one_hot(labels, ids, pad_, probs.as<float>(), padded_height(), padded_width());
  groups_.emplace_back(ids, 0, model_->capacity, model_->mem_every, m, dims_);
  allocate_objects(std::move(probs));
  bool memorises_frame = false;
  for (const TensorSpec& s : m.graph(kEncodeMemory).inputs) memorises_frame |= s.name == "frame";
  if (!memorises_frame) run_query(frame_prev_);  // its memory reads the first frame's query outputs
}

void Video::run_query(const Buffer& frame) {
  feeds_ = {{"frame", frame.view()}};
  outs_.clear();
  for (size_t i = 0; i < query_.size(); ++i) outs_.push_back({query_names_[i], query_[i].view()});
  model_->runner->run(kEncodeQuery, feeds_.data(), feeds_.size(), outs_.data(), outs_.size());
}

Binding Video::query_output(const std::string& name) const {
  for (size_t i = 0; i < query_.size(); ++i)
    if (name == query_names_[i]) return Binding{query_names_[i], query_[i].view()};
  fail(HMMN_ERROR_ARTIFACT, "encode_query has no output '" + name + "'");
}

void Video::memory_feeds(View masks) {
  // The frame t-1, or encode_query's outputs for it (query_ holds them until this step's query).
  feeds_ = {{"masks", masks}, {"objects_sum", objects_sum_.view()}};
  for (const TensorSpec& s : model_->manifest.graph(kEncodeMemory).inputs) {
    if (s.name == "masks" || s.name == "objects_sum") continue;
    feeds_.push_back(s.name == "frame" ? Binding{"frame", frame_prev_.view()} : query_output(s.name));
  }
}

std::vector<int32_t> Video::object_ids() const {
  std::vector<int32_t> ids;
  for (const GroupBank& g : groups_) ids.insert(ids.end(), g.labels().begin(), g.labels().end());
  return ids;
}

std::vector<int32_t> Video::new_labels(const hmmn_labels& labels) const {
  std::vector<int32_t> ids = hmmn::object_ids(labels);
  if (!ids.empty() && ids.front() < 0)
    fail(HMMN_ERROR_ARGUMENT, "the label map has negative label " + std::to_string(ids.front()) +
                                  "; a label map holds 0 for the background and positive object ids");
  if (ids.empty()) fail(HMMN_ERROR_ARGUMENT, "the label map has no object: every pixel is background (label 0)");
  std::vector<int32_t> clash, existing = object_ids();
  std::sort(existing.begin(), existing.end());
  std::set_intersection(ids.begin(), ids.end(), existing.begin(), existing.end(), std::back_inserter(clash));
  if (!clash.empty()) {
    std::string list;
    for (int32_t c : clash) list += (list.empty() ? "" : ", ") + std::to_string(c);
    fail(HMMN_ERROR_ARGUMENT, "labels [" + list + "] are already objects of this video; new objects need new labels");
  }
  const size_t most = static_cast<size_t>(model_->manifest.max_objects);  // 0: any number
  if (most && existing.size() + ids.size() > most)
    fail(HMMN_ERROR_ARGUMENT, std::to_string(existing.size() + ids.size()) + " objects exceed the export's limit of " +
                                  std::to_string(most) + " (memory.max_objects, its engines' profile); rebuild with "
                                  "hmmn-export --max-objects");
  return ids;
}

void Video::allocate_objects(Buffer probs) {
  const Manifest& m = model_->manifest;
  const DimValues d = dims_.with_objects(static_cast<int64_t>(object_ids().size()));
  for (int i = 0; i < 3; ++i) readouts_[i] = alloc(m.graph(kDecode).input(kReadouts[i]), d);
  logits_ = alloc(m.graph(kDecode).output("logits"), d);
  probs_ = std::move(probs);
  objects_sum_ = Buffer(DType::F32, {1, dims_.H(), dims_.W()});
  // objects_sum = probs[1:] summed over the objects, in channel order
  const size_t plane = static_cast<size_t>(dims_.H() * dims_.W());
  float* sum = objects_sum_.as<float>();
  const float* p = probs_.as<float>();
  for (int64_t c = 1; c < probs_.shape()[0]; ++c)  // K channels, background first
    for (size_t i = 0; i < plane; ++i) sum[i] += p[static_cast<size_t>(c) * plane + i];
}

void Video::step(const hmmn_image& frame, int32_t* labels_out, float* probs_out) {
  check_image(&frame, height_, width_);
  Runner& runner = *model_->runner;
  write_frame(frame, pad_, frame_cur_.as<float>(), padded_height(), padded_width());

  int64_t offset = 0;
  for (const GroupBank& g : groups_) {  // 1. memorise frame t-1 for every group
    const int64_t n = static_cast<int64_t>(g.labels().size());
    memory_feeds(probs_rows(1 + offset, 1 + offset + n));
    outs_.clear();
    g.memory_targets(outs_);
    runner.run(kEncodeMemory, feeds_.data(), feeds_.size(), outs_.data(), outs_.size());
    offset += n;
  }
  run_query(frame_cur_);  // 2. query features of frame t
  offset = 0;
  for (GroupBank& g : groups_) {  // 3. read each group's memory into its objects' readout rows
    const int64_t n = static_cast<int64_t>(g.labels().size());
    feeds_ = {query_output("query_key16"), query_output("query_key8"), query_output("query_key4")};
    g.match_inputs(t_, feeds_);
    outs_.clear();
    for (int i = 0; i < 3; ++i) outs_.push_back({kReadouts[i], readouts_[i].rows(offset, offset + n)});
    g.match_outputs(outs_);
    runner.run(kMatch, feeds_.data(), feeds_.size(), outs_.data(), outs_.size());
    offset += n;
  }
  feeds_.clear();  // 4. decode every object at once (soft aggregation spans them all)
  for (int i = 0; i < 3; ++i) feeds_.push_back({kReadouts[i], readouts_[i].view()});
  for (const char* name : {"fm_query", "fs8", "fs4"}) feeds_.push_back(query_output(name));
  feeds_.push_back({"pad", pad_tensor_.view()});
  outs_ = {{"logits", logits_.view()}, {"probs", probs_.view()}, {"objects_sum", objects_sum_.view()}};
  runner.run(kDecode, feeds_.data(), feeds_.size(), outs_.data(), outs_.size());

  for (GroupBank& g : groups_) g.update(t_);  // 5. keep or drop the previous frame's slot
  std::swap(frame_prev_, frame_cur_);
  ++t_;

  const int k = static_cast<int>(logits_.shape()[0]);
  const int ph = padded_height(), pw = padded_width();
  write_labels(logits_.as<float>(), k, ph, pw, pad_, object_ids(), labels_out);
  if (probs_out) write_probs(logits_.as<float>(), k, ph, pw, pad_, probs_out);
}

void Video::add_objects(const hmmn_labels& labels) {
  check_labels(&labels, height_, width_);
  const std::vector<int32_t> ids = new_labels(labels);
  const int64_t k_old = probs_.shape()[0], m_new = static_cast<int64_t>(ids.size());
  const size_t plane = static_cast<size_t>(dims_.H() * dims_.W());
  Buffer one_hot(DType::F32, {m_new + 1, dims_.H(), dims_.W()});
  write_one_hot(labels, ids, pad_, one_hot.as<float>(), padded_height(), padded_width());
  // merged = [probs * (1 - new_area), one_hot[1:]]: the new objects win where their mask is
  Buffer merged(DType::F32, {k_old + m_new, dims_.H(), dims_.W()});
  const float* oh = one_hot.as<float>();
  float* out = merged.as<float>();
  for (size_t i = 0; i < plane; ++i) {
    float area = 0.0f;
    for (int64_t c = 1; c <= m_new; ++c) area += oh[static_cast<size_t>(c) * plane + i];
    for (int64_t c = 0; c < k_old; ++c)
      out[static_cast<size_t>(c) * plane + i] = probs_.as<float>()[static_cast<size_t>(c) * plane + i] * (1.0f - area);
  }
  std::memcpy(out + static_cast<size_t>(k_old) * plane, oh + plane, static_cast<size_t>(m_new) * plane * sizeof(float));
  groups_.emplace_back(ids, t_, model_->capacity, model_->mem_every, model_->manifest, dims_);
  allocate_objects(std::move(merged));
}

void Video::remove_objects(const std::vector<int32_t>& ids) {
  const std::vector<int32_t> all = object_ids();
  for (int32_t id : ids)
    if (std::find(all.begin(), all.end(), id) == all.end())
      fail(HMMN_ERROR_ARGUMENT, "object " + std::to_string(id) + " is not in this video");
  auto dropped = [&](int32_t id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); };
  if (std::all_of(all.begin(), all.end(), dropped))
    fail(HMMN_ERROR_ARGUMENT, "that would remove every object; start a new video instead");
  const size_t plane = static_cast<size_t>(dims_.H() * dims_.W());
  std::vector<size_t> channels = {0};
  for (size_t i = 0; i < all.size(); ++i)
    if (!dropped(all[i])) channels.push_back(1 + i);
  Buffer probs(DType::F32, {static_cast<int64_t>(channels.size()), dims_.H(), dims_.W()});
  const float* src = probs_.as<float>();
  float* dst = probs.as<float>();
  for (size_t c = 0; c < channels.size(); ++c) std::memcpy(dst + c * plane, src + channels[c] * plane, plane * sizeof(float));
  std::vector<float> gone(plane, 0.0f);  // the dropped objects' probability goes to the background
  for (size_t i = 0; i < all.size(); ++i)
    if (dropped(all[i]))
      for (size_t p = 0; p < plane; ++p) gone[p] += src[(1 + i) * plane + p];
  for (size_t p = 0; p < plane; ++p) dst[p] += gone[p];
  for (GroupBank& g : groups_) {
    std::vector<size_t> keep;
    for (size_t i = 0; i < g.labels().size(); ++i)
      if (!dropped(g.labels()[i])) keep.push_back(i);
    g.select_objects(keep);
  }
  groups_.erase(std::remove_if(groups_.begin(), groups_.end(), [](const GroupBank& g) { return g.labels().empty(); }),
                groups_.end());
  allocate_objects(std::move(probs));
}

}  // namespace hmmn
