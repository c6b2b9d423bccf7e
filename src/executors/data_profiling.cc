#include "executors/data_profiling.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <set>

namespace flowmesh::executors {
namespace {

constexpr size_t kTopWords = 10;

int64_t CodePoints(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;  // count every byte that is not a continuation byte
  }
  return n;
}

std::vector<std::string> Tokens(const std::string& s) {
  std::vector<std::string> tokens;
  std::string current;
  for (unsigned char c : s) {
    if (std::isspace(c)) {
      if (!current.empty()) tokens.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(static_cast<char>(c));
    }
  }
  if (!current.empty()) tokens.push_back(std::move(current));
  return tokens;
}

// Lowercased ASCII, surrounding punctuation removed; "" when nothing is left.
std::string NormalizeWord(const std::string& token) {
  size_t begin = 0, end = token.size();
  while (begin < end && std::ispunct(static_cast<unsigned char>(token[begin]))) ++begin;
  while (end > begin && std::ispunct(static_cast<unsigned char>(token[end - 1]))) --end;
  std::string word = token.substr(begin, end - begin);
  for (char& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return word;
}

nlohmann::json Summary(const std::vector<int64_t>& values) {
  if (values.empty()) return {{"min", 0}, {"max", 0}, {"mean", 0.0}, {"total", 0}};
  int64_t total = 0;
  for (int64_t v : values) total += v;
  return {{"min", *std::min_element(values.begin(), values.end())},
          {"max", *std::max_element(values.begin(), values.end())},
          {"mean", static_cast<double>(total) / static_cast<double>(values.size())},
          {"total", total}};
}

}  // namespace

nlohmann::json ProfileRows(const std::vector<std::string>& rows) {
  std::vector<int64_t> chars, tokens;
  std::set<std::string> unique;
  std::map<std::string, int64_t> word_counts;
  int64_t empty_rows = 0;
  nlohmann::json items = nlohmann::json::array();
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string& row = rows[i];
    std::vector<std::string> row_tokens = Tokens(row);
    if (row_tokens.empty()) ++empty_rows;
    unique.insert(row);
    for (const auto& token : row_tokens) {
      std::string word = NormalizeWord(token);
      if (!word.empty()) ++word_counts[word];
    }
    chars.push_back(CodePoints(row));
    tokens.push_back(static_cast<int64_t>(row_tokens.size()));
    items.push_back({{"index", i}, {"chars", chars.back()}, {"tokens", tokens.back()}});
  }
  std::vector<std::pair<std::string, int64_t>> top(word_counts.begin(), word_counts.end());
  std::stable_sort(top.begin(), top.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (top.size() > kTopWords) top.resize(kTopWords);
  nlohmann::json words_top = nlohmann::json::array();
  for (const auto& [word, count] : top) words_top.push_back({word, count});

  return {{"rows", rows.size()},
          {"empty_rows", empty_rows},
          {"unique_rows", unique.size()},
          {"chars", Summary(chars)},
          {"tokens", Summary(tokens)},
          {"words_top", std::move(words_top)},
          {"items", std::move(items)}};
}

Result<nlohmann::json> DataProfilingExecutor::Run(TaskContext& ctx) {
  std::vector<std::string> rows;
  if (ctx.spec.is_object() && ctx.spec.contains("data") && ctx.spec["data"].is_object() &&
      ctx.spec["data"].contains("items")) {
    const nlohmann::json& items = ctx.spec["data"]["items"];
    if (!items.is_array()) return InvalidArgument("data_profiling: spec.data.items must be a list");
    for (const auto& item : items) {
      if (ctx.cancelled.load()) return Cancelled("data_profiling: cancelled");
      rows.push_back(item.is_string() ? item.get<std::string>() : item.dump());
    }
  }
  nlohmann::json profile = ProfileRows(rows);
  if (ctx.log) {
    ctx.log("data_profiling: " + std::to_string(rows.size()) + " rows, " +
            profile["tokens"]["total"].dump() + " tokens");
  }
  return profile;
}

}  // namespace flowmesh::executors
