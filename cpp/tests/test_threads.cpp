// One model shared by videos stepped on several threads at once (docs/cpp.md, "Threads"):
// every video gets the masks it gets alone. Usage: test_threads EXPORT
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "hmmn/hmmn.h"

namespace {
constexpr int kH = 96, kW = 128, kSteps = 3, kVideos = 3;

// Frame t of video v: a gradient that moves with t and differs per video.
std::vector<uint8_t> frame_pixels(int v, int t) {
  std::vector<uint8_t> p(kH * kW * 3);
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x)
      for (int c = 0; c < 3; ++c) p[(y * kW + x) * 3 + c] = static_cast<uint8_t>((x * (c + 1) + y * (v + 2) + 5 * t) & 255);
  return p;
}

// Segments video v alone; returns the concatenated label maps of its steps (empty on error).
std::vector<int32_t> run_video(hmmn_model* model, int v) {
  std::vector<int32_t> first(kH * kW, 0), out(kH * kW), all;
  for (int y = 30; y < 70; ++y)
    for (int x = 20 + 10 * v; x < 60 + 10 * v; ++x) first[y * kW + x] = 1 + v;
  std::vector<uint8_t> pixels = frame_pixels(v, 0);
  hmmn_image frame{pixels.data(), kW, kH, 3 * kW, HMMN_RGB8};
  hmmn_labels labels{first.data(), kW, kH, kW};
  hmmn_video* video = nullptr;
  if (hmmn_video_start(model, &frame, &labels, &video) != HMMN_OK) return {};
  for (int t = 1; t <= kSteps; ++t) {
    pixels = frame_pixels(v, t);
    frame.pixels = pixels.data();
    if (hmmn_video_step(video, &frame, out.data(), out.size(), nullptr, 0) != HMMN_OK) {
      std::printf("step failed: %s\n", hmmn_last_error());
      hmmn_video_close(video);
      return {};
    }
    all.insert(all.end(), out.begin(), out.end());
  }
  hmmn_video_close(video);
  return all;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  hmmn_model* model = nullptr;
  if (hmmn_model_open(argv[1], nullptr, &model) != HMMN_OK) {
    std::printf("open failed: %s\n", hmmn_last_error());
    return 1;
  }
  std::vector<std::vector<int32_t>> alone(kVideos), together(kVideos);
  for (int v = 0; v < kVideos; ++v) alone[v] = run_video(model, v);
  std::vector<std::thread> threads;
  for (int v = 0; v < kVideos; ++v) threads.emplace_back([&, v] { together[v] = run_video(model, v); });
  for (std::thread& t : threads) t.join();
  int failures = 0;
  for (int v = 0; v < kVideos; ++v) {
    const bool same = !alone[v].empty() && alone[v] == together[v];
    std::printf("%s video %d: %s\n", same ? "ok  " : "FAIL", v, same ? "same masks on its own thread" : "differs");
    failures += !same;
  }
  hmmn_model_close(model);
  return failures ? 1 : 0;
}
