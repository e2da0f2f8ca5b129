// hmmnseg: a GStreamer 1.x element over libhmmn (docs/cpp.md, "GStreamer").
//
//   ... ! videoconvert ! hmmnseg artifacts=EXPORT mask=FIRST.png [output=labels|overlay] ! ...
//
// Sink: video/x-raw RGB. Source: the same size, GRAY8 (each pixel its object id, as hmmn-run's
// PNGs) or RGB (the frame with translucent masks). Every buffer carries one
// GstVideoRegionOfInterestMeta per object present (roi type "hmmn-object", id = object id, a
// "hmmn-object" param with "id" and "pixels"). The first buffer (and the first after a flush or
// seek) starts a video with the label map of `mask`; `annotations` adds objects on later frames.
#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>
#include <gst/video/gstvideofilter.h>
#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "hmmn/hmmn.h"
#include "labels.hpp"
#include "png_io.hpp"

GST_DEBUG_CATEGORY_STATIC(hmmnseg_debug);
#define GST_CAT_DEFAULT hmmnseg_debug

namespace {

enum Output { kLabels = 0, kOverlay = 1 };
enum Property { kPropArtifacts = 1, kPropMask, kPropAnnotations, kPropCapacity, kPropMemEvery, kPropThreads, kPropOutput };

// What one run (READY -> PAUSED -> ... -> READY) holds besides the properties.
struct Run {
  hmmn_model* model = nullptr;
  hmmn_video* video = nullptr;
  LabelImage first;                          // the mask: the first frame's label map
  std::vector<uint8_t> palette;              // 256 colours: the mask's, then DAVIS's
  std::map<int64_t, std::string> later;      // frame index -> annotation PNG
  std::vector<int32_t> labels;               // the last frame's ids, width*height
  int64_t frame = 0;                         // index of the next buffer since the (re)start
  std::string mask_path;                     // the file `first` was read from
  bool told_caps = false, told_size = false;  // each error posted once (negotiation retries)
};

}  // namespace

struct GstHmmnSeg {
  GstVideoFilter parent;
  gchar* artifacts;
  gchar* mask;
  gchar* annotations;
  gint capacity, mem_every, threads, output;
  Run* run;
};

struct GstHmmnSegClass {
  GstVideoFilterClass parent_class;
};

G_DEFINE_TYPE(GstHmmnSeg, gst_hmmn_seg, GST_TYPE_VIDEO_FILTER)

#define HMMN_SEG(obj) (reinterpret_cast<GstHmmnSeg*>(obj))

static GType hmmn_seg_output_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {kLabels, "GRAY8, each pixel its object id (0 = background), as hmmn-run's PNGs", "labels"},
      {kOverlay, "RGB, the frame with each object's mask painted translucently", "overlay"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstHmmnSegOutput", values));
  return type;
}

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE("RGB")));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE("{ GRAY8, RGB }")));

static const char* output_format(GstHmmnSeg* self) { return self->output == kOverlay ? "RGB" : "GRAY8"; }

// ---- properties -------------------------------------------------------------------------------

static void set_property(GObject* object, guint id, const GValue* value, GParamSpec* spec) {
  GstHmmnSeg* self = HMMN_SEG(object);
  GST_OBJECT_LOCK(self);
  switch (id) {
    case kPropArtifacts: g_free(self->artifacts); self->artifacts = g_value_dup_string(value); break;
    case kPropMask: g_free(self->mask); self->mask = g_value_dup_string(value); break;
    case kPropAnnotations: g_free(self->annotations); self->annotations = g_value_dup_string(value); break;
    case kPropCapacity: self->capacity = g_value_get_int(value); break;
    case kPropMemEvery: self->mem_every = g_value_get_int(value); break;
    case kPropThreads: self->threads = g_value_get_int(value); break;
    case kPropOutput: self->output = g_value_get_enum(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, spec);
  }
  GST_OBJECT_UNLOCK(self);
  if (id == kPropOutput) gst_base_transform_reconfigure_src(GST_BASE_TRANSFORM(self));
}

static void get_property(GObject* object, guint id, GValue* value, GParamSpec* spec) {
  GstHmmnSeg* self = HMMN_SEG(object);
  GST_OBJECT_LOCK(self);
  switch (id) {
    case kPropArtifacts: g_value_set_string(value, self->artifacts); break;
    case kPropMask: g_value_set_string(value, self->mask); break;
    case kPropAnnotations: g_value_set_string(value, self->annotations); break;
    case kPropCapacity: g_value_set_int(value, self->capacity); break;
    case kPropMemEvery: g_value_set_int(value, self->mem_every); break;
    case kPropThreads: g_value_set_int(value, self->threads); break;
    case kPropOutput: g_value_set_enum(value, self->output); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, spec);
  }
  GST_OBJECT_UNLOCK(self);
}

// ---- start and stop (READY <-> PAUSED) ---------------------------------------------------------

static void close_video(Run* run) {
  if (run->video) hmmn_video_close(run->video);
  run->video = nullptr;
  run->frame = 0;
}

static gboolean stop(GstBaseTransform* trans) {
  GstHmmnSeg* self = HMMN_SEG(trans);
  if (self->run) {
    close_video(self->run);
    if (self->run->model) hmmn_model_close(self->run->model);
    delete self->run;
    self->run = nullptr;
  }
  return TRUE;
}

// Reads the mask, the annotations folder and the model; posts an error saying what to do.
static gboolean start(GstBaseTransform* trans) {
  GstHmmnSeg* self = HMMN_SEG(trans);
  stop(trans);
  GST_OBJECT_LOCK(self);
  const std::string artifacts = self->artifacts ? self->artifacts : "";
  std::string mask = self->mask ? self->mask : "";
  const std::string annotations = self->annotations ? self->annotations : "";
  hmmn_options options;
  hmmn_options_init(&options);
  options.capacity = self->capacity, options.mem_every = self->mem_every, options.threads = self->threads;
  GST_OBJECT_UNLOCK(self);

  if (artifacts.empty()) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("hmmnseg needs artifacts=DIR: an hmmn-export folder (make one with hmmn-export)"),
                      (nullptr));
    return FALSE;
  }
  Run* run = new Run;
  self->run = run;
  try {
    if (!annotations.empty()) run->later = hmmnseg::annotations_by_index(annotations);
    if (mask.empty() && run->later.count(0)) mask = run->later[0];
    if (mask.empty())
      throw std::runtime_error("hmmnseg needs mask=FILE: the first frame's label map, a palette or greyscale PNG "
                               "(0 = background, 1..255 = objects), or annotations=DIR holding 00000.png");
    run->first = read_png_labels(mask);
    run->mask_path = mask;
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("%s", e.what()), (nullptr));
    return FALSE;
  }
  run->palette = davis_palette();
  std::copy(run->first.palette.begin(), run->first.palette.begin() + std::min<size_t>(run->first.palette.size(), 768),
            run->palette.begin());
  if (hmmn_model_open(artifacts.c_str(), &options, &run->model) != HMMN_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("hmmnseg cannot use artifacts=%s: %s", artifacts.c_str(), hmmn_last_error()),
                      (nullptr));
    return FALSE;
  }
  GST_INFO_OBJECT(self, "model %s, mask %s (%dx%d)", artifacts.c_str(), mask.c_str(), run->first.width, run->first.height);
  return TRUE;
}

// ---- caps -------------------------------------------------------------------------------------

// RGB in; GRAY8 (labels) or RGB (overlay) out; the same size and frame rate.
static GstCaps* transform_caps(GstBaseTransform* trans, GstPadDirection direction, GstCaps* caps, GstCaps* filter) {
  const char* format = direction == GST_PAD_SINK ? output_format(HMMN_SEG(trans)) : "RGB";
  GstCaps* out = gst_caps_new_empty();
  for (guint i = 0; i < gst_caps_get_size(caps); ++i) {
    GstCapsFeatures* features = gst_caps_get_features(caps, i);
    if (features && !gst_caps_features_is_equal(features, GST_CAPS_FEATURES_MEMORY_SYSTEM_MEMORY)) continue;
    GstStructure* s = gst_structure_copy(gst_caps_get_structure(caps, i));
    gst_structure_set(s, "format", G_TYPE_STRING, format, nullptr);
    gst_structure_remove_fields(s, "colorimetry", "chroma-site", nullptr);
    out = gst_caps_merge_structure(out, s);
  }
  if (filter) {
    GstCaps* both = gst_caps_intersect_full(filter, out, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(out);
    out = both;
  }
  GST_DEBUG_OBJECT(trans, "%s caps %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
                   direction == GST_PAD_SINK ? "sink" : "src", caps, out);
  return out;
}

// A fixed raw-video format other than RGB reaching the sink is a pipeline to fix: say how.
static gboolean accept_caps(GstBaseTransform* trans, GstPadDirection direction, GstCaps* caps) {
  gboolean ok = GST_BASE_TRANSFORM_CLASS(gst_hmmn_seg_parent_class)->accept_caps(trans, direction, caps);
  GstHmmnSeg* self = HMMN_SEG(trans);
  if (!ok && direction == GST_PAD_SINK && gst_caps_is_fixed(caps) && self->run && !self->run->told_caps &&
      gst_structure_has_name(gst_caps_get_structure(caps, 0), "video/x-raw")) {
    self->run->told_caps = TRUE;
    const gchar* format = gst_structure_get_string(gst_caps_get_structure(caps, 0), "format");
    gchar* features = gst_caps_features_to_string(gst_caps_get_features(caps, 0));
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                      ("hmmnseg takes video/x-raw,format=RGB in system memory, not format=%s (%s): put videoconvert "
                       "before hmmnseg", format ? format : "(none)", features),
                      ("refused caps %" GST_PTR_FORMAT, caps));
    g_free(features);
  }
  return ok;
}

static gboolean set_info(GstVideoFilter* filter, GstCaps*, GstVideoInfo* in_info, GstCaps*, GstVideoInfo*) {
  GstHmmnSeg* self = HMMN_SEG(filter);
  Run* run = self->run;
  if (!run) return FALSE;
  const int width = GST_VIDEO_INFO_WIDTH(in_info), height = GST_VIDEO_INFO_HEIGHT(in_info);
  if (run->video && static_cast<size_t>(width) * height != run->labels.size()) {
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("the video changed size to %dx%d mid-stream: hmmnseg needs every frame at the size "
                                             "of the first (put videoscale and a fixed-size caps filter before hmmnseg)", width, height),
                      (nullptr));
    return FALSE;
  }
  if (width != run->first.width || height != run->first.height) {
    if (run->told_size) return FALSE;
    run->told_size = true;
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                      ("the mask is %dx%d but the video is %dx%d: give mask= the first frame's label map at the video's "
                       "size, or scale the video to the mask with videoscale ! video/x-raw,width=%d,height=%d",
                       run->first.width, run->first.height, width, height, run->first.width, run->first.height),
                      (nullptr));
    return FALSE;
  }
  return TRUE;
}

// ---- frames -----------------------------------------------------------------------------------

static bool fail_frame(GstHmmnSeg* self, const char* what) {
  GST_ELEMENT_ERROR(self, STREAM, FAILED, ("hmmnseg could not %s frame %" G_GINT64_FORMAT ": %s", what, self->run->frame,
                                           hmmn_last_error()), (nullptr));
  return false;
}

// Objects of the annotation for this frame that the video does not track yet join now and win
// where their mask is (as hmmn-run on a YouTube-VOS folder).
static bool add_joining(GstHmmnSeg* self, const std::vector<int32_t>& tracked) {
  Run* run = self->run;
  auto mark = run->later.find(run->frame);
  if (run->frame == 0 || mark == run->later.end()) return true;
  LabelImage joining;
  try {
    joining = read_png_labels(mark->second);
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("%s", e.what()), (nullptr));
    return false;
  }
  if (static_cast<size_t>(joining.width) * joining.height != run->labels.size() || joining.width != run->first.width) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("annotation '%s' is %dx%d, the video %dx%d: annotations must have the video's size",
                                                 mark->second.c_str(), joining.width, joining.height, run->first.width,
                                                 run->first.height), (nullptr));
    return false;
  }
  const std::set<int32_t> known(tracked.begin(), tracked.end());
  bool any = false;
  for (int32_t& id : joining.ids) {
    if (known.count(id)) id = 0;
    any = any || id != 0;
  }
  if (!any) return true;
  hmmn_labels labels{joining.ids.data(), joining.width, joining.height, joining.width};
  if (hmmn_video_add_objects(run->video, &labels) != HMMN_OK) return fail_frame(self, "add the annotation's objects on");
  for (size_t p = 0; p < run->labels.size(); ++p)
    if (joining.ids[p]) run->labels[p] = joining.ids[p];
  return true;
}

static std::vector<int32_t> tracked_objects(hmmn_video* video) {
  size_t count = 0;
  hmmn_video_objects(video, nullptr, 0, &count);
  std::vector<int32_t> ids(count);
  hmmn_video_objects(video, ids.data(), ids.size(), &count);
  return ids;
}

// After a flush the mask property may name the label map of the frame sought to: read it again.
static bool reload_mask(GstHmmnSeg* self) {
  Run* run = self->run;
  GST_OBJECT_LOCK(self);
  const std::string mask = self->mask ? self->mask : run->mask_path;
  GST_OBJECT_UNLOCK(self);
  if (mask == run->mask_path) return true;
  try {
    LabelImage first = read_png_labels(mask);
    if (first.width != run->first.width || first.height != run->first.height)
      throw std::runtime_error("mask '" + mask + "' is " + std::to_string(first.width) + "x" + std::to_string(first.height) +
                               ", the video " + std::to_string(run->first.width) + "x" + std::to_string(run->first.height) +
                               ": give the label map of the frame sought to, at the video's size");
    run->first = std::move(first);
    run->mask_path = mask;
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("%s", e.what()), (nullptr));
    return false;
  }
  return true;
}

// Segments one frame into run->labels: the mask on the first frame, the model's after.
static bool segment(GstHmmnSeg* self, const hmmn_image& image) {
  Run* run = self->run;
  if (!run->video) {
    if (!reload_mask(self)) return false;
    hmmn_labels first{run->first.ids.data(), run->first.width, run->first.height, run->first.width};
    if (hmmn_video_start(run->model, &image, &first, &run->video) != HMMN_OK) return fail_frame(self, "start the video on");
    run->labels = run->first.ids;
    return true;
  }
  if (hmmn_video_step(run->video, &image, run->labels.data(), run->labels.size(), nullptr, 0) != HMMN_OK)
    return fail_frame(self, "segment");
  return add_joining(self, tracked_objects(run->video));
}

static void add_regions(GstHmmnSeg* self, GstBuffer* buffer, int width, int height) {
  Run* run = self->run;
  for (const hmmnseg::Box& box : hmmnseg::object_boxes(run->labels.data(), width, height, tracked_objects(run->video))) {
    GstVideoRegionOfInterestMeta* meta =
        gst_buffer_add_video_region_of_interest_meta(buffer, "hmmn-object", box.x, box.y, box.width, box.height);
    meta->id = box.id;
    gst_video_region_of_interest_meta_add_param(
        meta, gst_structure_new("hmmn-object", "id", G_TYPE_INT, box.id, "pixels", G_TYPE_INT64, box.pixels, nullptr));
  }
}

static GstFlowReturn transform_frame(GstVideoFilter* filter, GstVideoFrame* in, GstVideoFrame* out) {
  GstHmmnSeg* self = HMMN_SEG(filter);
  Run* run = self->run;
  const int width = GST_VIDEO_FRAME_WIDTH(in), height = GST_VIDEO_FRAME_HEIGHT(in);
  const uint8_t* rgb = static_cast<const uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(in, 0));
  const int rgb_stride = GST_VIDEO_FRAME_PLANE_STRIDE(in, 0);
  const hmmn_image image{rgb, width, height, rgb_stride, HMMN_RGB8};
  if (!segment(self, image)) return GST_FLOW_ERROR;

  uint8_t* pixels = static_cast<uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(out, 0));
  const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(out, 0);
  if (GST_VIDEO_FRAME_FORMAT(out) == GST_VIDEO_FORMAT_GRAY8)
    hmmnseg::write_gray(run->labels.data(), width, height, pixels, stride);
  else
    hmmnseg::paint_overlay(rgb, rgb_stride, run->labels.data(), width, height, run->palette, pixels, stride);
  add_regions(self, out->buffer, width, height);
  ++run->frame;
  return GST_FLOW_OK;
}

// A flush (seek) ends the video: the next buffer starts a new one with the mask as its labels.
static gboolean sink_event(GstBaseTransform* trans, GstEvent* event) {
  GstHmmnSeg* self = HMMN_SEG(trans);
  if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP && self->run && self->run->video) {
    close_video(self->run);
    GST_ELEMENT_WARNING(self, STREAM, FAILED,
                        ("hmmnseg restarts after a flush or seek: the next frame is a first frame again and takes "
                         "mask=%s as its label map; set mask to the label map of the frame sought to",
                         self->run->mask_path.c_str()),
                        (nullptr));
  }
  return GST_BASE_TRANSFORM_CLASS(gst_hmmn_seg_parent_class)->sink_event(trans, event);
}

// ---- class ------------------------------------------------------------------------------------

static void finalize(GObject* object) {
  GstHmmnSeg* self = HMMN_SEG(object);
  stop(GST_BASE_TRANSFORM(self));
  g_free(self->artifacts);
  g_free(self->mask);
  g_free(self->annotations);
  G_OBJECT_CLASS(gst_hmmn_seg_parent_class)->finalize(object);
}

static void gst_hmmn_seg_init(GstHmmnSeg* self) {
  self->artifacts = self->mask = self->annotations = nullptr;
  self->capacity = self->mem_every = self->threads = 0;
  self->output = kLabels;
  self->run = nullptr;
}

static void install_int(GObjectClass* klass, Property id, const char* name, const char* blurb, int maximum) {
  g_object_class_install_property(klass, id, g_param_spec_int(name, name, blurb, 0, maximum, 0,
      static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
}

static void install_string(GObjectClass* klass, Property id, const char* name, const char* blurb) {
  g_object_class_install_property(klass, id, g_param_spec_string(name, name, blurb, nullptr,
      static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
}

static void gst_hmmn_seg_class_init(GstHmmnSegClass* klass) {
  GObjectClass* object = G_OBJECT_CLASS(klass);
  GstElementClass* element = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* trans = GST_BASE_TRANSFORM_CLASS(klass);
  GstVideoFilterClass* video = GST_VIDEO_FILTER_CLASS(klass);
  object->set_property = set_property;
  object->get_property = get_property;
  object->finalize = finalize;
  install_string(object, kPropArtifacts, "artifacts", "an hmmn-export folder (manifest.json and the four .onnx graphs)");
  g_object_class_install_property(object, kPropMask, g_param_spec_string("mask", "mask",
      "the first frame's label map: a palette or greyscale PNG at the video's size (0 = background); "
      "after a flush or seek, read again for the next frame", nullptr,
      static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  install_string(object, kPropAnnotations, "annotations",
                 "optional folder of label PNGs named by frame index (00004.png): objects not yet tracked join on that frame");
  install_int(object, kPropCapacity, "capacity", "memory slots per object group, 1/16 scale (0: the manifest's)", 1 << 16);
  install_int(object, kPropMemEvery, "mem-every", "keep every n-th frame in memory (0: the manifest's)", 1 << 16);
  install_int(object, kPropThreads, "threads", "ONNX Runtime intra-op threads (0: its default)", 1024);
  g_object_class_install_property(object, kPropOutput, g_param_spec_enum("output", "output",
      "labels: GRAY8 object ids; overlay: RGB with translucent masks", hmmn_seg_output_get_type(), kLabels,
      static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));

  gst_element_class_set_static_metadata(element, "HMMN video object segmentation", "Filter/Analyzer/Video",
      "Tracks the objects of a first-frame mask through the video (libhmmn): object-id maps or an overlay, "
      "and each object's box as GstVideoRegionOfInterestMeta", "hmmn-deploy");
  gst_element_class_add_static_pad_template(element, &sink_template);
  gst_element_class_add_static_pad_template(element, &src_template);
  trans->start = start;
  trans->stop = stop;
  trans->transform_caps = transform_caps;
  trans->accept_caps = accept_caps;
  trans->sink_event = sink_event;
  trans->passthrough_on_same_caps = FALSE;
  video->set_info = set_info;
  video->transform_frame = transform_frame;
  gst_type_mark_as_plugin_api(hmmn_seg_output_get_type(), static_cast<GstPluginAPIFlags>(0));
}

static gboolean plugin_init(GstPlugin* plugin) {
  GST_DEBUG_CATEGORY_INIT(hmmnseg_debug, "hmmnseg", 0, "HMMN video object segmentation");
  return gst_element_register(plugin, "hmmnseg", GST_RANK_NONE, gst_hmmn_seg_get_type());
}

#define PACKAGE "hmmn"
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, hmmn, "HMMN video object segmentation (libhmmn)", plugin_init,
                  HMMN_VERSION, "Proprietary", "hmmn-deploy", "hmmn-deploy cpp/gst")
