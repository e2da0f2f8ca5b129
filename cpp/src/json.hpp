// A small JSON reader for manifest.json: objects, arrays, strings, numbers, true/false/null.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hmmn {

class Json {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  static Json parse(const std::string& text);  // throws std::runtime_error with the offset

  Kind kind() const { return kind_; }
  bool is(Kind k) const { return kind_ == k; }
  bool has(const std::string& key) const;
  // Accessors throw std::runtime_error naming `what` when the kind or key does not fit.
  const Json& at(const std::string& key) const;
  const Json& at(size_t index) const;
  size_t size() const;
  const std::string& str() const;
  double number() const;
  long long integer() const;  // a number without fraction
  bool boolean() const;
  const std::vector<std::string>& keys() const { return keys_; }  // in file order

 private:
  friend class JsonParser;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<Json> items_;
  std::vector<std::string> keys_;
  std::map<std::string, size_t> index_;  // key -> position in items_
};

}  // namespace hmmn
