// Pieces shared between the dataflow source files; not part of the component's interface.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "dataflow/dataflow.h"

namespace flowmesh::dataflow::internal {

using nlohmann::json;

// `where[i]`.
std::string JoinIndex(const std::string& where, size_t i);
// `where.key`.
std::string JoinKey(const std::string& where, std::string_view key);

// The text a value takes inside a string: strings raw, anything else JSON-dumped.
std::string TextOf(const json& value);

// ResolveReferences with the location of `value` given (`spec.api`, `data.items[0]`).
Result<json> ResolveAt(const json& value, const Upstream& up, const std::string& where);

// Resolves the references in one string. With `escape_braces`, text substituted into the
// string has `{`/`}` doubled, so the result can be used as a `{label}` template.
Result<json> ResolveString(const std::string& s, const Upstream& up, const std::string& where,
                           bool escape_braces);

// Looks up `path` in the result of `node`; errors name `what` (e.g. "reference ${a.b}") and
// `where`. `*missing` (if given) is set instead of failing when only the path is missing.
Result<json> LookupUpstream(const Upstream& up, const std::string& node, std::string_view path,
                            const std::string& what, const std::string& where,
                            bool* missing = nullptr);

// Rows of a dataset (each the chosen column's value), before split/shuffle/limit.
Result<std::vector<json>> LoadDatasetRows(const json& data, const DataOptions& opts,
                                          const std::string& where);

// Slices rows by an HF-style split ("train", "train[:100]", "train[10%:20%]").
Status ApplySplit(const std::string& split, std::vector<json>* rows, const std::string& where);

// Deterministic Fisher–Yates with std::mt19937_64(seed).
void ShuffleRows(std::vector<json>* rows, uint64_t seed);

// CSV records (RFC 4180) and the line each one starts on (1-based).
struct CsvTable {
  std::vector<std::vector<std::string>> records;
  std::vector<size_t> lines;
};
Result<CsvTable> ParseCsv(std::string_view text, char delimiter, const std::string& where);

// MaterializeData with the location of `data` given (`data`, `spec.data`).
Result<json> MaterializeDataAt(const json& data, const Upstream& up, const DataOptions& opts,
                               const std::string& where);

}  // namespace flowmesh::dataflow::internal
