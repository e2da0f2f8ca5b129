// The C ABI: opaque handles over Model and Video, a status from every call, and a
// thread-local message for hmmn_last_error(). No exception crosses this file.
#include <algorithm>
#include <cstring>
#include <new>
#include <string>

#include "error.hpp"
#include "hmmn/hmmn.h"
#include "video.hpp"

struct hmmn_model {
  std::shared_ptr<hmmn::Model> impl;
};
struct hmmn_video {
  std::unique_ptr<hmmn::Video> impl;
};

namespace {
thread_local std::string last_error;

template <typename F>
hmmn_status guarded(F&& body) {
  try {
    last_error.clear();
    body();
    return HMMN_OK;
  } catch (const hmmn::Error& e) {
    last_error = e.what();
    return e.status();
  } catch (const std::bad_alloc&) {
    last_error = "out of memory";
    return HMMN_ERROR_INTERNAL;
  } catch (const std::exception& e) {
    last_error = std::string("internal error: ") + e.what() + " (please report it)";
    return HMMN_ERROR_INTERNAL;
  } catch (...) {
    last_error = "internal error (please report it)";
    return HMMN_ERROR_INTERNAL;
  }
}

void need(const void* pointer, const char* what) {
  if (!pointer) hmmn::fail(HMMN_ERROR_ARGUMENT, std::string(what) + " is a null pointer");
}

// The caller's options, of any struct_size from the first release's up (the rule: hmmn.h).
hmmn_options read_options(const hmmn_options* given) {
  hmmn_options o;
  hmmn_options_init(&o);
  if (!given) return o;
  const size_t size = given->struct_size, known = sizeof(hmmn_options);
  if (size < HMMN_OPTIONS_SIZE_V1)
    hmmn::fail(HMMN_ERROR_ARGUMENT, "hmmn_options.struct_size is " + std::to_string(size) + ", less than the first "
                                    "release's " + std::to_string(HMMN_OPTIONS_SIZE_V1) + ": call hmmn_options_init first");
  const unsigned char* bytes = reinterpret_cast<const unsigned char*>(given);
  for (size_t i = known; i < size; ++i)
    if (bytes[i])
      hmmn::fail(HMMN_ERROR_ARGUMENT, "hmmn_options sets fields this libhmmn " HMMN_VERSION " does not know (byte " +
                                      std::to_string(i) + " of " + std::to_string(size) + "; it knows " +
                                      std::to_string(known) + "): update libhmmn, or leave them zero");
  std::memcpy(&o, given, std::min(size, known));
  o.struct_size = static_cast<uint32_t>(known);
  return o;
}
}  // namespace

extern "C" {

const char* hmmn_last_error(void) { return last_error.c_str(); }

const char* hmmn_version(void) { return HMMN_VERSION; }

hmmn_status hmmn_options_init(hmmn_options* options) {
  return guarded([&] {
    need(options, "options");
    *options = hmmn_options{};
    options->struct_size = sizeof(hmmn_options);
  });
}

hmmn_status hmmn_model_open(const char* folder, const hmmn_options* options, hmmn_model** out) {
  return guarded([&] {
    need(out, "out");
    *out = nullptr;
    need(folder, "folder");
    const hmmn_options o = read_options(options);
    hmmn::RunnerOptions r;
    if (o.backend) r.backend = o.backend;
    if (o.device) r.device = o.device;
    if (o.ort_library) r.ort_library = o.ort_library;
    if (o.threads < 0) hmmn::fail(HMMN_ERROR_ARGUMENT, "threads must be >= 0 (0: the runner's default)");
    r.threads = o.threads;
    auto model = std::make_unique<hmmn_model>();
    model->impl = hmmn::open_model(folder, r, o.capacity, o.mem_every);
    *out = model.release();
  });
}

hmmn_status hmmn_model_close(hmmn_model* model) {
  return guarded([&] { delete model; });
}

hmmn_status hmmn_video_start(hmmn_model* model, const hmmn_image* frame, const hmmn_labels* labels, hmmn_video** out) {
  return guarded([&] {
    need(out, "out");
    *out = nullptr;
    need(model, "model");
    hmmn::check_image(frame, 0, 0);
    need(labels, "labels");
    auto video = std::make_unique<hmmn_video>();
    video->impl = std::make_unique<hmmn::Video>(model->impl, *frame, *labels);
    *out = video.release();
  });
}

hmmn_status hmmn_video_step(hmmn_video* video, const hmmn_image* frame, int32_t* labels_out, size_t labels_count,
                            float* probs_out, size_t probs_count) {
  return guarded([&] {
    if (!video) hmmn::fail(HMMN_ERROR_ARGUMENT, "video is a null pointer: start one with hmmn_video_start before stepping");
    need(labels_out, "labels_out");
    hmmn::Video& v = *video->impl;
    hmmn::check_image(frame, v.height(), v.width());
    const size_t pixels = static_cast<size_t>(v.height()) * static_cast<size_t>(v.width());
    if (labels_count < pixels)
      hmmn::fail(HMMN_ERROR_ARGUMENT, "labels_out holds " + std::to_string(labels_count) + " ids; this video needs " +
                                          std::to_string(pixels) + " (width * height)");
    const size_t k = v.object_ids().size() + 1;
    if (probs_out && probs_count < k * pixels)
      hmmn::fail(HMMN_ERROR_ARGUMENT, "probs_out holds " + std::to_string(probs_count) + " floats; this video needs " +
                                          std::to_string(k * pixels) + " ((objects + 1) * width * height)");
    v.step(*frame, labels_out, probs_out);
  });
}

hmmn_status hmmn_video_add_objects(hmmn_video* video, const hmmn_labels* labels) {
  return guarded([&] {
    need(video, "video");
    need(labels, "labels");
    video->impl->add_objects(*labels);
  });
}

hmmn_status hmmn_video_remove_objects(hmmn_video* video, const int32_t* ids, size_t count) {
  return guarded([&] {
    need(video, "video");
    need(ids, "ids");
    video->impl->remove_objects(std::vector<int32_t>(ids, ids + count));
  });
}

hmmn_status hmmn_video_objects(const hmmn_video* video, int32_t* ids, size_t capacity, size_t* count) {
  return guarded([&] {
    need(video, "video");
    need(count, "count");
    const std::vector<int32_t> all = video->impl->object_ids();
    *count = all.size();
    if (!ids) return;
    if (capacity < all.size())
      hmmn::fail(HMMN_ERROR_ARGUMENT, "ids holds " + std::to_string(capacity) + " entries; the video has " +
                                          std::to_string(all.size()) + " objects");
    std::copy(all.begin(), all.end(), ids);
  });
}

hmmn_status hmmn_video_close(hmmn_video* video) {
  return guarded([&] { delete video; });
}

}  // extern "C"
