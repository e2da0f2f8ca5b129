/* The smallest libhmmn program, in C: a grey 96x128 video with one 32x32 square object (id 7).
 * Usage: hmmn_example EXPORT_FOLDER
 * Prints, per frame, the object's pixels and bounding box beside the first frame's (1024 pixels,
 * x 48..79, y 32..63): on a uniform grey frame there is nothing to see, so whatever the model
 * keeps or spreads shows there. */
#include <stdio.h>
#include <string.h>

#include "hmmn/hmmn.h"

enum { H = 96, W = 128 };
static uint8_t pixels[H * W * 3];
static int32_t labels[H * W], out[H * W];

int main(int argc, char** argv) {
  hmmn_model* model = NULL;
  hmmn_video* video = NULL;
  hmmn_image frame = {pixels, W, H, 3 * W, HMMN_RGB8};
  hmmn_labels first = {labels, W, H, W};
  int t, i, area, x0, y0, x1, y1;
  memset(pixels, 128, sizeof pixels);
  for (i = 0; i < H * W; ++i) labels[i] = (i / W >= 32 && i / W < 64 && i % W >= 48 && i % W < 80) ? 7 : 0;
  if (argc < 2 || hmmn_model_open(argv[1], NULL, &model) != HMMN_OK ||
      hmmn_video_start(model, &frame, &first, &video) != HMMN_OK) {
    fprintf(stderr, "hmmn_example: %s\n", argc < 2 ? "usage: hmmn_example EXPORT_FOLDER" : hmmn_last_error());
    return 1;
  }
  for (t = 1; t < 4; ++t) {
    if (hmmn_video_step(video, &frame, out, H * W, NULL, 0) != HMMN_OK) {
      fprintf(stderr, "hmmn_example: %s\n", hmmn_last_error());
      return 1;
    }
    for (area = 0, x0 = W, y0 = H, x1 = y1 = -1, i = 0; i < H * W; ++i) {
      if (out[i] != 7) continue;
      ++area;
      if (i % W < x0) x0 = i % W;
      if (i % W > x1) x1 = i % W;
      if (i / W < y0) y0 = i / W;
      if (i / W > y1) y1 = i / W;
    }
    if (area == 0) printf("frame %d: object 7 lost (first frame: 1024 pixels, x 48..79, y 32..63)\n", t);
    else printf("frame %d: object 7 covers %d pixels, x %d..%d, y %d..%d (first frame: 1024, x 48..79, y 32..63)\n",
                t, area, x0, x1, y0, y1);
  }
  hmmn_video_close(video);
  return hmmn_model_close(model) == HMMN_OK ? 0 : 1;
}
