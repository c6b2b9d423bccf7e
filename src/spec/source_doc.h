// SourceDoc: a YAML/JSON document converted to nlohmann::json, remembering where in the
// text every node came from, so that later validation can point at line:column.
// Paths look like `spec.graph.nodes[2].dependsOn[0]`; the root is "".
// A SourceDoc is immutable after LoadYaml and safe to read from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "spec/workflow.h"

namespace flowmesh::spec {

struct Mark {
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
};

// Limits that keep hostile input from exhausting the stack or memory.
struct LoadLimits {
  size_t max_bytes = 16 * 1024 * 1024;
  int max_depth = 128;         // nesting of mappings/sequences
  size_t max_nodes = 1000000;  // after alias expansion
  // Record where every value and key starts. Without marks ValueMark/KeyMark return {} and
  // Has() is false: the cheap first pass of a parse, redone with marks only on errors.
  bool record_marks = true;
};

// Path -> Mark. The path text is kept in large blocks (one allocation per 64 KiB, not one
// per path), which matters for documents with hundreds of thousands of values.
class MarkTable {
 public:
  void Reserve(size_t n) { map_.reserve(n); }
  void Emplace(std::string_view path, Mark mark);  // the first mark for a path wins
  const Mark* Find(std::string_view path) const {
    auto it = map_.find(path);
    return it == map_.end() ? nullptr : &it->second;
  }

 private:
  std::string_view Store(std::string_view text);
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t used_ = 0;
  size_t capacity_ = 0;
  std::unordered_map<std::string_view, Mark> map_;
};

class SourceDoc {
 public:
  const nlohmann::json& root() const { return root_; }
  // Moves the document out (root() is null afterwards); the marks stay usable.
  nlohmann::json TakeRoot() { return std::move(root_); }

  // Where the value at `path` starts; walks up to the nearest located ancestor.
  Mark ValueMark(std::string_view path) const;
  // Where the key of the mapping entry at `path` starts (falls back to ValueMark).
  Mark KeyMark(std::string_view path) const;
  bool Has(std::string_view path) const { return values_.Find(path) != nullptr; }

 private:
  friend class YamlConverter;
  friend Result<SourceDoc> LoadYaml(std::string_view, const LoadLimits&, std::vector<SpecError>*);
  nlohmann::json root_;
  MarkTable values_;
  MarkTable keys_;
};

// Parses `text` as one YAML document (JSON is YAML). Malformed YAML, several documents
// or a broken limit fail the load. Lesser problems (duplicate or non-string keys, numbers
// out of range) are appended to `errors` while the document still loads, so that the
// caller can go on validating and report everything at once.
Result<SourceDoc> LoadYaml(std::string_view text, const LoadLimits& limits,
                           std::vector<SpecError>* errors);

// Path helpers: JoinKey("spec", "graph") == "spec.graph"; JoinIndex("a", 2) == "a[2]".
std::string JoinKey(std::string_view parent, std::string_view key);
std::string JoinIndex(std::string_view parent, size_t index);
// "a.b[2].c" -> "a.b[2]"; "a[2]" -> "a"; "a" -> "".
std::string ParentPath(std::string_view path);

}  // namespace flowmesh::spec
