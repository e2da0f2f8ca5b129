// Finding and loading libonnxruntime with dlopen; the API version check.
#include <dlfcn.h>

#include <cstdlib>
#include <map>
#include <mutex>

#include "error.hpp"
#include "ort_api.hpp"

#ifndef HMMN_ORT_DEFAULT_LIBRARY
#define HMMN_ORT_DEFAULT_LIBRARY ""
#endif

namespace hmmn {
namespace ort {

namespace {
struct ApiBase {  // OrtApiBase: two function pointers, in this order
  const void* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)();
};

std::string locate(const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  const char* env = std::getenv("HMMN_ORT_LIBRARY");
  if (env && *env) return env;
  if (*HMMN_ORT_DEFAULT_LIBRARY) return HMMN_ORT_DEFAULT_LIBRARY;
  fail(HMMN_ERROR_BACKEND,
       "ONNX Runtime was not found: pass its library in hmmn_options.ort_library (hmmn_segment --ort-library), "
       "set HMMN_ORT_LIBRARY, or configure libhmmn with -DHMMN_ORT_LIBRARY=PATH. pip install onnxruntime ships "
       "one as site-packages/onnxruntime/capi/libonnxruntime.so.<version>");
}
}  // namespace

const Library& Library::load(const std::string& explicit_path) {
  static std::mutex mutex;
  static auto* loaded = new std::map<std::string, Library*>();  // never freed: see the class comment
  const std::string path = locate(explicit_path);
  std::lock_guard<std::mutex> lock(mutex);
  auto it = loaded->find(path);
  if (it != loaded->end()) return *it->second;

  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    fail(HMMN_ERROR_BACKEND, "cannot load ONNX Runtime from '" + path + "' (" + (why ? why : "dlopen failed") +
                                 "); give the path of libonnxruntime.so.<version> (ort_library or HMMN_ORT_LIBRARY)");
  }
  auto get_base = reinterpret_cast<const ApiBase* (*)()>(dlsym(handle, "OrtGetApiBase"));
  if (!get_base) {
    dlclose(handle);
    fail(HMMN_ERROR_BACKEND, "'" + path + "' is not ONNX Runtime (it has no OrtGetApiBase); give the path of "
                             "libonnxruntime.so.<version>");
  }
  const ApiBase* base = get_base();
  const std::string version = base && base->GetVersionString ? base->GetVersionString() : "unknown";
  const void* table = base && base->GetApi ? base->GetApi(kApiVersion) : nullptr;
  if (!table) {
    dlclose(handle);
    fail(HMMN_ERROR_BACKEND, "ONNX Runtime " + version + " at '" + path + "' does not serve C API version " +
                                 std::to_string(kApiVersion) + ", the one libhmmn was written for: it is too old (libhmmn "
                                 "needs 1." + std::to_string(kApiVersion) + " or newer); pip install -U onnxruntime");
  }
  auto* lib = new Library();
  lib->table_ = static_cast<void* const*>(table);
  lib->version_ = version;
  lib->path_ = path;
  if (!lib->slots_agree()) {
    delete lib;  // the handle stays open: what it registered may not survive dlclose
    fail(HMMN_ERROR_BACKEND, "ONNX Runtime " + version + " at '" + path + "': its C API table does not hold what "
                             "libhmmn expects at the positions counted for API version " + std::to_string(kApiVersion) +
                             " (a status made, read back and released); this libhmmn cannot use it. Report it, with "
                             "the ONNX Runtime version");
  }
  lib->check(lib->fn<CreateEnvFn>(kCreateEnv)(kLogError, "hmmn", &lib->env_), "creating the ONNX Runtime environment");
  (*loaded)[path] = lib;
  return *lib;
}

bool Library::slots_agree() const {
  const char* probe = "hmmn slot check";
  Status* s = fn<CreateStatusFn>(kCreateStatus)(kInvalidArgument, probe);
  if (!s) return false;
  const char* message = fn<GetErrorMessageFn>(kGetErrorMessage)(s);
  const bool same = fn<GetErrorCodeFn>(kGetErrorCode)(s) == kInvalidArgument && message && std::string(message) == probe;
  if (same) fn<ReleaseFn<Status>>(kReleaseStatus)(s);  // released only through a table that agreed so far
  return same;
}

void Library::check(Status* status, const std::string& what) const {
  if (!status) return;
  std::string message = fn<GetErrorMessageFn>(kGetErrorMessage)(status);
  fn<ReleaseFn<Status>>(kReleaseStatus)(status);
  fail(HMMN_ERROR_BACKEND, what + ": ONNX Runtime " + version_ + " says: " + message);
}

}  // namespace ort
}  // namespace hmmn
