#include "spec/source_doc.h"

#include <yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

namespace flowmesh::spec {
namespace {

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

// Thrown inside the converter only, to stop parsing once input is known to be bad.
struct StopParsing {};

// Builds json straight from libyaml's parse events, recording marks. Building from events
// (instead of a node tree) lets every limit apply while parsing, and alias expansion is
// bounded here too. Paths are only built when marks are recorded or an error needs one.
class YamlConverter {
 public:
  YamlConverter(SourceDoc* doc, const LoadLimits& limits, std::vector<SpecError>* errors)
      : doc_(doc), limits_(limits), errors_(errors) {
    stack_.reserve(std::min(64, std::max(1, limits.max_depth)));
  }

  // A plain, untagged null-like scalar ("", "~", "null"), or an empty node.
  void OnNull(Mark m, std::string_view anchor) {
    Tick(m);
    if (AwaitingKey()) return BadKey(m);
    if (!BeginNode(m)) return;
    Count(m, 1);
    Emit(nullptr, anchor);
  }

  void OnAlias(Mark m, std::string_view anchor) {
    Tick(m);
    if (AwaitingKey()) return BadKey(m);
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      if (declared_.count(anchor) == 0) {
        Stop("", m, "invalid YAML: the referenced anchor is not defined");
      }
      Stop("", m, "alias refers to an anchor that is not complete");
    }
    if (!BeginNode(m)) return;
    Count(m, it->second.second);
    Emit(it->second.first, {});
  }

  void OnScalar(Mark m, std::string_view tag, std::string_view anchor, std::string&& value) {
    Tick(m);
    if (AwaitingKey()) {
      Frame& map = stack_.back();
      map.key = std::move(value);
      map.key_ok = true;
      map.have_key = true;
      if (map.value.contains(map.key)) {
        Error(ChildPath(), m, "duplicate key '" + map.key.substr(0, 128) + "'");
        map.key_ok = false;
      } else if (m.line > 0) {
        map.key_mark = m;
        if (limits_.record_marks) doc_->keys_.Emplace(ChildPath(), m);
      }
      return;
    }
    if (!BeginNode(m)) return;
    nlohmann::json out;
    ConvertScalar(std::move(value), tag, m, &out);
    Emit(std::move(out), anchor);
  }

  void OnSequenceStart(Mark m, std::string_view anchor) {
    Open(m, anchor, nlohmann::json::value_t::array);
  }
  void OnMappingStart(Mark m, std::string_view anchor) {
    Open(m, anchor, nlohmann::json::value_t::object);
  }
  void OnEnd() { Close(); }

  void Declare(std::string_view anchor) {
    if (!anchor.empty()) declared_.emplace(anchor);
  }

  nlohmann::json TakeRoot() { return std::move(root_); }

 private:
  struct Frame {
    nlohmann::json value;
    std::string anchor;
    size_t nodes_before = 0;  // nodes_ once this collection was counted
    bool is_key = false;      // this collection is being used as a mapping key
    bool have_key = false;    // (maps) a key was read, its value comes next
    bool key_ok = false;      // (maps) that key is usable
    std::string key;
    Mark key_mark;
  };

  bool AwaitingKey() const {
    return !stack_.empty() && !stack_.back().is_key && stack_.back().value.is_object() &&
           !stack_.back().have_key;
  }

  // The path of the collection at stack_[depth - 1] ("" for the root).
  std::string FramePath(size_t depth) const {
    std::string path;
    for (size_t i = 1; i < depth; ++i) AppendSegment(stack_[i - 1], &path);
    return path;
  }
  static void AppendSegment(const Frame& parent, std::string* path) {
    if (parent.value.is_array()) {
      *path += '[';
      *path += std::to_string(parent.value.size());
      *path += ']';
    } else {
      if (!path->empty()) *path += '.';
      *path += parent.key;
    }
  }
  // The path of the node that starts next (a child of the top collection).
  std::string ChildPath() const {
    if (stack_.empty()) return "";
    std::string path = FramePath(stack_.size());
    AppendSegment(stack_.back(), &path);
    return path;
  }
  // The path of the node being worked on: the top collection, or the next child.
  std::string CurrentPath(bool in_child) const {
    return in_child ? ChildPath() : FramePath(stack_.size());
  }

  // Bounds the work done on any input.
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
    Error(FramePath(stack_.size()), mark, "mapping keys must be strings");
  }

  // Records where the node starting at `mark` is. False when the node is part of a
  // non-scalar mapping key (reported once, when it started).
  bool BeginNode(Mark mark) {
    if (!stack_.empty() && stack_.back().is_key) return false;
    if (!limits_.record_marks) return true;
    if (mark.line > 0) {
      doc_->values_.Emplace(ChildPath(), mark);
    } else if (!stack_.empty() && stack_.back().value.is_object()) {
      // An empty value (`key:`) has no mark of its own: point at the key.
      Mark key_mark = stack_.back().key_mark;
      if (key_mark.line > 0) doc_->values_.Emplace(ChildPath(), key_mark);
    }
    return true;
  }

  // `in_child`: the counted node is the next child of the top collection (scalars,
  // aliases) rather than the top collection itself (just opened).
  void Count(Mark mark, size_t n, bool in_child = true) {
    nodes_ += n;
    if (nodes_ > limits_.max_nodes) {
      Stop(CurrentPath(in_child), mark, TooManyNodes());
    }
  }
  std::string TooManyNodes() const {
    return "document too large: more than " + std::to_string(limits_.max_nodes) +
           " values after alias expansion (limit max_nodes=" + std::to_string(limits_.max_nodes) +
           ")";
  }

  void Open(Mark mark, std::string_view anchor, nlohmann::json::value_t type) {
    Tick(mark);
    bool is_key = false;
    if (AwaitingKey()) {
      BadKey(mark);
      is_key = true;
    } else if (!stack_.empty() && stack_.back().is_key) {
      is_key = true;
    } else if (!BeginNode(mark)) {
      is_key = true;
    }
    if (stack_.size() >= static_cast<size_t>(limits_.max_depth)) {
      Stop(is_key ? "" : ChildPath(), mark,
           "nesting deeper than " + std::to_string(limits_.max_depth) +
               " levels (limit max_depth=" + std::to_string(limits_.max_depth) + ")");
    }
    Frame& frame = stack_.emplace_back();
    frame.value = nlohmann::json(type);
    frame.anchor = anchor;
    frame.is_key = is_key;
    // A collection used as a key has no path of its own: report limits at the document.
    if (is_key) {
      if (++nodes_ > limits_.max_nodes) Stop("", mark, TooManyNodes());
    } else {
      Count(mark, 1, false);
    }
    frame.nodes_before = nodes_;
  }

  void Close() {
    Frame& top = stack_.back();
    if (top.is_key) {
      stack_.pop_back();
      return;
    }
    size_t nodes = 1 + (nodes_ - top.nodes_before);
    nlohmann::json value = std::move(top.value);
    if (!top.anchor.empty()) anchors_[top.anchor] = {value, nodes};
    stack_.pop_back();
    Place(std::move(value));
  }

  void Emit(nlohmann::json value, std::string_view anchor) {
    if (!stack_.empty() && stack_.back().is_key) return;
    if (!anchor.empty()) anchors_[std::string(anchor)] = {value, 1};
    Place(std::move(value));
  }

  void Place(nlohmann::json&& value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return;
    }
    Frame& parent = stack_.back();
    if (parent.value.is_array()) {
      parent.value.get_ref<nlohmann::json::array_t&>().push_back(std::move(value));
      return;
    }
    if (parent.key_ok) {
      parent.value.get_ref<nlohmann::json::object_t&>().emplace(std::move(parent.key),
                                                                std::move(value));
    }
    parent.key.clear();
    parent.have_key = false;
    parent.key_ok = false;
    parent.key_mark = {};
  }

  void ConvertScalar(std::string&& text, std::string_view tag, Mark mark, nlohmann::json* out) {
    Count(mark, 1);
    bool plain = tag == "?" || tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
                 tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null";
    if (!plain) {
      *out = std::move(text);  // quoted ("!"), !!str, or an application tag: keep the text
      return;
    }
    switch (ResolvePlain(text, out)) {
      case ScalarKind::kResolved:
        return;
      case ScalarKind::kString:
        *out = std::move(text);
        return;
      case ScalarKind::kOutOfRange:
        Error(ChildPath(), mark, "number out of range: " + text.substr(0, 64));
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
  std::map<std::string, std::pair<nlohmann::json, size_t>, std::less<>> anchors_;
  std::set<std::string, std::less<>> declared_;
  nlohmann::json root_;
  size_t nodes_ = 0;
  size_t events_ = 0;
};

namespace {

// Owns one libyaml parser over a string.
class EventSource {
 public:
  explicit EventSource(std::string_view text) {
    yaml_parser_initialize(&parser_);
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
  }
  ~EventSource() {
    if (have_event_) yaml_event_delete(&event_);
    yaml_parser_delete(&parser_);
  }
  EventSource(const EventSource&) = delete;
  EventSource& operator=(const EventSource&) = delete;

  // The next event, or nullptr on a syntax error (see ErrorMessage / ErrorMark).
  const yaml_event_t* Next() {
    if (have_event_) yaml_event_delete(&event_);
    have_event_ = yaml_parser_parse(&parser_, &event_) != 0;
    return have_event_ ? &event_ : nullptr;
  }
  yaml_event_t* event() { return &event_; }

  std::string ErrorMessage() const {
    std::string out = "invalid YAML: ";
    out += parser_.problem != nullptr ? parser_.problem : "malformed document";
    if (parser_.context != nullptr) {
      out += " (";
      out += parser_.context;
      if (parser_.context_mark.line != parser_.problem_mark.line ||
          parser_.context_mark.column != parser_.problem_mark.column) {
        out += " that starts at line " + std::to_string(parser_.context_mark.line + 1) +
               ", column " + std::to_string(parser_.context_mark.column + 1);
      }
      out += ')';
    }
    return out;
  }
  Mark ErrorMark() const {
    const yaml_mark_t& m = parser_.problem != nullptr ? parser_.problem_mark : parser_.mark;
    return Mark{static_cast<int>(m.line) + 1, static_cast<int>(m.column) + 1};
  }

 private:
  yaml_parser_t parser_;
  yaml_event_t event_;
  bool have_event_ = false;
};

Mark FromYaml(const yaml_mark_t& m) {
  return Mark{static_cast<int>(m.line) + 1, static_cast<int>(m.column) + 1};
}

std::string_view View(const yaml_char_t* s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

bool IsNullString(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// Feeds one document's events (after DOCUMENT-START, up to and including DOCUMENT-END)
// to `converter`. False on a syntax error, which is appended to `errors`.
bool ConvertDocument(EventSource* source, YamlConverter* converter,
                     std::vector<SpecError>* errors) {
  while (true) {
    const yaml_event_t* event = source->Next();
    if (event == nullptr) {
      Mark mark = source->ErrorMark();
      errors->push_back(SpecError{"", mark.line, mark.column, source->ErrorMessage()});
      return false;
    }
    Mark mark = FromYaml(event->start_mark);
    switch (event->type) {
      case YAML_DOCUMENT_END_EVENT:
        return true;
      case YAML_ALIAS_EVENT:
        converter->OnAlias(mark, View(event->data.alias.anchor));
        break;
      case YAML_SCALAR_EVENT: {
        const auto& s = event->data.scalar;
        std::string_view anchor = View(s.anchor);
        converter->Declare(anchor);
        bool is_plain = s.style == YAML_PLAIN_SCALAR_STYLE || s.style == YAML_ANY_SCALAR_STYLE;
        std::string_view tag = View(s.tag);
        if (tag.empty()) tag = is_plain ? "?" : "!";
        std::string_view value(reinterpret_cast<const char*>(s.value), s.length);
        if (tag == "?" && IsNullString(value)) {
          converter->OnNull(mark, anchor);
        } else {
          converter->OnScalar(mark, tag, anchor, std::string(value));
        }
        break;
      }
      case YAML_SEQUENCE_START_EVENT: {
        std::string_view anchor = View(event->data.sequence_start.anchor);
        converter->Declare(anchor);
        converter->OnSequenceStart(mark, anchor);
        break;
      }
      case YAML_MAPPING_START_EVENT: {
        std::string_view anchor = View(event->data.mapping_start.anchor);
        converter->Declare(anchor);
        converter->OnMappingStart(mark, anchor);
        break;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        converter->OnEnd();
        break;
      default:
        break;
    }
  }
}

}  // namespace

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
  try {
    EventSource source(text);
    const yaml_event_t* event = source.Next();  // STREAM-START
    if (event != nullptr) event = source.Next();
    if (event == nullptr) {
      Mark mark = source.ErrorMark();
      errors->push_back(SpecError{"", mark.line, mark.column, source.ErrorMessage()});
      return InvalidArgument(errors->back().ToString());
    }
    if (event->type == YAML_STREAM_END_EVENT) {
      doc.root_ = nullptr;  // empty input
      return doc;
    }
    YamlConverter converter(&doc, limits, errors);
    if (!ConvertDocument(&source, &converter, errors)) {
      return InvalidArgument(errors->back().ToString());
    }
    doc.root_ = converter.TakeRoot();
    event = source.Next();
    if (event == nullptr) {
      Mark mark = source.ErrorMark();
      errors->push_back(SpecError{"", mark.line, mark.column, source.ErrorMessage()});
      return InvalidArgument(errors->back().ToString());
    }
    if (event->type == YAML_DOCUMENT_START_EVENT) {
      Mark mark = FromYaml(event->start_mark);
      errors->push_back(SpecError{"", mark.line, mark.column,
                                  "expected one YAML document, found more"});
      return InvalidArgument(errors->back().ToString());
    }
  } catch (const StopParsing&) {
    // The reason is already in `errors`.
    return InvalidArgument(errors->empty() ? "invalid YAML" : errors->back().ToString());
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
