// SHA-256 (OpenSSL libcrypto) of a file, to check a graph against the digest its manifest recorded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hmmn {

std::string sha256_hex(const void* data, size_t size);
// Throws Error(HMMN_ERROR_ARTIFACT) when the file cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace hmmn
