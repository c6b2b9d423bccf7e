#include "spec/source_doc.h"

#include <yaml-cpp/anchor.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <sstream>
#include <unordered_map>

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

// YAML 1.2 core-schema float syntax: [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]?
// [0-9]+ )?
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

// Thrown inside LoadYaml only, to stop yaml-cpp's parser once input is known to be bad.
struct StopParsing {};

// Builds json straight from yaml-cpp's parse events, recording marks. Building from events
// (instead of YAML::Load) lets every limit apply while parsing: some malformed inputs make
// yaml-cpp emit nodes without end, and alias expansion is bounded here too.
class YamlConverter : public YAML::EventHandler {
 public:
  YamlConverter(SourceDoc* doc, const LoadLimits& limits, std::vector<SpecError>* errors)
      : doc_(doc), limits_(limits), errors_(errors) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Mark m = FromYaml(mark);
    Tick(m);
    if (AwaitingKey()) return BadKey(m);
    std::string path;
    if (!BeginNode(m, &path)) return;
    Count(path, m, 1);
    Emit(nullptr, anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    std::string path;
    Mark m = FromYaml(mark);
    Tick(m);
    if (AwaitingKey()) return BadKey(m);
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) Stop("", m, "alias refers to an anchor that is not complete");
    if (!BeginNode(m, &path)) return;
    Count(path, m, it->second.second);
    Emit(it->second.first, YAML::NullAnchor);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    Mark m = FromYaml(mark);
    Tick(m);
    if (AwaitingKey()) {
      Frame& map = stack_.back();
      map.key = value;
      map.key_ok = true;
      map.have_key = true;
      std::string child = JoinKey(map.path, value);
      if (map.value.contains(value)) {
        Error(child, m, "duplicate key '" + value.substr(0, 128) + "'");
        map.key_ok = false;
      } else if (m.line > 0) {
        map.key_mark = m;
        if (limits_.record_marks) doc_->keys_.Emplace(child, m);
      }
      return;
    }
    std::string path;
    if (!BeginNode(m, &path)) return;
    nlohmann::json out;
    ConvertScalar(value, tag, path, m, &out);
    Emit(std::move(out), anchor);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(FromYaml(mark), anchor, nlohmann::json::array());
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(FromYaml(mark), anchor, nlohmann::json::object());
  }
  void OnMapEnd() override { Close(); }

  nlohmann::json TakeRoot() { return std::move(root_); }

 private:
  struct Frame {
    nlohmann::json value;
    std::string path;
    YAML::anchor_t anchor = YAML::NullAnchor;
    size_t nodes = 1;       // values inside, for alias accounting
    bool is_key = false;    // this collection is being used as a mapping key
    bool have_key = false;  // (maps) a key was read, its value comes next
    bool key_ok = false;    // (maps) that key is usable
    std::string key;
    Mark key_mark;
  };

  bool AwaitingKey() const {
    return !stack_.empty() && !stack_.back().is_key && stack_.back().value.is_object() &&
           !stack_.back().have_key;
  }

  // Some malformed inputs make yaml-cpp report events without end: bound them.
  void Tick(Mark mark) {
    if (++events_ > limits_.max_nodes * 4) {
      Stop("", mark,
           "document too large: more than " + std::to_string(limits_.max_nodes * 4) +
               " parse events (limit max_nodes=" + std::to_string(limits_.max_nodes) + ")");
    }
  }

  // A null, alias or collection used as a mapping key; its value is dropped.
  void BadKey(Mark mark) {
    Frame& map = stack_.back();
    map.have_key = true;
    map.key_ok = false;
    map.key = "?";
    Error(map.path, mark, "mapping keys must be strings");
  }

  // Works out the path of the node starting at `mark`. False when the node is a
  // non-scalar mapping key (reported once, when it ends).
  bool BeginNode(Mark mark, std::string* path) {
    if (stack_.empty()) {
      *path = "";
    } else {
      const Frame& parent = stack_.back();
      if (parent.is_key) return false;
      if (parent.value.is_array()) {
        *path = JoinIndex(parent.path, parent.value.size());
      } else {
        *path = JoinKey(parent.path, parent.key);
      }
    }
    if (!limits_.record_marks) {
      // Nothing to record.
    } else if (mark.line > 0) {
      doc_->values_.Emplace(*path, mark);
    } else if (!stack_.empty() && stack_.back().value.is_object()) {
      // An empty value (`key:`) has no mark of its own: point at the key.
      Mark key_mark = stack_.back().key_mark;
      if (key_mark.line > 0) doc_->values_.Emplace(*path, key_mark);
    }
    return true;
  }

  void Count(const std::string& path, Mark mark, size_t n) {
    nodes_ += n;
    if (nodes_ > limits_.max_nodes) {
      Stop(path, mark,
           "document too large: more than " + std::to_string(limits_.max_nodes) +
               " values after alias expansion (limit max_nodes=" +
               std::to_string(limits_.max_nodes) + ")");
    }
    for (Frame& f : stack_) f.nodes += n;
  }

  void Open(Mark mark, YAML::anchor_t anchor, nlohmann::json empty) {
    Frame frame;
    frame.value = std::move(empty);
    frame.anchor = anchor;
    Tick(mark);
    if (AwaitingKey()) {
      BadKey(mark);
      frame.is_key = true;
    } else if (!stack_.empty() && stack_.back().is_key) {
      frame.is_key = true;
    } else if (!BeginNode(mark, &frame.path)) {
      frame.is_key = true;
    }
    if (stack_.size() >= static_cast<size_t>(limits_.max_depth)) {
      Stop(frame.path, mark,
           "nesting deeper than " + std::to_string(limits_.max_depth) +
               " levels (limit max_depth=" + std::to_string(limits_.max_depth) + ")");
    }
    Count(frame.path, mark, 1);
    stack_.push_back(std::move(frame));
  }

  void Close() {
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    if (frame.is_key) return;
    if (frame.anchor != YAML::NullAnchor) anchors_[frame.anchor] = {frame.value, frame.nodes};
    Place(std::move(frame.value));
  }

  void Emit(nlohmann::json value, YAML::anchor_t anchor) {
    if (!stack_.empty() && stack_.back().is_key) return;
    if (anchor != YAML::NullAnchor) anchors_[anchor] = {value, 1};
    Place(std::move(value));
  }

  void Place(nlohmann::json value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return;
    }
    Frame& parent = stack_.back();
    if (parent.value.is_array()) {
      parent.value.push_back(std::move(value));
      return;
    }
    if (parent.key_ok) parent.value[parent.key] = std::move(value);
    parent.have_key = false;
    parent.key_ok = false;
    parent.key_mark = {};
  }

  void ConvertScalar(const std::string& text, const std::string& tag, const std::string& path,
                     Mark mark, nlohmann::json* out) {
    Count(path, mark, 1);
    bool plain = tag == "?" || tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
                 tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null";
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

  [[noreturn]] void Stop(const std::string& path, Mark mark, std::string message) {
    Error(path, mark, std::move(message));
    throw StopParsing{};
  }

  void Error(const std::string& path, Mark mark, std::string message) {
    errors_->push_back(SpecError{path, mark.line, mark.column, std::move(message)});
  }

  SourceDoc* doc_;
  LoadLimits limits_;
  std::vector<SpecError>* errors_;
  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, std::pair<nlohmann::json, size_t>> anchors_;
  nlohmann::json root_;
  size_t nodes_ = 0;
  size_t events_ = 0;
};

// Notes where a second document starts and stops the parser there.
class SecondDocumentProbe : public YAML::EventHandler {
 public:
  Mark mark;
  void OnDocumentStart(const YAML::Mark& m) override {
    mark = FromYaml(m);
    throw StopParsing{};
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

void MarkTable::Emplace(std::string_view path, Mark mark) {
  if (map_.find(path) != map_.end()) return;
  map_.emplace(Store(path), mark);
}

std::string_view MarkTable::Store(std::string_view text) {
  constexpr size_t kBlock = 64 * 1024;
  if (text.empty()) return std::string_view();
  if (text.size() > capacity_ - used_) {
    capacity_ = std::max(kBlock, text.size());
    blocks_.push_back(std::make_unique<char[]>(capacity_));
    used_ = 0;
  }
  char* at = blocks_.back().get() + used_;
  std::copy(text.begin(), text.end(), at);
  used_ += text.size();
  return std::string_view(at, text.size());
}

Mark SourceDoc::ValueMark(std::string_view path) const {
  std::string p(path);
  while (true) {
    if (const Mark* mark = values_.Find(p)) return *mark;
    if (p.empty()) return {};
    p = ParentPath(p);
  }
}

Mark SourceDoc::KeyMark(std::string_view path) const {
  if (const Mark* mark = keys_.Find(path)) return *mark;
  return ValueMark(path);
}

Result<SourceDoc> LoadYaml(std::string_view text, const LoadLimits& limits,
                           std::vector<SpecError>* errors) {
  if (text.size() > limits.max_bytes) {
    errors->push_back(SpecError{"", 0, 0,
                                "document too large: " + std::to_string(text.size()) +
                                    " bytes (limit max_bytes=" +
                                    std::to_string(limits.max_bytes) + ")"});
    return InvalidArgument(errors->back().message);
  }
  SourceDoc doc;
  // About one value per 10 bytes of YAML: reserving avoids rehashing large tables.
  if (limits.record_marks) {
    doc.values_.Reserve(text.size() / 10);
    doc.keys_.Reserve(text.size() / 12);
  }
  bool fatal = true;
  try {
    std::string copy(text);
    std::istringstream in(copy);
    YAML::Parser parser(in);
    YamlConverter converter(&doc, limits, errors);
    if (!parser.HandleNextDocument(converter)) {
      doc.root_ = nullptr;  // empty input
      return doc;
    }
    doc.root_ = converter.TakeRoot();
    SecondDocumentProbe probe;
    try {
      parser.HandleNextDocument(probe);
    } catch (const StopParsing&) {
      errors->push_back(SpecError{"", probe.mark.line, probe.mark.column,
                                  "expected one YAML document, found more"});
      return InvalidArgument(errors->back().ToString());
    }
    fatal = false;
  } catch (const StopParsing&) {
    // The reason is already in `errors`.
  } catch (const YAML::Exception& e) {
    Mark mark = FromYaml(e.mark);
    errors->push_back(SpecError{"", mark.line, mark.column, "invalid YAML: " + e.msg});
  } catch (const std::exception& e) {
    errors->push_back(SpecError{"", 0, 0, std::string("invalid YAML: ") + e.what()});
  }
  if (fatal) return InvalidArgument(errors->empty() ? "invalid YAML" : errors->back().ToString());
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
