// manifest.json of an hmmn-export folder: the graph contracts, the memory settings, the size.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace hmmn {

// Values of every dimension symbol (export/contracts.py DIMENSIONS) for N objects, T slots and
// a padded H x W frame.
struct DimValues {
  int64_t N = 1, K = 2, T = 1, H = 16, W = 16, h = 1, w = 1, h8 = 2, w8 = 2, h4 = 4, w4 = 4;
  static DimValues make(int64_t n, int64_t t, int64_t height, int64_t width);
  int64_t get(const std::string& symbol) const;  // throws for an unknown symbol
  DimValues with_objects(int64_t n) const;
};

struct Dim {
  int64_t value = 0;   // when static
  std::string symbol;  // when symbolic (N, K, T, H, W, h, w, h8, w8, h4, w4)
};

struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<Dim> dims;
  Shape shape(const DimValues& values) const;
};

struct GraphSpec {
  std::string name, file;
  std::string sha256;  // of the file, as the export recorded it
  int64_t bytes = 0;
  std::vector<TensorSpec> inputs, outputs;
  const TensorSpec& input(const std::string& name) const;
  const TensorSpec& output(const std::string& name) const;
};

enum Graph { kEncodeQuery = 0, kEncodeMemory = 1, kMatch = 2, kDecode = 3, kGraphCount = 4 };
extern const char* const kGraphNames[kGraphCount];

struct Manifest {
  std::string folder;
  std::string precision;  // fp32 or fp16
  int64_t height = 0, width = 0;  // the size the export was validated at (TensorRT's only size)
  int mem_every = 5, capacity = 48, max_objects = 8;
  int top_k = 1;  // the fewest 1/16 cells a frame must have
  std::array<GraphSpec, kGraphCount> graphs;
  const GraphSpec& graph(Graph g) const { return graphs[g]; }
};

// Reads and checks FOLDER/manifest.json; Error(HMMN_ERROR_ARTIFACT) says what is wrong.
Manifest read_manifest(const std::string& folder);

// The path of a graph file after checking that it exists and has the recorded size and SHA-256
// (what is loaded is what the export validated); Error(HMMN_ERROR_ARTIFACT) otherwise.
std::string checked_graph_path(const Manifest& manifest, Graph graph);

}  // namespace hmmn
