/* hmmnseg driven from code, for tests/cpp/test_gstreamer.py: prerolls, seeks back to the start
 * with a flush, plays to EOS, and prints what it saw for Python to judge:
 *   buffer <n>: <id> <x> <y> <w> <h> <pixels>; ...   (the GstVideoRegionOfInterestMeta of each buffer)
 *   warning: <text> | error: <text> | seek | eos
 * Usage: test_hmmnseg EXPORT MASK WIDTH HEIGHT   (GST_PLUGIN_PATH must reach libgsthmmn.so) */
#include <gst/gst.h>
#include <gst/video/gstvideometa.h>
#include <stdio.h>
#include <stdlib.h>

static int buffers = 0;

static GstPadProbeReturn print_regions(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
  GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  gpointer state = NULL;
  GstMeta* meta;
  (void)pad, (void)data;
  printf("buffer %d:", buffers++);
  while ((meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta* roi = (GstVideoRegionOfInterestMeta*)meta;
    GstStructure* param = gst_video_region_of_interest_meta_get_param(roi, "hmmn-object");
    gint64 pixels = -1;
    if (param) gst_structure_get_int64(param, "pixels", &pixels);
    printf(" %s %d %u %u %u %u %" G_GINT64_FORMAT ";", g_quark_to_string(roi->roi_type), roi->id, roi->x, roi->y, roi->w,
           roi->h, pixels);
  }
  printf("\n");
  return GST_PAD_PROBE_OK;
}

/* Waits for `until` (or an error); prints warnings and errors. Returns 0 on `until`. */
static int wait_for(GstElement* pipeline, GstMessageType until) {
  GstBus* bus = gst_element_get_bus(pipeline);
  int result = 1;
  for (;;) {
    GstMessage* m = gst_bus_timed_pop_filtered(bus, 120 * GST_SECOND, until | GST_MESSAGE_ERROR | GST_MESSAGE_WARNING);
    GError* e = NULL;
    if (!m) {
      printf("error: timed out\n");
      break;
    }
    if (GST_MESSAGE_TYPE(m) == until) {
      gst_message_unref(m);
      result = 0;
      break;
    }
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING) gst_message_parse_warning(m, &e, NULL);
    else gst_message_parse_error(m, &e, NULL);
    printf("%s: %s\n", GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING ? "warning" : "error", e->message);
    g_error_free(e);
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      gst_message_unref(m);
      break;
    }
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  fflush(stdout);
  return result;
}

int main(int argc, char** argv) {
  GstElement *pipeline, *seg;
  GstPad* src;
  GError* error = NULL;
  gchar* text;
  int failed = 1;
  if (argc < 5) {
    fprintf(stderr, "usage: test_hmmnseg EXPORT MASK WIDTH HEIGHT\n");
    return 2;
  }
  gst_init(&argc, &argv);
  text = g_strdup_printf("videotestsrc pattern=ball ! video/x-raw,width=%s,height=%s,framerate=10/1 ! videoconvert ! "
                         "hmmnseg name=seg artifacts=\"%s\" mask=\"%s\" ! fakesink sync=false", argv[3], argv[4], argv[1], argv[2]);
  pipeline = gst_parse_launch(text, &error);
  g_free(text);
  if (!pipeline) {
    printf("error: %s\n", error->message);
    g_error_free(error);
    return 1;
  }
  seg = gst_bin_get_by_name(GST_BIN(pipeline), "seg");
  src = gst_element_get_static_pad(seg, "src");
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, print_regions, NULL, NULL);
  gst_element_set_state(pipeline, GST_STATE_PAUSED);
  if (wait_for(pipeline, GST_MESSAGE_ASYNC_DONE) == 0 && printf("seek\n") > 0 &&
      gst_element_seek(pipeline, 1.0, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE, GST_SEEK_TYPE_SET, 0,
                       GST_SEEK_TYPE_SET, GST_SECOND / 2) &&
      wait_for(pipeline, GST_MESSAGE_ASYNC_DONE) == 0) {
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    failed = wait_for(pipeline, GST_MESSAGE_EOS);
    if (!failed) printf("eos\n");
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(seg);
  gst_object_unref(pipeline);
  gst_deinit();
  return failed;
}
