// Unit tests of the protocol's rules (docs/protocol.md): slots kept, evicted and read, ages,
// the bank's buffers written in place, groups; plus the manifest reader, SHA-256 and padding.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bank.hpp"
#include "check.hpp"
#include "error.hpp"
#include "image.hpp"
#include "manifest.hpp"
#include "protocol.hpp"
#include "sha256.hpp"

#include <nlohmann/json.hpp>

using namespace hmmn;
using Json = nlohmann::json;

namespace {

// tests/data/protocol_cases.json, the cases Python's tests/runtime/test_protocol.py runs too.
Json load_cases(const char* path) {
  std::ifstream file(path ? path : "");
  CHECK(file.good());
  return file.good() ? Json::parse(file) : Json::object();
}

void test_schedule_cases(const Json& cases) {
  for (const Json& c : cases.value("schedules", Json::array())) {
    const int start = c.at("start").get<int>(), steps = c.at("steps").get<int>();
    SlotPolicy p(start, c.at("capacity").get<int>(), c.at("mem_every").get<int>());
    Json placed = Json::array();
    for (int previous = start; previous < start + steps; ++previous) {
      const SlotPolicy::Decision d = p.decide(previous);
      placed.push_back(d.kind == SlotPolicy::Decision::kDrop ? Json() : Json(d.slot));
      CHECK(p.fine_slot() == (p.permanent() == 0 ? 0 : 1) && p.slot16() == p.permanent());
      p.apply(d, previous);
    }
    const std::string name = c.at("name").get<std::string>();
    if (c.contains("placed") && placed != c.at("placed")) std::fprintf(stderr, "case '%s': placed %s\n", name.c_str(), placed.dump().c_str());
    CHECK(!c.contains("placed") || placed == c.at("placed"));
    CHECK(Json(p.frames()) == c.at("slot_frames"));
    CHECK(Json(p.ages(start + steps)) == c.at("ages_next"));
    CHECK(p.slots_read() == static_cast<int>(c.at("slot_frames").size()) + 1);
  }
  CHECK(cases.value("schedules", Json::array()).size() >= 5);  // the table was read
}

void test_settings_cases(const Json& cases) {
  for (const Json& c : cases.value("settings", Json::array())) {
    const int capacity = c.at("capacity").get<int>(), mem_every = c.at("mem_every").get<int>();
    CHECK(settings_problem(capacity, mem_every).empty() == c.at("accepted").get<bool>());
    bool refused = false;
    try { SlotPolicy(0, capacity, mem_every); } catch (const Error& e) { refused = e.status() == HMMN_ERROR_ARGUMENT; }
    CHECK(refused != c.at("accepted").get<bool>());
  }
  CHECK(cases.value("settings", Json::array()).size() >= 4);
}

void test_padding_cases(const Json& cases) {
  for (const Json& c : cases.value("padding", Json::array())) {
    const Padding p = padding_for(c.at("height").get<int>(), c.at("width").get<int>(), c.at("multiple").get<int>());
    CHECK((Json({p.top, p.bottom, p.left, p.right}) == c.at("pad")));
  }
  CHECK(cases.value("padding", Json::array()).size() >= 1);
}

// The derived dimensions of the Python export (K = N + 1, h = H / 16, ...), as manifest.json writes them.
std::vector<DerivedDim> derived() {
  return {{"K", "N", 1, 1}, {"h", "H", 16, 0}, {"w", "W", 16, 0}, {"h8", "H", 8, 0}, {"w8", "W", 8, 0},
          {"h4", "H", 4, 0}, {"w4", "W", 4, 0}};
}

// A match contract with tiny channels (2) for a bank test without an export folder.
Manifest tiny_manifest() {
  auto spec = [](const char* name, DType dtype, std::vector<Dim> dims) { return TensorSpec{name, dtype, dims}; };
  auto sym = [](const char* s) { return Dim{0, s}; };
  auto num = [](int64_t v) { return Dim{v, ""}; };
  Manifest m;
  m.derived = derived();
  GraphSpec& g = m.graphs[kMatch];
  g.name = "match";
  g.inputs = {spec("mem_key16", DType::F32, {sym("T"), sym("N"), num(2), sym("h"), sym("w")}),
              spec("mem_value16", DType::F32, {sym("T"), sym("N"), num(2), sym("h"), sym("w")}),
              spec("tracks", DType::I32, {sym("T"), sym("N"), sym("h"), sym("w")}),
              spec("slot_age", DType::I32, {sym("T")}),
              spec("mem_key8", DType::F32, {num(2), sym("N"), sym("h"), sym("w"), num(4), num(2)}),
              spec("mem_value8", DType::F32, {num(2), sym("N"), sym("h"), sym("w"), num(4), num(2)}),
              spec("mem_key4", DType::F32, {num(2), sym("N"), sym("h"), sym("w"), num(16), num(2)}),
              spec("mem_value4", DType::F32, {num(2), sym("N"), sym("h"), sym("w"), num(16), num(2)})};
  return m;
}

const Binding& find(const std::vector<Binding>& b, const char* name) {
  for (const Binding& x : b)
    if (std::strcmp(x.name, name) == 0) return x;
  static Binding none{"", View{}};
  return none;
}

// Simulates the session's calls: encode_memory writes `frame` into the targets, match writes tracks_out.
void fake_frame(GroupBank& bank, int prev) {
  std::vector<Binding> targets, feeds, outs;
  bank.memory_targets(targets);
  for (const Binding& b : targets) {
    float* f = static_cast<float*>(b.view.data);
    for (int64_t i = 0; i < numel(b.view.shape); ++i) f[i] = static_cast<float>(prev);
  }
  bank.match_inputs(prev, feeds);
  bank.match_outputs(outs);
  const View& t = find(outs, "tracks_out").view;
  int32_t* tr = static_cast<int32_t*>(t.data);
  for (int64_t i = 0; i < numel(t.shape); ++i) tr[i] = prev;
  bank.update(prev);
}

void test_bank_writes_in_place() {
  const Manifest m = tiny_manifest();
  const DimValues dims = m.dims(1, 1, 32, 48);  // h = 2, w = 3
  GroupBank bank({4, 9}, 0, 3, 1, m, dims);
  std::vector<Binding> feeds;
  bank.match_inputs(0, feeds);
  const void* key16 = find(feeds, "mem_key16").view.data;
  CHECK((find(feeds, "mem_key16").view.shape == Shape{1, 2, 2, 2, 3}));
  for (int prev = 0; prev < 6; ++prev) fake_frame(bank, prev);
  feeds.clear();
  bank.match_inputs(6, feeds);
  CHECK(find(feeds, "mem_key16").view.data == key16);  // the same buffer, never grown
  CHECK((find(feeds, "mem_key16").view.shape == Shape{3, 2, 2, 2, 3}));  // capacity 3 slots read
  CHECK((bank.policy().frames() == std::vector<int>{0, 5}));
  const float* k = static_cast<const float*>(find(feeds, "mem_key16").view.data);
  const size_t slot = 2 * 2 * 2 * 3;
  CHECK(k[0] == 0.0f && k[slot] == 5.0f);  // slot 1 was overwritten in place by frame 5
  const int32_t* tracks = static_cast<const int32_t*>(find(feeds, "tracks").view.data);
  CHECK(tracks[0] == 5 && tracks[2 * 2 * 3] == 5);  // the maps carried forward by the last match
  const int32_t* ages = static_cast<const int32_t*>(find(feeds, "slot_age").view.data);
  CHECK(ages[0] == 2 && ages[1] == 1 && ages[2] == 0);
  const float* fine = static_cast<const float*>(find(feeds, "mem_key8").view.data);
  const size_t fine_slot = 2 * 2 * 3 * 4 * 2;
  CHECK(fine[0] == 0.0f && fine[fine_slot] == 5.0f);  // slot 0 the first frame, slot 1 the previous
}

void test_bank_select_objects() {
  const Manifest m = tiny_manifest();
  GroupBank bank({4, 9, 11}, 0, 4, 1, m, m.dims(1, 1, 16, 16));
  std::vector<Binding> targets;
  bank.memory_targets(targets);
  float* key = static_cast<float*>(find(targets, "key16").view.data);  // [N=3, 2, 1, 1]
  for (int i = 0; i < 6; ++i) key[i] = static_cast<float>(i);
  bank.select_objects({0, 2});
  CHECK((bank.labels() == std::vector<int32_t>{4, 11}));
  std::vector<Binding> feeds;
  bank.match_inputs(0, feeds);
  const float* k = static_cast<const float*>(find(feeds, "mem_key16").view.data);
  CHECK(k[0] == 0.0f && k[1] == 1.0f && k[2] == 4.0f && k[3] == 5.0f);
}

// manifest.json through the reader (nlohmann-json): whole numbers written as 96.0 are taken;
// broken JSON, a missing key, a fraction, another schema version and an unknown symbol are
// refused with HMMN_ERROR_ARTIFACT naming why.
std::string manifest_text(const std::string& height, const std::string& min_cells, int version = 3,
                          const std::string& symbol = "H") {
  const std::string graph = R"({"file": "g.onnx", "sha256": "00", "bytes": 1,
      "inputs": [{"name": "image", "dtype": "float32", "dims": [1, 3, ")" + symbol + R"(", "h4"]}], "outputs": []})";
  return R"({"format": "hmmn-deploy.manifest", "schema_version": )" + std::to_string(version) +
         R"(, "precision": {"name": "fp32"},
      "input": {"height": )" + height + R"(, "width": 128, "multiple": 16)" + min_cells + R"(},
      "derived_dims": {"K": {"of": "N", "ratio": 1, "offset": 1}, "h4": {"of": "W", "ratio": 4, "offset": 0},
                       "g": {"of": "H", "ratio": 32, "offset": 2}},
      "memory": {"mem_every": 5, "capacity": 8, "max_objects": null},
      "graphs": {"encode_query": )" + graph + ", \"encode_memory\": " + graph + ", \"match\": " + graph +
         ", \"decode\": " + graph + "}}";
}

std::string manifest_error(const std::string& folder, const std::string& text) {
  std::FILE* f = std::fopen((folder + "/manifest.json").c_str(), "w");
  std::fputs(text.c_str(), f);
  std::fclose(f);
  try {
    read_manifest(folder);
  } catch (const Error& e) {
    return e.status() == HMMN_ERROR_ARTIFACT ? e.what() : "wrong status";
  }
  return "";
}

bool has(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

void test_manifest_reader() {
  char folder[] = "/tmp/hmmn_manifest_XXXXXX";
  CHECK(mkdtemp(folder) != nullptr);
  const std::string cells = R"(, "min_cells_16": 30)";
  CHECK(manifest_error(folder, manifest_text("96.0", cells)).empty());
  const Manifest m = read_manifest(folder);
  CHECK(m.height == 96 && m.width == 128 && m.min_cells_16 == 30 && m.capacity == 8 && m.max_objects == 0);
  CHECK(m.pad_multiple == 16 && m.derived.size() == 3);
  // the derived dimensions are the manifest's numbers, whatever they are: none is built in
  const DimValues d = m.dims(3, 2, 64, 96);
  CHECK(d.get("K") == 4 && d.get("h4") == 24 && d.get("g") == 4 && d.with_objects(5).get("K") == 6);
  CHECK(m.graph(kEncodeQuery).inputs[0].dims[2].symbol == "H" && m.graph(kDecode).inputs[0].dims[1].value == 3);
  CHECK(has(manifest_error(folder, "{\"format\": "), "not valid JSON"));
  CHECK(has(manifest_error(folder, manifest_text("96", "")), "min_cells_16"));
  CHECK(has(manifest_error(folder, manifest_text("96.5", cells)), "expected an integer"));
  CHECK(has(manifest_error(folder, manifest_text("96", cells, 2)), "schema version 2; this libhmmn reads version 3 only"));
  CHECK(has(manifest_error(folder, manifest_text("96", cells, 2)), "Re-export"));
  CHECK(has(manifest_error(folder, manifest_text("96", cells, 3, "h")), "unknown dimension symbol 'h'"));
  std::remove((std::string(folder) + "/manifest.json").c_str());
  rmdir(folder);
}

void test_sha256() {
  CHECK(sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(sha256_hex(two_blocks.data(), two_blocks.size()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

void test_labels() {
  int32_t ids[6] = {0, 5, 5, 2, 0, 9};
  hmmn_labels l{ids, 3, 2, 3};
  CHECK((object_ids(l) == std::vector<int32_t>{2, 5, 9}));
  // logits [K=3, 16, 16] with a tie on pixel 0 (first wins) and object 2 on pixel 1
  std::vector<float> logits(3 * 256, 0.0f);
  logits[256 + 1] = 1.0f, logits[2 * 256 + 1] = 2.0f;
  std::vector<int32_t> out(256);
  write_labels(logits.data(), 3, 16, 16, Padding{}, {5, 9}, out.data());
  CHECK(out[0] == 0 && out[1] == 9);
}

}  // namespace

// argv[1]: tests/data/protocol_cases.json (pytest and ctest pass it).
int main(int argc, char** argv) {
  const Json cases = load_cases(argc > 1 ? argv[1] : nullptr);
  test_schedule_cases(cases);
  test_settings_cases(cases);
  test_padding_cases(cases);
  test_bank_writes_in_place();
  test_bank_select_objects();
  test_manifest_reader();
  test_sha256();
  test_labels();
  std::printf("%d failure(s)\n", check_failures());
  return check_failures() ? 1 : 0;
}
