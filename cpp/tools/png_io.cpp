#include "png_io.hpp"

#include <png.h>

#include <cstdio>
#include <memory>
#include <stdexcept>

namespace {
struct File {
  FILE* f;
  ~File() {
    if (f) std::fclose(f);
  }
};

// Decodes a PNG with libpng's simplified API into `format`, 8 bits per channel.
std::vector<uint8_t> decode(const std::string& path, png_uint_32 format, int& width, int& height,
                            std::vector<uint8_t>* colormap) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str()))
    throw std::runtime_error("cannot read '" + path + "': " + image.message);
  image.format = format;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  std::vector<uint8_t> map(colormap ? PNG_IMAGE_COLORMAP_SIZE(image) : 0);
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, colormap ? map.data() : nullptr)) {
    std::string why = image.message;
    png_image_free(&image);
    throw std::runtime_error("cannot decode '" + path + "': " + why);
  }
  width = static_cast<int>(image.width);
  height = static_cast<int>(image.height);
  if (colormap) {
    map.resize(3 * image.colormap_entries);
    *colormap = map;
  }
  return pixels;
}
}  // namespace

std::vector<uint8_t> davis_palette() {
  std::vector<uint8_t> p(768);
  for (int i = 0; i < 256; ++i) {  // bit j of each 3-bit group of i lights bit (7 - j) of r, g, b
    int r = 0, g = 0, b = 0, c = i;
    for (int j = 0; j < 8; ++j, c >>= 3) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
    }
    p[3 * i] = static_cast<uint8_t>(r), p[3 * i + 1] = static_cast<uint8_t>(g), p[3 * i + 2] = static_cast<uint8_t>(b);
  }
  return p;
}

RgbImage read_png_rgb(const std::string& path) {
  RgbImage out;
  out.pixels = decode(path, PNG_FORMAT_RGB, out.width, out.height, nullptr);
  return out;
}

LabelImage read_png_labels(const std::string& path) {
  // The indices themselves (not colours): read the header and rows with the low-level API.
  File file{std::fopen(path.c_str(), "rb")};
  if (!file.f) throw std::runtime_error("cannot open mask '" + path + "'");
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) throw std::runtime_error("libpng: out of memory");
  LabelImage out;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw std::runtime_error("cannot decode mask '" + path + "'");
  }
  png_init_io(png, file.f);
  png_read_info(png, info);
  const int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (type != PNG_COLOR_TYPE_PALETTE && type != PNG_COLOR_TYPE_GRAY) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw std::runtime_error("mask '" + path + "' is neither a palette nor a greyscale PNG");
  }
  if (depth < 8) png_set_packing(png);
  if (depth == 16) png_set_strip_16(png);
  png_read_update_info(png, info);
  out.width = static_cast<int>(png_get_image_width(png, info));
  out.height = static_cast<int>(png_get_image_height(png, info));
  std::vector<uint8_t> rows(static_cast<size_t>(out.width) * static_cast<size_t>(out.height));
  std::vector<png_bytep> pointers(static_cast<size_t>(out.height));
  for (int y = 0; y < out.height; ++y) pointers[static_cast<size_t>(y)] = rows.data() + static_cast<size_t>(y) * static_cast<size_t>(out.width);
  png_read_image(png, pointers.data());
  if (type == PNG_COLOR_TYPE_PALETTE) {
    png_colorp colours = nullptr;
    int count = 0;
    png_get_PLTE(png, info, &colours, &count);
    for (int i = 0; i < count; ++i) out.palette.insert(out.palette.end(), {colours[i].red, colours[i].green, colours[i].blue});
  } else {
    out.palette = davis_palette();
  }
  png_destroy_read_struct(&png, &info, nullptr);
  out.ids.assign(rows.begin(), rows.end());
  return out;
}

void write_png_labels(const std::string& path, const int32_t* ids, int width, int height,
                      const std::vector<uint8_t>& palette) {
  std::vector<uint8_t> indices(static_cast<size_t>(width) * static_cast<size_t>(height));
  for (size_t i = 0; i < indices.size(); ++i) {
    if (ids[i] < 0 || ids[i] > 255) throw std::runtime_error("label " + std::to_string(ids[i]) + " does not fit a palette PNG");
    indices[i] = static_cast<uint8_t>(ids[i]);
  }
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = PNG_FORMAT_RGB_COLORMAP;
  image.colormap_entries = static_cast<png_uint_32>(palette.size() / 3);
  if (!png_image_write_to_file(&image, path.c_str(), 0, indices.data(), 0, palette.data()))
    throw std::runtime_error("cannot write '" + path + "': " + image.message);
}
