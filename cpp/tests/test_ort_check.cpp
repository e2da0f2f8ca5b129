// The ORT binding's load-time checks (ort_library.cpp) on stand-ins (fake_ort.c): an ORT that
// does not serve the API version libhmmn was written for, and one whose table disagrees with
// the counted slots. Both must end in Error(HMMN_ERROR_BACKEND) with a message, not a crash.
//   test_ort_check LIBFAKE_ORT_OLD.so LIBFAKE_ORT_MISCOUNTED.so
#include <cstdio>
#include <string>

#include "check.hpp"
#include "error.hpp"
#include "ort_api.hpp"

namespace {
std::string load_error(const char* path) {
  try {
    hmmn::ort::Library::load(path);
  } catch (const hmmn::Error& e) {
    return e.status() == HMMN_ERROR_BACKEND ? e.what() : "wrong status";
  }
  return "";
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

int main(int argc, char** argv) {
  CHECK(argc == 3);
  if (argc != 3) return 1;
  const std::string version = std::to_string(hmmn::ort::kApiVersion);
  const std::string old = load_error(argv[1]);
  CHECK(has(old, "ONNX Runtime 0.0-fake") && has(old, "does not serve C API version " + version) && has(old, "too old"));
  const std::string miscounted = load_error(argv[2]);
  CHECK(has(miscounted, "does not hold what libhmmn expects") && has(miscounted, "API version " + version));
  std::printf("%d failure(s)\n", check_failures());
  return check_failures() ? 1 : 0;
}
