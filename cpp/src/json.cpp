#include "json.hpp"

#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace hmmn {

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}

  Json document() {
    Json value = parse_value(0);
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the document");
    return value;
  }

 private:
  const std::string& s_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("JSON error at byte " + std::to_string(pos_) + ": " + what);
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) ++pos_;
  }
  char peek() {
    skip_space();
    if (pos_ >= s_.size()) fail("unexpected end");
    return s_[pos_];
  }
  void expect(const char* word) {
    for (const char* c = word; *c; ++c, ++pos_)
      if (pos_ >= s_.size() || s_[pos_] != *c) fail(std::string("expected ") + word);
  }

  // Items separated by ',' up to `close`; the opening bracket is at pos_.
  template <typename F>
  void parse_list(char close, F&& item) {
    ++pos_;
    if (peek() == close) {
      ++pos_;
      return;
    }
    for (;;) {
      item();
      const char c = peek();
      ++pos_;
      if (c == close) return;
      if (c != ',') fail(std::string("expected ',' or '") + close + "'");
    }
  }

  Json parse_value(int depth) {
    if (depth > 64) fail("nested too deeply");
    Json v;
    char c = peek();
    if (c == '{') {
      v.kind_ = Json::Kind::Object;
      parse_list('}', [&] {
        if (peek() != '"') fail("expected a key string");
        std::string key = parse_string();
        if (peek() != ':') fail("expected ':'");
        ++pos_;
        v.index_[key] = v.items_.size();
        v.keys_.push_back(key);
        v.items_.push_back(parse_value(depth + 1));
      });
      return v;
    }
    if (c == '[') {
      v.kind_ = Json::Kind::Array;
      parse_list(']', [&] { v.items_.push_back(parse_value(depth + 1)); });
      return v;
    }
    if (c == '"') {
      v.kind_ = Json::Kind::String;
      v.string_ = parse_string();
      return v;
    }
    if (c == 't') { expect("true"); v.kind_ = Json::Kind::Bool; v.bool_ = true; return v; }
    if (c == 'f') { expect("false"); v.kind_ = Json::Kind::Bool; return v; }
    if (c == 'n') { expect("null"); return v; }
    if (c == '-' || (c >= '0' && c <= '9')) {
      const char* begin = s_.c_str() + pos_;
      char* end = nullptr;
      v.number_ = std::strtod(begin, &end);
      if (end == begin) fail("bad number");
      pos_ += static_cast<size_t>(end - begin);
      v.kind_ = Json::Kind::Number;
      return v;
    }
    fail(std::string("unexpected character '") + c + "'");
  }

  std::string parse_string() {
    ++pos_;  // the opening quote
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c != '\\') { out += c; continue; }
      if (pos_ >= s_.size()) fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {  // \uXXXX as UTF-8 (surrogate pairs are not needed by manifests: kept as-is)
          if (pos_ + 4 > s_.size()) fail("short \\u escape");
          unsigned code = static_cast<unsigned>(std::strtoul(s_.substr(pos_, 4).c_str(), nullptr, 16));
          pos_ += 4;
          if (code < 0x80) {
            out += static_cast<char>(code);
          } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
          }
          break;
        }
        default: out += e;  // \" \\ \/
      }
    }
    if (pos_ >= s_.size()) fail("unterminated string");
    ++pos_;
    return out;
  }
};

Json Json::parse(const std::string& text) { return JsonParser(text).document(); }

bool Json::has(const std::string& key) const { return kind_ == Kind::Object && index_.count(key) > 0; }

const Json& Json::at(const std::string& key) const {
  if (kind_ != Kind::Object) throw std::runtime_error("'" + key + "' is looked up in something that is not an object");
  auto it = index_.find(key);
  if (it == index_.end()) throw std::runtime_error("missing key '" + key + "'");
  return items_[it->second];
}

const Json& Json::at(size_t index) const {
  if (kind_ != Kind::Array || index >= items_.size()) throw std::runtime_error("array index out of range");
  return items_[index];
}

size_t Json::size() const { return items_.size(); }

const std::string& Json::str() const {
  if (kind_ != Kind::String) throw std::runtime_error("expected a string");
  return string_;
}

double Json::number() const {
  if (kind_ != Kind::Number) throw std::runtime_error("expected a number");
  return number_;
}

long long Json::integer() const {
  double v = number();
  if (std::floor(v) != v || std::fabs(v) > 9.0e15) throw std::runtime_error("expected an integer");
  return static_cast<long long>(v);
}

bool Json::boolean() const {
  if (kind_ != Kind::Bool) throw std::runtime_error("expected true or false");
  return bool_;
}

}  // namespace hmmn
