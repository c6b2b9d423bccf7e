#include "spec/source_doc.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>

namespace flowmesh::spec {
namespace {

Mark FromYaml(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0 || m.column < 0) return {};
  return Mark{m.line + 1, m.column + 1};
}

bool IsOneOf(std::string_view s, std::initializer_list<std::string_view> options) {
  for (std::string_view o : options) {
    if (s == o) return true;
  }
  return false;
}

bool AllOf(std::string_view s, bool (*pred)(char)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsOctal(char c) { return c >= '0' && c <= '7'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// YAML 1.2 core-schema float syntax: [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool LooksLikeFloat(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && IsDigit(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && IsDigit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && IsDigit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

enum class ScalarKind { kString, kResolved, kOutOfRange };

// Resolves a plain scalar per the YAML 1.2 core schema. Integers too large for 64 bits
// become floats; floats beyond double range are reported.
ScalarKind ResolvePlain(const std::string& s, nlohmann::json* out) {
  if (IsOneOf(s, {"", "~", "null", "Null", "NULL"})) {
    *out = nullptr;
    return ScalarKind::kResolved;
  }
  if (IsOneOf(s, {"true", "True", "TRUE"})) {
    *out = true;
    return ScalarKind::kResolved;
  }
  if (IsOneOf(s, {"false", "False", "FALSE"})) {
    *out = false;
    return ScalarKind::kResolved;
  }
  std::string_view body = s;
  bool negative = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (AllOf(body, IsDigit)) {
    int64_t i = 0;
    auto [p, ec] = std::from_chars(s.data() + (s[0] == '+' ? 1 : 0), s.data() + s.size(), i);
    if (ec == std::errc() && p == s.data() + s.size()) {
      *out = i;
      return ScalarKind::kResolved;
    }
    uint64_t u = 0;
    if (!negative) {
      auto [pu, ecu] = std::from_chars(body.data(), body.data() + body.size(), u);
      if (ecu == std::errc() && pu == body.data() + body.size()) {
        *out = u;
        return ScalarKind::kResolved;
      }
    }
    // Fall through: parse as a (lossy) float.
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    std::string_view digits = std::string_view(s).substr(2);
    bool hex = s[1] == 'x';
    if (AllOf(digits, hex ? IsHex : IsOctal)) {
      uint64_t u = 0;
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), u, hex ? 16 : 8);
      if (ec != std::errc() || p != digits.data() + digits.size()) return ScalarKind::kOutOfRange;
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        *out = static_cast<int64_t>(u);
      } else {
        *out = u;
      }
      return ScalarKind::kResolved;
    }
  }
  if (IsOneOf(body, {".inf", ".Inf", ".INF"})) {
    *out = negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
    return ScalarKind::kResolved;
  }
  if (IsOneOf(s, {".nan", ".NaN", ".NAN"})) {
    *out = std::numeric_limits<double>::quiet_NaN();
    return ScalarKind::kResolved;
  }
  if (LooksLikeFloat(s)) {
    double d = 0;
    auto [p, ec] = std::from_chars(s.data() + (s[0] == '+' ? 1 : 0), s.data() + s.size(), d);
    if (ec == std::errc::result_out_of_range || !std::isfinite(d)) return ScalarKind::kOutOfRange;
    if (ec != std::errc() || p != s.data() + s.size()) return ScalarKind::kString;
    *out = d;
    return ScalarKind::kResolved;
  }
  return ScalarKind::kString;
}

}  // namespace

// Walks a yaml-cpp node tree into json, recording marks. Recursion is bounded by
// limits.max_depth; alias expansion is bounded by limits.max_nodes.
class YamlConverter {
 public:
  YamlConverter(SourceDoc* doc, const LoadLimits& limits, std::vector<SpecError>* errors)
      : doc_(doc), limits_(limits), errors_(errors) {}

  // Returns false when conversion had to stop (limits); errors are recorded either way.
  bool Convert(const YAML::Node& node, const std::string& path, int depth, nlohmann::json* out) {
    if (stopped_) return false;
    Mark mark = FromYaml(node.Mark());
    if (mark.line > 0) doc_->values_.emplace(path, mark);
    if (++nodes_ > limits_.max_nodes) {
      Stop(path, mark, "document too large: more than " + std::to_string(limits_.max_nodes) +
                           " values (after alias expansion)");
      return false;
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        *out = nullptr;
        return true;
      case YAML::NodeType::Scalar:
        ConvertScalar(node, path, mark, out);
        return true;
      case YAML::NodeType::Sequence: {
        if (depth >= limits_.max_depth) return TooDeep(path, mark);
        *out = nlohmann::json::array();
        size_t i = 0;
        for (const YAML::Node& child : node) {
          nlohmann::json value;
          if (!Convert(child, JoinIndex(path, i++), depth + 1, &value)) return false;
          out->push_back(std::move(value));
        }
        return true;
      }
      case YAML::NodeType::Map: {
        if (depth >= limits_.max_depth) return TooDeep(path, mark);
        *out = nlohmann::json::object();
        for (auto it = node.begin(); it != node.end(); ++it) {
          const YAML::Node& key = it->first;
          Mark key_mark = FromYaml(key.Mark());
          if (!key.IsScalar()) {
            Error(path, key_mark.line > 0 ? key_mark : mark, "mapping keys must be strings");
            continue;
          }
          const std::string& name = key.Scalar();
          std::string child_path = JoinKey(path, name);
          if (out->contains(name)) {
            Error(child_path, key_mark, "duplicate key '" + name + "'");
            continue;
          }
          if (key_mark.line > 0) doc_->keys_.emplace(child_path, key_mark);
          nlohmann::json value;
          if (!Convert(it->second, child_path, depth + 1, &value)) return false;
          // An empty value (`key:`) has no mark of its own: point at the key.
          if (key_mark.line > 0) doc_->values_.emplace(child_path, key_mark);
          (*out)[name] = std::move(value);
        }
        return true;
      }
    }
    *out = nullptr;
    return true;
  }

 private:
  void ConvertScalar(const YAML::Node& node, const std::string& path, Mark mark,
                     nlohmann::json* out) {
    const std::string& text = node.Scalar();
    const std::string& tag = node.Tag();
    bool plain = tag == "?" || tag == "tag:yaml.org,2002:int" ||
                 tag == "tag:yaml.org,2002:float" || tag == "tag:yaml.org,2002:bool" ||
                 tag == "tag:yaml.org,2002:null";
    if (!plain) {
      *out = text;  // quoted ("!"), !!str, or an application tag: keep the text
      return;
    }
    switch (ResolvePlain(text, out)) {
      case ScalarKind::kResolved:
        return;
      case ScalarKind::kString:
        *out = text;
        return;
      case ScalarKind::kOutOfRange:
        Error(path, mark, "number out of range: " + text.substr(0, 64));
        *out = nullptr;
        return;
    }
  }

  bool TooDeep(const std::string& path, Mark mark) {
    Stop(path, mark, "nesting deeper than " + std::to_string(limits_.max_depth) + " levels");
    return false;
  }

  void Stop(const std::string& path, Mark mark, std::string message) {
    stopped_ = true;
    Error(path, mark, std::move(message));
  }

  void Error(const std::string& path, Mark mark, std::string message) {
    errors_->push_back(SpecError{path, mark.line, mark.column, std::move(message)});
  }

  SourceDoc* doc_;
  LoadLimits limits_;
  std::vector<SpecError>* errors_;
  size_t nodes_ = 0;
  bool stopped_ = false;
};

Mark SourceDoc::ValueMark(std::string_view path) const {
  std::string p(path);
  while (true) {
    auto it = values_.find(p);
    if (it != values_.end()) return it->second;
    if (p.empty()) return {};
    p = ParentPath(p);
  }
}

Mark SourceDoc::KeyMark(std::string_view path) const {
  auto it = keys_.find(std::string(path));
  if (it != keys_.end()) return it->second;
  return ValueMark(path);
}

Result<SourceDoc> LoadYaml(std::string_view text, const LoadLimits& limits,
                           std::vector<SpecError>* errors) {
  if (text.size() > limits.max_bytes) {
    errors->push_back(SpecError{"", 0, 0,
                                "document too large: " + std::to_string(text.size()) +
                                    " bytes (limit " + std::to_string(limits.max_bytes) + ")"});
    return InvalidArgument(errors->back().message);
  }
  SourceDoc doc;
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(std::string(text));
    if (documents.size() > 1) {
      // The second document starts where its first node is.
      Mark second = FromYaml(documents[1].Mark());
      errors->push_back(SpecError{"", second.line, second.column,
                                  "expected one YAML document, found " +
                                      std::to_string(documents.size())});
      return InvalidArgument(errors->back().message);
    }
    if (documents.empty()) {
      doc.root_ = nullptr;
      return doc;
    }
    size_t before = errors->size();
    YamlConverter converter(&doc, limits, errors);
    converter.Convert(documents[0], "", 0, &doc.root_);
    if (errors->size() != before) return InvalidArgument(errors->back().message);
  } catch (const YAML::Exception& e) {
    Mark mark = FromYaml(e.mark);
    errors->push_back(SpecError{"", mark.line, mark.column, "invalid YAML: " + e.msg});
    return InvalidArgument(errors->back().ToString());
  } catch (const std::exception& e) {
    errors->push_back(SpecError{"", 0, 0, std::string("invalid YAML: ") + e.what()});
    return InvalidArgument(errors->back().message);
  }
  return doc;
}

std::string JoinKey(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (!out.empty()) out += '.';
  out += key;
  return out;
}

std::string JoinIndex(std::string_view parent, size_t index) {
  std::string out(parent);
  out += '[';
  out += std::to_string(index);
  out += ']';
  return out;
}

std::string ParentPath(std::string_view path) {
  if (path.empty()) return "";
  if (path.back() == ']') {
    size_t open = path.rfind('[');
    if (open != std::string_view::npos) return std::string(path.substr(0, open));
  }
  size_t dot = path.rfind('.');
  if (dot == std::string_view::npos) return "";
  return std::string(path.substr(0, dot));
}

}  // namespace flowmesh::spec
