#include "manifest.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "error.hpp"
#include "protocol.hpp"
#include "sha256.hpp"

#include <nlohmann/json.hpp>

namespace hmmn {

const char* const kGraphNames[kGraphCount] = {"encode_query", "encode_memory", "match", "decode"};

namespace {
using Json = nlohmann::json;

const char* kFormat = "hmmn-deploy.manifest";
// The one schema version this reader takes, as Python's core/manifest.py SCHEMA_VERSION.
const int kSchemaVersion = 3;
const char* const kFreeDims[] = {"N", "T", "H", "W"};  // bound by the runtime; every other symbol is derived

// A whole number (JSON writers may spell 96 as 96.0); throws std::runtime_error otherwise.
int64_t integer(const Json& j) {
  if (j.is_number_integer()) return j.get<int64_t>();
  const double v = j.is_number() ? j.get<double>() : 0.5;
  if (std::floor(v) != v || std::fabs(v) > 9.0e15) throw std::runtime_error("expected an integer, got " + j.dump());
  return static_cast<int64_t>(v);
}

// nlohmann's messages without their "[json.exception.type_error.302] " prefix.
std::string reason(const std::exception& e) {
  const std::string w = e.what();
  const size_t end = w.find("] ");
  return w.rfind("[json.exception.", 0) == 0 && end != std::string::npos ? w.substr(end + 2) : w;
}

std::vector<DerivedDim> derived_dims(const Json& j) {
  std::vector<DerivedDim> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    DerivedDim d;
    d.symbol = it.key();
    d.of = it.value().at("of").get<std::string>();
    d.ratio = integer(it.value().at("ratio"));
    d.offset = integer(it.value().at("offset"));
    const bool free = std::find(std::begin(kFreeDims), std::end(kFreeDims), d.of) != std::end(kFreeDims);
    if (!free || d.ratio < 1) throw std::runtime_error("derived dimension " + d.symbol + " of " + d.of + " / " +
                                                       std::to_string(d.ratio) + " is not of N, T, H or W by a ratio >= 1");
    out.push_back(d);
  }
  return out;
}

TensorSpec tensor_spec(const Json& j, const DimValues& known) {
  TensorSpec s;
  s.name = j.at("name").get<std::string>();
  s.dtype = dtype_from_name(j.at("dtype").get<std::string>());
  const Json& dims = j.at("dims");
  for (size_t i = 0; i < dims.size(); ++i) {
    Dim d;
    if (dims.at(i).is_string()) {
      d.symbol = dims.at(i).get<std::string>();
      known.get(d.symbol);  // refuses unknown symbols now, not per frame
    } else {
      d.value = integer(dims.at(i));
    }
    s.dims.push_back(d);
  }
  return s;
}

GraphSpec graph_spec(const Json& j, const std::string& name, const DimValues& known) {
  GraphSpec g;
  g.name = name;
  g.file = j.at("file").get<std::string>();
  g.sha256 = j.at("sha256").get<std::string>();
  g.bytes = integer(j.at("bytes"));
  for (size_t i = 0; i < j.at("inputs").size(); ++i) g.inputs.push_back(tensor_spec(j.at("inputs").at(i), known));
  for (size_t i = 0; i < j.at("outputs").size(); ++i) g.outputs.push_back(tensor_spec(j.at("outputs").at(i), known));
  return g;
}
}  // namespace

DimValues DimValues::make(const std::vector<DerivedDim>& derived, int64_t n, int64_t t, int64_t height, int64_t width) {
  DimValues v;
  v.derived_ = derived;
  v.values_ = {{"N", n}, {"T", t}, {"H", height}, {"W", width}};
  for (const DerivedDim& d : derived) {
    const int64_t of = v.values_.at(d.of);
    if (of % d.ratio)
      fail(HMMN_ERROR_INTERNAL, d.of + " = " + std::to_string(of) + " is not a multiple of " + std::to_string(d.ratio) +
                                    " (derived dimension " + d.symbol + ")");
    v.values_[d.symbol] = of / d.ratio + d.offset;
  }
  return v;
}

DimValues DimValues::with_objects(int64_t n) const {
  return make(derived_, n, values_.at("T"), values_.at("H"), values_.at("W"));
}

int64_t DimValues::get(const std::string& s) const {
  const auto it = values_.find(s);
  if (it == values_.end()) fail(HMMN_ERROR_ARTIFACT, "unknown dimension symbol '" + s + "' in the manifest");
  return it->second;
}

Shape TensorSpec::shape(const DimValues& values) const {
  Shape out;
  for (const Dim& d : dims) out.push_back(d.symbol.empty() ? d.value : values.get(d.symbol));
  return out;
}

const TensorSpec& GraphSpec::input(const std::string& n) const {
  for (const TensorSpec& s : inputs)
    if (s.name == n) return s;
  fail(HMMN_ERROR_ARTIFACT, "graph " + name + " has no input '" + n + "' in the manifest; export again with hmmn-export");
}

const TensorSpec& GraphSpec::output(const std::string& n) const {
  for (const TensorSpec& s : outputs)
    if (s.name == n) return s;
  fail(HMMN_ERROR_ARTIFACT, "graph " + name + " has no output '" + n + "' in the manifest; export again with hmmn-export");
}

Manifest read_manifest(const std::string& folder) {
  const std::string path = folder + "/manifest.json";
  std::ifstream file(path, std::ios::binary);
  if (!file)
    fail(HMMN_ERROR_ARTIFACT, "'" + folder + "' has no manifest.json: it is not an hmmn-export folder (run hmmn-export)");
  std::stringstream text;
  text << file.rdbuf();
  Json root;
  try {
    root = Json::parse(text.str());
  } catch (const std::exception& e) {
    fail(HMMN_ERROR_ARTIFACT, "'" + path + "' is not valid JSON (" + reason(e) + "); export again with hmmn-export");
  }
  if (!root.is_object() || !root.contains("format") || !root.at("format").is_string() ||
      root.at("format").get<std::string>() != kFormat)
    fail(HMMN_ERROR_ARTIFACT, "'" + path + "' is not an hmmn-deploy manifest");
  const Json version = root.contains("schema_version") ? root.at("schema_version") : Json();
  if (!version.is_number() || version.get<double>() != kSchemaVersion)
    fail(HMMN_ERROR_ARTIFACT, "'" + path + "' has manifest schema version " + (version.is_null() ? "(none)" : version.dump()) +
                                  "; this libhmmn reads version " + std::to_string(kSchemaVersion) +
                                  " only. Re-export the folder with the hmmn-export that matches this libhmmn, or use "
                                  "the libhmmn of the hmmn-deploy that wrote it");
  Manifest m;
  m.folder = folder;
  try {
    m.precision = root.at("precision").at("name").get<std::string>();
    const Json& input = root.at("input");
    m.height = integer(input.at("height"));
    m.width = integer(input.at("width"));
    m.pad_multiple = static_cast<int>(integer(input.at("multiple")));
    m.min_cells_16 = integer(input.at("min_cells_16"));
    const Json& memory = root.at("memory");
    m.mem_every = static_cast<int>(integer(memory.at("mem_every")));
    m.capacity = static_cast<int>(integer(memory.at("capacity")));
    if (!memory.at("max_objects").is_null()) {  // null: 0, any number; a number below 1: -1, refused below
      const int64_t most = integer(memory.at("max_objects"));
      m.max_objects = most < 1 ? -1 : static_cast<int>(most);
    }
    m.derived = derived_dims(root.at("derived_dims"));
    const DimValues known = m.dims(1, 1, 0, 0);  // every symbol, to refuse unknown ones while reading
    for (int g = 0; g < kGraphCount; ++g)
      m.graphs[g] = graph_spec(root.at("graphs").at(kGraphNames[g]), kGraphNames[g], known);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(HMMN_ERROR_ARTIFACT, "'" + path + "' does not have what libhmmn needs (" + reason(e) +
                                  "); export again with hmmn-export");
  }
  std::string problem = settings_problem(m.capacity, m.mem_every);
  if (m.pad_multiple < 1) problem = "input.multiple must be >= 1";
  if (m.max_objects < 0) problem = "max_objects must be >= 1 or null";
  if (!problem.empty()) fail(HMMN_ERROR_ARTIFACT, "'" + path + "': " + problem + "; export again with hmmn-export");
  return m;
}

std::string checked_graph_path(const Manifest& manifest, Graph graph) {
  const GraphSpec& g = manifest.graph(graph);
  const std::string path = manifest.folder + "/" + g.file;
  struct stat info;
  if (stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode))
    fail(HMMN_ERROR_ARTIFACT, "graph '" + path + "' is missing; export again with hmmn-export");
  if (static_cast<int64_t>(info.st_size) != g.bytes)
    fail(HMMN_ERROR_ARTIFACT, "graph '" + path + "' has " + std::to_string(info.st_size) + " bytes, the manifest recorded " +
                                  std::to_string(g.bytes) + ": it was changed or truncated after the export; export again with hmmn-export");
  if (sha256_file_hex(path) != g.sha256)
    fail(HMMN_ERROR_ARTIFACT, "graph '" + path + "' differs from the file the export validated (SHA-256 mismatch): it was "
                              "edited after the export; export again with hmmn-export");
  return path;
}

}  // namespace hmmn
