#include "sha256.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "error.hpp"

namespace hmmn {

namespace {
using Context = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

Context new_context() {
  Context c(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!c || EVP_DigestInit_ex(c.get(), EVP_sha256(), nullptr) != 1) fail(HMMN_ERROR_INTERNAL, "OpenSSL cannot start SHA-256");
  return c;
}

void update(EVP_MD_CTX* c, const void* data, size_t size) {
  if (EVP_DigestUpdate(c, data, size) != 1) fail(HMMN_ERROR_INTERNAL, "OpenSSL SHA-256 update failed");
}

std::string finish_hex(EVP_MD_CTX* c) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(c, digest, &length) != 1) fail(HMMN_ERROR_INTERNAL, "OpenSSL SHA-256 final failed");
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) out += {digits[digest[i] >> 4], digits[digest[i] & 0xf]};
  return out;
}
}  // namespace

std::string sha256_hex(const void* data, size_t size) {
  Context c = new_context();
  update(c.get(), data, size);
  return finish_hex(c.get());
}

std::string sha256_file_hex(const std::string& path) {
  std::unique_ptr<FILE, decltype(&std::fclose)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail(HMMN_ERROR_ARTIFACT, "cannot read '" + path + "'");
  Context c = new_context();
  std::vector<unsigned char> chunk(1 << 20);
  size_t n;
  while ((n = std::fread(chunk.data(), 1, chunk.size(), f.get())) > 0) update(c.get(), chunk.data(), n);
  if (std::ferror(f.get())) fail(HMMN_ERROR_ARTIFACT, "cannot read '" + path + "'");
  return finish_hex(c.get());
}

}  // namespace hmmn
