// Diagnostics: collects SpecErrors for one parse, attaching line:column from a SourceDoc
// and dropping exact duplicates (a top-level spec value merged into many nodes is reported
// once). Single-threaded; lives for the duration of one ParseWorkflow call.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spec/source_doc.h"
#include "spec/workflow.h"

namespace flowmesh::spec {

class Diagnostics {
 public:
  explicit Diagnostics(const SourceDoc* doc, size_t max_errors = kMaxErrors)
      : doc_(doc), max_errors_(max_errors) {}

  // An error about the value at `path`.
  void Add(const std::string& path, std::string message);
  // An error about the key of the mapping entry at `path` (unknown / misplaced keys).
  void AddAtKey(const std::string& path, std::string message);
  void AddAt(const std::string& path, Mark mark, std::string message);

  bool empty() const { return errors_.empty(); }
  bool full() const { return errors_.size() > max_errors_; }  // the cap note is in
  size_t size() const { return errors_.size(); }
  // Errors ordered by position in the document (unlocated ones last).
  std::vector<SpecError> Take();

  static constexpr size_t kMaxErrors = 500;    // default cap, then one "too many problems" entry
  static constexpr size_t kMaxMessage = 1000;  // user text is echoed in messages

 private:
  const SourceDoc* doc_;
  size_t max_errors_;
  std::vector<SpecError> errors_;
  std::set<std::pair<std::string, std::string>> seen_;
};

// Levenshtein distance, case-insensitive.
size_t EditDistance(std::string_view a, std::string_view b);
// " (did you mean 'x'?)" for the closest candidate when it is close enough, else "".
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace flowmesh::spec
