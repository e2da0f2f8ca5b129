// Picks the runner a model is opened with.
#include "runner.hpp"

#include "error.hpp"

namespace hmmn {

std::unique_ptr<Runner> make_runner(const Manifest& manifest, const RunnerOptions& options) {
  if (options.backend == "onnxruntime") return make_ort_runner(manifest, options);
  fail(HMMN_ERROR_ARGUMENT, "unknown backend '" + options.backend + "'; this libhmmn has \"onnxruntime\" "
                            "(a TensorRT runner is not written yet: use the Python tensorrt backend)");
}

}  // namespace hmmn
