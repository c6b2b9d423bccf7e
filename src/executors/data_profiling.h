// The data_profiling executor: row, character and token statistics over spec.data.items
// (strings; objects and lists are profiled as their JSON text). Deterministic.
#pragma once

#include <string>
#include <vector>

#include "executors/executor.h"

namespace flowmesh::executors {

class DataProfilingExecutor : public Executor {
 public:
  Result<nlohmann::json> Run(TaskContext& ctx) override;
};

// The profile of `rows` (exposed for tests): {rows, empty_rows, unique_rows,
// chars: {min, max, mean, total}, tokens: {...}, words_top: [[word, count]] (10 most
// frequent lowercased words, ties by word), items: [{index, chars, tokens}]}.
// chars counts UTF-8 code points; tokens are whitespace-separated.
nlohmann::json ProfileRows(const std::vector<std::string>& rows);

}  // namespace flowmesh::executors
