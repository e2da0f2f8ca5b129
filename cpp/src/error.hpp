// The one exception type inside libhmmn: a status for the C ABI and a message for the user.
#pragma once

#include <stdexcept>
#include <string>

#include "hmmn/hmmn.h"

namespace hmmn {

class Error : public std::runtime_error {
 public:
  Error(hmmn_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  hmmn_status status() const { return status_; }

 private:
  hmmn_status status_;
};

[[noreturn]] inline void fail(hmmn_status status, const std::string& message) { throw Error(status, message); }

}  // namespace hmmn
