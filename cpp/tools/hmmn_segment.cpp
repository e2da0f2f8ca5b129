// hmmn_segment: segment a folder of frames (PNG; JPEG when built with libjpeg) over libhmmn's C ABI.
//
//   hmmn_segment --artifacts DIR --frames DIR --mask FIRST.png --out DIR [--capacity S] [--threads N]
//                [--mem-every N] [--annotations DIR] [--save-probs] [--ort-library PATH]
//
// Writes OUT/<frame>.png palette masks named like the input frames (the first mask's palette),
// the first frame's mask as given. --annotations: label PNGs named like frames; ids not yet
// tracked join the video on that frame (as hmmn-run on a YouTube-VOS folder). --save-probs:
// OUT/probs/<frame>.f32, float32 [objects+1, H, W]. Prints frames per second of the model calls.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "hmmn/hmmn.h"
#include "png_io.hpp"
#ifdef HMMN_HAVE_JPEG
#include "jpeg_io.hpp"
#endif

namespace {

struct Args {
  std::string artifacts, frames, mask, out, annotations, ort_library;
  int capacity = 0, threads = 0, mem_every = 0;
  bool save_probs = false;
};

const char* kUsage =
    "usage: hmmn_segment --artifacts DIR --frames DIR --mask FIRST.png --out DIR [--capacity S] [--threads N]\n"
    "                    [--mem-every N] [--annotations DIR] [--save-probs] [--ort-library PATH]\n";

Args parse(int argc, char** argv) {
  Args a;
  std::map<std::string, std::string*> text = {{"--artifacts", &a.artifacts}, {"--frames", &a.frames},
                                              {"--mask", &a.mask}, {"--out", &a.out},
                                              {"--annotations", &a.annotations}, {"--ort-library", &a.ort_library}};
  std::map<std::string, int*> numbers = {{"--capacity", &a.capacity}, {"--threads", &a.threads}, {"--mem-every", &a.mem_every}};
  for (int i = 1; i < argc; ++i) {
    std::string key = argv[i];
    if (key == "--save-probs") { a.save_probs = true; continue; }
    if (key == "-h" || key == "--help") { std::fputs(kUsage, stdout); std::exit(0); }
    if (i + 1 >= argc) throw std::invalid_argument(key + " needs a value");
    if (text.count(key)) *text[key] = argv[++i];
    else if (numbers.count(key)) *numbers[key] = std::stoi(argv[++i]);
    else throw std::invalid_argument("unknown option " + key);
  }
  if (a.artifacts.empty() || a.frames.empty() || a.mask.empty() || a.out.empty())
    throw std::invalid_argument("--artifacts, --frames, --mask and --out are required");
  return a;
}

// Natural order (frame2 before frame10), as hmmn-run sorts frames.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      unsigned long long x = std::stoull(a.substr(i, ie - i)), y = std::stoull(b.substr(j, je - j));
      if (x != y) return x < y;
      i = ie, j = je;
    } else {
      char x = static_cast<char>(std::tolower(static_cast<unsigned char>(a[i]))), y = static_cast<char>(std::tolower(static_cast<unsigned char>(b[j])));
      if (x != y) return x < y;
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

bool ends_with(const std::string& name, const char* suffix) {
  const size_t n = std::strlen(suffix);
  if (name.size() <= n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(name[name.size() - n + i])) != suffix[i]) return false;
  return true;
}

bool is_jpeg(const std::string& name) { return ends_with(name, ".jpg") || ends_with(name, ".jpeg"); }

// Image files of a folder in natural order: PNG, and JPEG when built with libjpeg.
std::vector<std::string> image_names(const std::string& folder, bool frames) {
  DIR* dir = opendir(folder.c_str());
  if (!dir) throw std::runtime_error("cannot open folder '" + folder + "'");
  std::vector<std::string> names;
  while (dirent* e = readdir(dir)) {
    std::string n = e->d_name;
    if (ends_with(n, ".png") || (frames && is_jpeg(n))) names.push_back(n);
  }
  closedir(dir);
  std::sort(names.begin(), names.end(), natural_less);
  return names;
}

RgbImage read_frame(const std::string& path) {
  if (!is_jpeg(path)) return read_png_rgb(path);
#ifdef HMMN_HAVE_JPEG
  return read_jpeg_rgb(path);
#else
  throw std::runtime_error("'" + path + "' is a JPEG and this hmmn_segment was built without libjpeg; "
                           "install libjpeg-dev and build again, or convert the frames to PNG");
#endif
}

std::string stem(const std::string& name) { return name.substr(0, name.rfind('.')); }

void check(hmmn_status status, const char* what) {
  if (status != HMMN_OK) throw std::runtime_error(std::string(what) + ": " + hmmn_last_error());
}

hmmn_image as_image(const RgbImage& rgb) {
  return hmmn_image{rgb.pixels.data(), rgb.width, rgb.height, 3LL * rgb.width, HMMN_RGB8};
}

hmmn_labels as_labels(const LabelImage& l) { return hmmn_labels{l.ids.data(), l.width, l.height, l.width}; }

// mkdir -p: the folder and its missing parents.
void make_folders(const std::string& path) {
  for (size_t end = path.find('/', 1); ; end = path.find('/', end + 1)) {
    const std::string part = path.substr(0, end);
    if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
      throw std::runtime_error("cannot create folder '" + part + "': " + std::strerror(errno));
    if (end == std::string::npos) return;
  }
}

void write_floats(const std::string& path, const std::vector<float>& values) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(values.data(), sizeof(float), values.size(), f) != values.size())
    throw std::runtime_error("cannot write '" + path + "'");
  std::fclose(f);
}

int run(const Args& a) {
  const std::vector<std::string> frames = image_names(a.frames, true);
  if (frames.size() < 2) throw std::runtime_error("'" + a.frames + "' holds fewer than two frames (.png, .jpg)");
  std::map<std::string, std::string> later;  // frame stem -> annotation PNG
  if (!a.annotations.empty())
    for (const std::string& n : image_names(a.annotations, false)) later[stem(n)] = a.annotations + "/" + n;
  make_folders(a.out);
  if (a.save_probs) make_folders(a.out + "/probs");

  hmmn_options options;
  check(hmmn_options_init(&options), "options");
  options.capacity = a.capacity, options.threads = a.threads, options.mem_every = a.mem_every;
  if (!a.ort_library.empty()) options.ort_library = a.ort_library.c_str();
  hmmn_model* model = nullptr;
  check(hmmn_model_open(a.artifacts.c_str(), &options, &model), "opening the model");

  const LabelImage first = read_png_labels(a.mask);
  RgbImage frame = read_frame(a.frames + "/" + frames[0]);
  hmmn_video* video = nullptr;
  double seconds = 0;
  auto t0 = std::chrono::steady_clock::now();
  hmmn_image image = as_image(frame);
  hmmn_labels labels = as_labels(first);
  check(hmmn_video_start(model, &image, &labels, &video), "starting the video");
  seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_png_labels(a.out + "/" + stem(frames[0]) + ".png", first.ids.data(), first.width, first.height, first.palette);

  std::vector<int32_t> out(static_cast<size_t>(frame.width) * static_cast<size_t>(frame.height));
  std::vector<float> probs;
  for (size_t i = 1; i < frames.size(); ++i) {
    frame = read_frame(a.frames + "/" + frames[i]);
    image = as_image(frame);
    size_t objects = 0;
    check(hmmn_video_objects(video, nullptr, 0, &objects), "objects");
    probs.resize(a.save_probs ? (objects + 1) * out.size() : 0);
    t0 = std::chrono::steady_clock::now();
    check(hmmn_video_step(video, &image, out.data(), out.size(), a.save_probs ? probs.data() : nullptr, probs.size()),
          frames[i].c_str());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto mark = later.find(stem(frames[i]));
    if (mark != later.end()) {  // objects not yet tracked join on this frame and win where their mask is
      LabelImage m = read_png_labels(mark->second);
      std::vector<int32_t> ids(objects);
      check(hmmn_video_objects(video, ids.data(), ids.size(), &objects), "objects");
      std::set<int32_t> known(ids.begin(), ids.end());
      for (int32_t& v : m.ids)
        if (known.count(v)) v = 0;
      if (std::any_of(m.ids.begin(), m.ids.end(), [](int32_t v) { return v != 0; })) {
        hmmn_labels joining = as_labels(m);
        t0 = std::chrono::steady_clock::now();
        check(hmmn_video_add_objects(video, &joining), "adding objects");
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (size_t p = 0; p < out.size(); ++p)
          if (m.ids[p]) out[p] = m.ids[p];
        // (with --save-probs the stored probabilities stay the model's, before the new objects)
      }
    }
    write_png_labels(a.out + "/" + stem(frames[i]) + ".png", out.data(), frame.width, frame.height, first.palette);
    if (a.save_probs) write_floats(a.out + "/probs/" + stem(frames[i]) + ".f32", probs);
  }
  check(hmmn_video_close(video), "closing the video");
  check(hmmn_model_close(model), "closing the model");
  std::printf("%zu frames, %.3f s in the model, %.4g frames per second\n", frames.size(), seconds,
              seconds > 0 ? static_cast<double>(frames.size() - 1) / seconds : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "hmmn_segment: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hmmn_segment: %s\n", e.what());
    return 1;
  }
}
