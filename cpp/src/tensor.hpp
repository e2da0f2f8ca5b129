// Host buffers and views. A Buffer is allocated once (zeroed, 64-byte aligned) and written in
// place; a View is a pointer + dtype + shape handed to a graph runner (never owns memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hmmn {

enum class DType { F32, F16, I32, I64 };

DType dtype_from_name(const std::string& name);  // numpy names: float32, float16, int32, int64
size_t dtype_size(DType dtype);

using Shape = std::vector<int64_t>;
int64_t numel(const Shape& shape);
std::string shape_text(const Shape& shape);

struct View {
  void* data = nullptr;
  DType dtype = DType::F32;
  Shape shape;
  size_t bytes() const { return static_cast<size_t>(numel(shape)) * dtype_size(dtype); }
};

class Buffer {
 public:
  Buffer() = default;
  Buffer(DType dtype, Shape shape);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  View view() const { return View{data_, dtype_, shape_}; }
  View rows(int64_t begin, int64_t end) const;  // rows [begin, end) of axis 0
  View at(int64_t index) const;                  // row `index` of axis 0, that axis dropped
  size_t row_bytes() const;                      // bytes of one index of axis 0
  char* row(int64_t index) const { return static_cast<char*>(data_) + row_bytes() * static_cast<size_t>(index); }
  const Shape& shape() const { return shape_; }
  size_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const { return static_cast<T*>(data_); }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  DType dtype_ = DType::F32;
  Shape shape_;
};

}  // namespace hmmn
