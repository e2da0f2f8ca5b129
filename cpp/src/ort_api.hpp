// The few entries of ONNX Runtime's C API that libhmmn uses, declared here (no ORT header).
//
// OrtGetApiBase() returns {GetApi(version), GetVersionString()}; GetApi returns a table of
// function pointers (struct OrtApi) that ORT only ever appends to, so an entry's position is a
// stable ABI. The positions below were established by counting the members of struct OrtApi
// from 0 in ONNX Runtime's public header include/onnxruntime/core/session/onnxruntime_c_api.h.
// Enum arguments are passed as int (C enums are int-sized on the platforms ORT supports).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hmmn {
namespace ort {

struct Status;
struct Env;
struct Session;
struct SessionOptions;
struct Value;
struct MemoryInfo;

// The C API version whose table the slots below were counted in: ONNX Runtime 1.18's, the oldest
// the project supports (pyproject: onnxruntime>=1.18). GetApi(kApiVersion) returns that table's
// layout (later entries appended) or NULL from an older ORT; Library::load checks both.
constexpr uint32_t kApiVersion = 18;

enum Slot : size_t {
  kCreateStatus = 0,
  kGetErrorCode = 1,
  kGetErrorMessage = 2,
  kCreateEnv = 3,
  kCreateSession = 7,
  kRun = 9,
  kCreateSessionOptions = 10,
  kSetSessionLogSeverityLevel = 22,
  kSetSessionGraphOptimizationLevel = 23,
  kSetIntraOpNumThreads = 24,
  kCreateTensorWithDataAsOrtValue = 49,
  kCreateCpuMemoryInfo = 69,
  kReleaseEnv = 92,
  kReleaseStatus = 93,
  kReleaseMemoryInfo = 94,
  kReleaseSession = 95,
  kReleaseValue = 96,
  kReleaseSessionOptions = 100,
};

// ONNXTensorElementDataType, OrtLoggingLevel, GraphOptimizationLevel, OrtAllocatorType, OrtMemType values.
constexpr int kFloat = 1, kInt32 = 6, kInt64 = 7, kFloat16 = 10;
constexpr int kLogError = 3;
constexpr int kEnableAll = 99;
constexpr int kArenaAllocator = 1, kMemTypeDefault = 0;
constexpr int kInvalidArgument = 2;  // OrtErrorCode ORT_INVALID_ARGUMENT

using CreateStatusFn = Status* (*)(int code, const char* message);
using GetErrorCodeFn = int (*)(const Status*);
using GetErrorMessageFn = const char* (*)(const Status*);
using CreateEnvFn = Status* (*)(int level, const char* logid, Env** out);
using CreateSessionFn = Status* (*)(const Env*, const char* path, const SessionOptions*, Session** out);
using RunFn = Status* (*)(Session*, const void* run_options, const char* const* input_names, const Value* const* inputs,
                          size_t input_count, const char* const* output_names, size_t output_count, Value** outputs);
using CreateSessionOptionsFn = Status* (*)(SessionOptions** out);
using SetIntFn = Status* (*)(SessionOptions*, int);
using CreateTensorWithDataFn = Status* (*)(const MemoryInfo*, void* data, size_t bytes, const int64_t* shape,
                                           size_t rank, int type, Value** out);
using CreateCpuMemoryInfoFn = Status* (*)(int allocator_type, int mem_type, MemoryInfo** out);
template <typename T>
using ReleaseFn = void (*)(T*);

// A loaded libonnxruntime: dlopen'ed once per path for the life of the process (ORT's own
// static state does not survive being unloaded), with one OrtEnv.
class Library {
 public:
  // Finds the library (explicit path, then $HMMN_ORT_LIBRARY, then the configured path), loads
  // it, checks its API version and that the counted slots hold what they should (a status made,
  // read back and released). Error(HMMN_ERROR_BACKEND) says what to do otherwise.
  static const Library& load(const std::string& explicit_path);

  template <typename F>
  F fn(Slot slot) const { return reinterpret_cast<F>(table_[slot]); }
  // Throws Error(HMMN_ERROR_BACKEND) with ORT's message when status is not null (and releases it).
  void check(Status* status, const std::string& what) const;
  Env* env() const { return env_; }
  const std::string& version() const { return version_; }
  const std::string& path() const { return path_; }

 private:
  Library() = default;
  bool slots_agree() const;  // the status round trip above, through slots 0, 1, 2 and kReleaseStatus
  void* const* table_ = nullptr;
  Env* env_ = nullptr;
  std::string version_, path_;
};

}  // namespace ort
}  // namespace hmmn
