// A graph runner runs one of the four stage graphs on caller-owned buffers: outputs are
// written in place, nothing is allocated or copied per call by libhmmn.
#pragma once

#include <memory>
#include <string>

#include "manifest.hpp"
#include "tensor.hpp"

namespace hmmn {

struct Binding {
  const char* name;  // a tensor name of the graph's contract (static storage)
  View view;
};

class Runner {
 public:
  virtual ~Runner() = default;
  // Thread-safe: several videos may run graphs of one runner at the same time.
  virtual void run(Graph graph, const Binding* inputs, size_t input_count, const Binding* outputs,
                   size_t output_count) = 0;
};

struct RunnerOptions {
  std::string backend = "onnxruntime";
  std::string device = "cpu";
  std::string ort_library;  // empty: $HMMN_ORT_LIBRARY, then the configured path
  int threads = 0;
};

std::unique_ptr<Runner> make_ort_runner(const Manifest& manifest, const RunnerOptions& options);
std::unique_ptr<Runner> make_runner(const Manifest& manifest, const RunnerOptions& options);

}  // namespace hmmn
