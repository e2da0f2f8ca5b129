#include "manifest.hpp"

#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "error.hpp"
#include "sha256.hpp"

#include <nlohmann/json.hpp>

namespace hmmn {

const char* const kGraphNames[kGraphCount] = {"encode_query", "encode_memory", "match", "decode"};

namespace {
using Json = nlohmann::json;

const char* kFormat = "hmmn-deploy.manifest";
// Schema versions whose fields this reader uses unchanged (2 added TensorRT build records).
const int kOldestSchema = 1, kNewestSchema = 2;

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

TensorSpec tensor_spec(const Json& j) {
  TensorSpec s;
  s.name = j.at("name").get<std::string>();
  s.dtype = dtype_from_name(j.at("dtype").get<std::string>());
  const Json& dims = j.at("dims");
  for (size_t i = 0; i < dims.size(); ++i) {
    Dim d;
    if (dims.at(i).is_string()) {
      d.symbol = dims.at(i).get<std::string>();
      DimValues{}.get(d.symbol);  // refuses unknown symbols now, not per frame
    } else {
      d.value = integer(dims.at(i));
    }
    s.dims.push_back(d);
  }
  return s;
}

GraphSpec graph_spec(const Json& j, const std::string& name) {
  GraphSpec g;
  g.name = name;
  g.file = j.at("file").get<std::string>();
  g.sha256 = j.at("sha256").get<std::string>();
  g.bytes = integer(j.at("bytes"));
  for (size_t i = 0; i < j.at("inputs").size(); ++i) g.inputs.push_back(tensor_spec(j.at("inputs").at(i)));
  for (size_t i = 0; i < j.at("outputs").size(); ++i) g.outputs.push_back(tensor_spec(j.at("outputs").at(i)));
  return g;
}
}  // namespace

DimValues DimValues::make(int64_t n, int64_t t, int64_t height, int64_t width) {
  if (height % 16 || width % 16)
    fail(HMMN_ERROR_INTERNAL, "padded size " + std::to_string(height) + "x" + std::to_string(width) + " is not a multiple of 16");
  DimValues v;
  v.N = n, v.K = n + 1, v.T = t, v.H = height, v.W = width;
  v.h = height / 16, v.w = width / 16, v.h8 = height / 8, v.w8 = width / 8, v.h4 = height / 4, v.w4 = width / 4;
  return v;
}

DimValues DimValues::with_objects(int64_t n) const {
  DimValues v = *this;
  v.N = n, v.K = n + 1;
  return v;
}

int64_t DimValues::get(const std::string& s) const {
  if (s == "N") return N;
  if (s == "K") return K;
  if (s == "T") return T;
  if (s == "H") return H;
  if (s == "W") return W;
  if (s == "h") return h;
  if (s == "w") return w;
  if (s == "h8") return h8;
  if (s == "w8") return w8;
  if (s == "h4") return h4;
  if (s == "w4") return w4;
  fail(HMMN_ERROR_ARTIFACT, "unknown dimension symbol '" + s + "' in the manifest");
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
  const double version = root.contains("schema_version") && root.at("schema_version").is_number()
                             ? root.at("schema_version").get<double>() : -1;
  if (version < kOldestSchema || version > kNewestSchema)
    fail(HMMN_ERROR_ARTIFACT, "'" + path + "' has a manifest schema version this libhmmn does not read (it reads " +
                                  std::to_string(kOldestSchema) + " to " + std::to_string(kNewestSchema) +
                                  "); export again with a matching hmmn-export, or update libhmmn");
  Manifest m;
  m.folder = folder;
  try {
    m.precision = root.at("precision").at("name").get<std::string>();
    m.height = integer(root.at("input").at("height"));
    m.width = integer(root.at("input").at("width"));
    const Json& memory = root.at("memory");
    m.mem_every = static_cast<int>(integer(memory.at("mem_every")));
    m.capacity = static_cast<int>(integer(memory.at("capacity")));
    m.max_objects = static_cast<int>(integer(memory.at("max_objects")));
    m.top_k = static_cast<int>(integer(root.at("model").at("config").at("top_k")));
    for (int g = 0; g < kGraphCount; ++g) m.graphs[g] = graph_spec(root.at("graphs").at(kGraphNames[g]), kGraphNames[g]);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(HMMN_ERROR_ARTIFACT, "'" + path + "' does not have what libhmmn needs (" + reason(e) +
                                  "); export again with hmmn-export");
  }
  if (m.mem_every < 1 || m.capacity < 2)
    fail(HMMN_ERROR_ARTIFACT, "'" + path + "' has mem_every < 1 or capacity < 2");
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
