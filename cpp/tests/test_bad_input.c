/* Bad input through the C ABI: every case returns an error status and a message, nothing
 * crashes, and a video keeps working after a refused call.
 * Usage: test_bad_input EXPORT FOREIGN_EXPORT MISSING_GRAPH_EXPORT NOT_ORT_LIBRARY EDITED_GRAPH_EXPORT */
#include <stdio.h>
#include <string.h>

#include "hmmn/hmmn.h"

enum { H = 96, W = 128 };
static uint8_t pixels[H * W * 3];
static int32_t labels[H * W], empty[H * W], out[H * W];
static float probs[2 * H * W];
static int failures;

/* status must be `want` and the message must contain `words`. */
static void expect(const char* name, hmmn_status got, hmmn_status want, const char* words) {
  const char* message = hmmn_last_error();
  int ok = got == want && message && strstr(message, words) != NULL;
  printf("%s %-28s status %d: %s\n", ok ? "ok  " : "FAIL", name, (int)got, message ? message : "(null)");
  failures += !ok;
}

int main(int argc, char** argv) {
  hmmn_model* model = NULL;
  hmmn_model* other = NULL;
  hmmn_video* video = NULL;
  hmmn_options options;
  hmmn_image frame = {pixels, W, H, 3 * W, HMMN_RGB8};
  hmmn_image small = {pixels, W - 16, H, 3 * W, HMMN_RGB8};
  hmmn_image bad_stride = {pixels, W, H, W, HMMN_RGB8};
  hmmn_image bad_format = {pixels, W, H, 3 * W, 9};
  hmmn_image tiny = {pixels, 16, 16, 48, HMMN_RGB8};
  hmmn_labels first = {labels, W, H, W};
  hmmn_labels tiny_labels = {labels, 16, 16, 16};
  hmmn_labels none = {empty, W, H, W};
  hmmn_labels narrow = {labels, W - 16, H, W};
  int32_t unknown = 99, only = 3;
  int i;
  if (argc < 6) {
    fprintf(stderr, "usage: test_bad_input EXPORT FOREIGN MISSING_GRAPH NOT_ORT_LIBRARY EDITED_GRAPH\n");
    return 2;
  }
  for (i = 0; i < H * W; ++i) labels[i] = (i / W > 40 && i % W > 50 && i % W < 90) ? 3 : 0;
  memset(pixels, 100, sizeof pixels);

  expect("missing manifest", hmmn_model_open("/nonexistent/export", NULL, &other), HMMN_ERROR_ARTIFACT, "manifest.json");
  expect("foreign manifest", hmmn_model_open(argv[2], NULL, &other), HMMN_ERROR_ARTIFACT, "not an hmmn-deploy manifest");
  expect("missing graph", hmmn_model_open(argv[3], NULL, &other), HMMN_ERROR_ARTIFACT, "is missing");
  expect("graph edited after export", hmmn_model_open(argv[5], NULL, &other), HMMN_ERROR_ARTIFACT, "SHA-256");
  expect("null folder", hmmn_model_open(NULL, NULL, &other), HMMN_ERROR_ARGUMENT, "null");
  expect("null out", hmmn_model_open(argv[1], NULL, NULL), HMMN_ERROR_ARGUMENT, "null");
  hmmn_options_init(&options);
  options.ort_library = "/nonexistent/libonnxruntime.so.1";
  expect("missing ORT library", hmmn_model_open(argv[1], &options, &other), HMMN_ERROR_BACKEND, "cannot load ONNX Runtime");
  options.ort_library = argv[4];
  expect("not an ORT library", hmmn_model_open(argv[1], &options, &other), HMMN_ERROR_BACKEND, "is not ONNX Runtime");
  options.ort_library = NULL;
  options.capacity = 1;
  expect("capacity 1", hmmn_model_open(argv[1], &options, &other), HMMN_ERROR_ARGUMENT, "capacity");
  options.capacity = 0;
  options.device = "cuda";
  expect("device cuda", hmmn_model_open(argv[1], &options, &other), HMMN_ERROR_ARGUMENT, "CPU");
  options.device = NULL;
  options.struct_size = 3;
  expect("options not initialised", hmmn_model_open(argv[1], &options, &other), HMMN_ERROR_ARGUMENT, "hmmn_options_init");
  if (other != NULL) failures++;

  if (hmmn_model_open(argv[1], NULL, &model) != HMMN_OK) {
    printf("FAIL open: %s\n", hmmn_last_error());
    return 1;
  }
  expect("step before start", hmmn_video_step(NULL, &frame, out, H * W, NULL, 0), HMMN_ERROR_ARGUMENT, "hmmn_video_start");
  expect("start: null frame", hmmn_video_start(model, NULL, &first, &video), HMMN_ERROR_ARGUMENT, "null");
  expect("start: null labels", hmmn_video_start(model, &frame, NULL, &video), HMMN_ERROR_ARGUMENT, "null");
  expect("start: null model", hmmn_video_start(NULL, &frame, &first, &video), HMMN_ERROR_ARGUMENT, "null");
  expect("start: no object", hmmn_video_start(model, &frame, &none, &video), HMMN_ERROR_ARGUMENT, "no object");
  labels[0] = -4;
  expect("start: negative label", hmmn_video_start(model, &frame, &first, &video), HMMN_ERROR_ARGUMENT, "negative");
  labels[0] = 0;
  expect("start: labels of another size", hmmn_video_start(model, &frame, &narrow, &video), HMMN_ERROR_ARGUMENT, "resize");
  expect("start: frame too small", hmmn_video_start(model, &tiny, &tiny_labels, &video), HMMN_ERROR_ARGUMENT, "too small");
  expect("start: stride", hmmn_video_start(model, &bad_stride, &first, &video), HMMN_ERROR_ARGUMENT, "stride");
  expect("start: pixel format", hmmn_video_start(model, &bad_format, &first, &video), HMMN_ERROR_ARGUMENT, "format");
  if (video != NULL) failures++;

  if (hmmn_video_start(model, &frame, &first, &video) != HMMN_OK) {
    printf("FAIL start: %s\n", hmmn_last_error());
    return 1;
  }
  expect("step: frame of another size", hmmn_video_step(video, &small, out, H * W, NULL, 0), HMMN_ERROR_ARGUMENT, "resize");
  expect("step: null labels_out", hmmn_video_step(video, &frame, NULL, 0, NULL, 0), HMMN_ERROR_ARGUMENT, "null");
  expect("step: short labels_out", hmmn_video_step(video, &frame, out, 10, NULL, 0), HMMN_ERROR_ARGUMENT, "labels_out");
  expect("step: short probs_out", hmmn_video_step(video, &frame, out, H * W, probs, 5), HMMN_ERROR_ARGUMENT, "probs_out");
  expect("add: no object", hmmn_video_add_objects(video, &none), HMMN_ERROR_ARGUMENT, "no object");
  expect("add: known ids", hmmn_video_add_objects(video, &first), HMMN_ERROR_ARGUMENT, "already objects");
  expect("remove: unknown id", hmmn_video_remove_objects(video, &unknown, 1), HMMN_ERROR_ARGUMENT, "not in this video");
  expect("remove: every object", hmmn_video_remove_objects(video, &only, 1), HMMN_ERROR_ARGUMENT, "every object");
  expect("objects: null count", hmmn_video_objects(video, NULL, 0, NULL), HMMN_ERROR_ARGUMENT, "null");

  /* after all that, the video still segments */
  if (hmmn_video_step(video, &frame, out, H * W, probs, 2 * H * W) != HMMN_OK) {
    printf("FAIL step after refused calls: %s\n", hmmn_last_error());
    failures++;
  } else {
    printf("ok   step after refused calls\n");
  }
  /* objects joining, stepping, leaving (the paths a sanitizer should see) */
  for (i = 0; i < H * W; ++i) empty[i] = (i / W < 20 && i % W < 30) ? 8 : 0;
  if (hmmn_video_add_objects(video, &none) != HMMN_OK || hmmn_video_step(video, &frame, out, H * W, NULL, 0) != HMMN_OK ||
      hmmn_video_remove_objects(video, &only, 1) != HMMN_OK || hmmn_video_step(video, &frame, out, H * W, probs, 2 * H * W) != HMMN_OK) {
    printf("FAIL join, step, leave: %s\n", hmmn_last_error());
    failures++;
  } else {
    size_t count = 0;
    int32_t ids[4];
    hmmn_video_objects(video, ids, 4, &count);
    printf("%s objects after join and leave: %d (id %d)\n", count == 1 && ids[0] == 8 ? "ok  " : "FAIL", (int)count, (int)ids[0]);
    failures += !(count == 1 && ids[0] == 8);
    for (i = 0; i < H * W; ++i) /* probabilities of the background and object 8 sum to 1 */
      if (probs[i] + probs[H * W + i] < 0.999f || probs[i] + probs[H * W + i] > 1.001f) { failures++; break; }
  }
  expect("closing null handles", hmmn_video_close(NULL), HMMN_OK, "");
  hmmn_model_close(model); /* the video keeps the graphs alive */
  if (hmmn_video_step(video, &frame, out, H * W, NULL, 0) != HMMN_OK) failures++;
  hmmn_video_close(video);
  printf("%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
