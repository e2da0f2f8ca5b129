// The ONNX Runtime runner: one session per graph; every call wraps the caller's buffers in
// OrtValues (no copy) and runs with pre-allocated outputs, which ORT writes in place.
#include <vector>

#include "error.hpp"
#include "ort_api.hpp"
#include "runner.hpp"

namespace hmmn {

namespace {
int element_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return ort::kFloat;
    case DType::F16: return ort::kFloat16;
    case DType::I32: return ort::kInt32;
    default: return ort::kInt64;
  }
}

class OrtRunner : public Runner {
 public:
  OrtRunner(const Manifest& manifest, const RunnerOptions& options) : lib_(ort::Library::load(options.ort_library)) {
    if (options.device != "cpu")
      fail(HMMN_ERROR_ARGUMENT, "the onnxruntime runner of libhmmn runs on the CPU; device '" + options.device +
                                    "' is not supported (use \"cpu\")");
    lib_.check(lib_.fn<ort::CreateCpuMemoryInfoFn>(ort::kCreateCpuMemoryInfo)(ort::kArenaAllocator, ort::kMemTypeDefault,
                                                                             &memory_),
               "describing CPU memory");
    ort::SessionOptions* so = nullptr;
    lib_.check(lib_.fn<ort::CreateSessionOptionsFn>(ort::kCreateSessionOptions)(&so), "creating session options");
    try {
      // As the Python backend: log errors only, every graph optimisation, the threads asked for.
      lib_.check(lib_.fn<ort::SetIntFn>(ort::kSetSessionLogSeverityLevel)(so, ort::kLogError), "setting the log level");
      lib_.check(lib_.fn<ort::SetIntFn>(ort::kSetSessionGraphOptimizationLevel)(so, ort::kEnableAll),
                 "setting the optimisation level");
      if (options.threads > 0)
        lib_.check(lib_.fn<ort::SetIntFn>(ort::kSetIntraOpNumThreads)(so, options.threads), "setting the threads");
      for (int g = 0; g < kGraphCount; ++g) {
        const std::string path = checked_graph_path(manifest, static_cast<Graph>(g));
        ort::Status* status = lib_.fn<ort::CreateSessionFn>(ort::kCreateSession)(lib_.env(), path.c_str(), so, &sessions_[g]);
        try {
          lib_.check(status, "loading '" + path + "'");
        } catch (const Error& e) {
          fail(HMMN_ERROR_ARTIFACT, std::string(e.what()) + "; export again with hmmn-export");
        }
      }
    } catch (...) {
      lib_.fn<ort::ReleaseFn<ort::SessionOptions>>(ort::kReleaseSessionOptions)(so);
      release();
      throw;
    }
    lib_.fn<ort::ReleaseFn<ort::SessionOptions>>(ort::kReleaseSessionOptions)(so);
  }

  ~OrtRunner() override { release(); }

  void run(Graph graph, const Binding* inputs, size_t input_count, const Binding* outputs, size_t output_count) override {
    // Small per-call arrays of names and value handles; the tensors' memory is the caller's.
    std::vector<const char*> names(input_count + output_count);
    std::vector<ort::Value*> values(input_count + output_count, nullptr);
    auto release_values = [&] {
      for (ort::Value* v : values) lib_.fn<ort::ReleaseFn<ort::Value>>(ort::kReleaseValue)(v);
    };
    try {
      for (size_t i = 0; i < input_count + output_count; ++i) {
        const Binding& b = i < input_count ? inputs[i] : outputs[i - input_count];
        names[i] = b.name;
        lib_.check(lib_.fn<ort::CreateTensorWithDataFn>(ort::kCreateTensorWithDataAsOrtValue)(
                       memory_, b.view.data, b.view.bytes(), b.view.shape.data(), b.view.shape.size(),
                       element_type(b.view.dtype), &values[i]),
                   std::string(kGraphNames[graph]) + "." + b.name + " " + shape_text(b.view.shape));
      }
      lib_.check(lib_.fn<ort::RunFn>(ort::kRun)(sessions_[graph], nullptr, names.data(), values.data(), input_count,
                                                names.data() + input_count, output_count, values.data() + input_count),
                 std::string("running ") + kGraphNames[graph]);
    } catch (...) {
      release_values();
      throw;
    }
    release_values();
  }

 private:
  void release() {
    for (ort::Session*& s : sessions_) {
      lib_.fn<ort::ReleaseFn<ort::Session>>(ort::kReleaseSession)(s);
      s = nullptr;
    }
    lib_.fn<ort::ReleaseFn<ort::MemoryInfo>>(ort::kReleaseMemoryInfo)(memory_);
    memory_ = nullptr;
  }

  const ort::Library& lib_;
  ort::MemoryInfo* memory_ = nullptr;
  ort::Session* sessions_[kGraphCount] = {nullptr, nullptr, nullptr, nullptr};
};
}  // namespace

std::unique_ptr<Runner> make_ort_runner(const Manifest& manifest, const RunnerOptions& options) {
  return std::unique_ptr<Runner>(new OrtRunner(manifest, options));
}

}  // namespace hmmn
