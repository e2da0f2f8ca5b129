// manifest.json of an hmmn-export folder: the graph contracts, the memory settings, the size.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace hmmn {

// A derived dimension symbol: value = value of `of` / ratio + offset (manifest.json
// `derived_dims`; Python's core/contracts.py DERIVED), e.g. h = H / 16 + 0, K = N / 1 + 1.
struct DerivedDim {
  std::string symbol, of;
  int64_t ratio = 1, offset = 0;
};

// Values of every dimension symbol for N objects, T slots and a padded H x W frame: the four
// free symbols, and the manifest's derived ones computed from them.
class DimValues {
 public:
  DimValues() = default;
  // Error(INTERNAL) when a ratio does not divide its free value (H, W not padded).
  static DimValues make(const std::vector<DerivedDim>& derived, int64_t n, int64_t t, int64_t height, int64_t width);
  int64_t get(const std::string& symbol) const;  // Error(ARTIFACT) for an unknown symbol
  DimValues with_objects(int64_t n) const;
  int64_t H() const { return get("H"); }
  int64_t W() const { return get("W"); }

 private:
  std::vector<DerivedDim> derived_;
  std::map<std::string, int64_t> values_;
};

struct Dim {
  int64_t value = 0;   // when static
  std::string symbol;  // when symbolic: N, T, H, W or a derived symbol
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

// Everything here is read from manifest.json (docs/protocol.md says where each number comes from).
struct Manifest {
  std::string folder;
  std::string precision;  // fp32 or fp16
  int64_t height = 0, width = 0;  // the size the export was validated at (TensorRT's only size)
  int pad_multiple = 0;            // input.multiple: frames are padded to multiples of it
  int64_t min_cells_16 = 0;        // input.min_cells_16: the fewest 1/16 cells a frame must have
  std::vector<DerivedDim> derived;  // derived_dims
  int mem_every = 0, capacity = 0;  // memory: the export's defaults
  int max_objects = 0;              // memory.max_objects; 0: any number (null)
  std::array<GraphSpec, kGraphCount> graphs;
  const GraphSpec& graph(Graph g) const { return graphs[g]; }
  DimValues dims(int64_t n, int64_t t, int64_t height, int64_t width) const {
    return DimValues::make(derived, n, t, height, width);
  }
};

// Reads and checks FOLDER/manifest.json; Error(HMMN_ERROR_ARTIFACT) says what is wrong.
Manifest read_manifest(const std::string& folder);

// The path of a graph file after checking that it exists and has the recorded size and SHA-256
// (what is loaded is what the export validated); Error(HMMN_ERROR_ARTIFACT) otherwise.
std::string checked_graph_path(const Manifest& manifest, Graph graph);

}  // namespace hmmn
