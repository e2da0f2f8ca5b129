#include "tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "error.hpp"

namespace hmmn {

DType dtype_from_name(const std::string& name) {
  if (name == "float32") return DType::F32;
  if (name == "float16") return DType::F16;
  if (name == "int32") return DType::I32;
  if (name == "int64") return DType::I64;
  fail(HMMN_ERROR_ARTIFACT, "unknown dtype '" + name + "' in the manifest; this libhmmn reads float32, float16, int32, int64");
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F16: return 2;
    case DType::I64: return 8;
    default: return 4;
  }
}

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_text(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Buffer::Buffer(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_)
    if (d < 0) fail(HMMN_ERROR_INTERNAL, "negative dimension in " + shape_text(shape_));
  bytes_ = static_cast<size_t>(numel(shape_)) * dtype_size(dtype_);
  size_t padded = (bytes_ + 63) / 64 * 64;
  if (padded == 0) padded = 64;
  data_ = std::aligned_alloc(64, padded);
  if (!data_) throw std::bad_alloc();
  std::memset(data_, 0, padded);
}

Buffer::~Buffer() { std::free(data_); }

Buffer::Buffer(Buffer&& other) noexcept { *this = std::move(other); }

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    dtype_ = other.dtype_;
    shape_ = std::move(other.shape_);
    other.shape_.clear();
  }
  return *this;
}

size_t Buffer::row_bytes() const {
  if (shape_.empty() || shape_[0] == 0) return 0;
  return bytes_ / static_cast<size_t>(shape_[0]);
}

View Buffer::rows(int64_t begin, int64_t end) const {
  if (shape_.empty() || begin < 0 || end < begin || end > shape_[0])
    fail(HMMN_ERROR_INTERNAL, "rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") of " + shape_text(shape_));
  Shape s = shape_;
  s[0] = end - begin;
  return View{row(begin), dtype_, s};
}

View Buffer::at(int64_t index) const {
  View v = rows(index, index + 1);
  v.shape.erase(v.shape.begin());
  return v;
}

}  // namespace hmmn
