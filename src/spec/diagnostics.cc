#include "spec/diagnostics.h"

#include <algorithm>
#include <cctype>
#include <climits>

namespace flowmesh::spec {

void Diagnostics::Add(const std::string& path, std::string message) {
  AddAt(path, doc_ ? doc_->ValueMark(path) : Mark{}, std::move(message));
}

void Diagnostics::AddAtKey(const std::string& path, std::string message) {
  AddAt(path, doc_ ? doc_->KeyMark(path) : Mark{}, std::move(message));
}

void Diagnostics::AddAt(const std::string& path, Mark mark, std::string message) {
  if (message.size() > kMaxMessage) message = message.substr(0, kMaxMessage - 3) + "...";
  if (errors_.size() > max_errors_) return;
  if (errors_.size() == max_errors_) {
    errors_.push_back(SpecError{"", 0, 0,
                                "too many problems; stopped after " + std::to_string(max_errors_) +
                                    " (limit max_errors=" + std::to_string(max_errors_) + ")"});
    return;
  }
  if (!seen_.emplace(path, message).second) return;
  errors_.push_back(SpecError{path, mark.line, mark.column, std::move(message)});
}

std::vector<SpecError> Diagnostics::Take() {
  std::stable_sort(errors_.begin(), errors_.end(), [](const SpecError& a, const SpecError& b) {
    int la = a.line > 0 ? a.line : INT_MAX;
    int lb = b.line > 0 ? b.line : INT_MAX;
    if (la != lb) return la < lb;
    return a.column < b.column;
  });
  seen_.clear();
  return std::move(errors_);
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                  std::tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.size() > 256) return "";
  const std::string* best = nullptr;
  size_t best_distance = SIZE_MAX;
  for (const std::string& candidate : candidates) {
    // Cheap bound first: the distance is at least the difference in length.
    size_t gap = word.size() > candidate.size() ? word.size() - candidate.size()
                                                : candidate.size() - word.size();
    if (gap > std::max<size_t>(2, std::max(word.size(), candidate.size()) / 3) ||
        gap >= best_distance) {
      continue;
    }
    size_t d = EditDistance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = &candidate;
    }
  }
  size_t allowed = std::max<size_t>(2, std::max(word.size(), best ? best->size() : 0) / 3);
  if (best == nullptr || best_distance > allowed) return "";
  return " (did you mean '" + *best + "'?)";
}

}  // namespace flowmesh::spec
