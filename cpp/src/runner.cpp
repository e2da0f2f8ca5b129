// Picks the runner a model is opened with.
#include "runner.hpp"

#include "error.hpp"

namespace hmmn {

#ifdef HMMN_WITH_TENSORRT
std::unique_ptr<Runner> make_tensorrt_runner(const Manifest& manifest, const RunnerOptions& options);
#endif

std::unique_ptr<Runner> make_runner(const Manifest& manifest, const RunnerOptions& options) {
  if (options.backend == "onnxruntime") return make_ort_runner(manifest, options);
#ifdef HMMN_WITH_TENSORRT
  if (options.backend == "tensorrt") return make_tensorrt_runner(manifest, options);
#endif
  fail(HMMN_ERROR_ARGUMENT, "unknown backend '" + options.backend + "'; this libhmmn has \"onnxruntime\"" +
#ifdef HMMN_WITH_TENSORRT
                                std::string(" and \"tensorrt\"")
#else
                                std::string(" (build with -DHMMN_WITH_TENSORRT=ON for \"tensorrt\")")
#endif
  );
}

}  // namespace hmmn
