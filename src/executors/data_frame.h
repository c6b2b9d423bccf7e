// Tables for the data_retrieval executor: a Frame (ordered column names, rows of JSON
// scalars), read from CSV, JSONL or JSON text with line/column in every parse error,
// filtered by typed comparisons, cut to a row and byte budget, and written as the
// published result's `table` (column name → list of values). Pure: no I/O, no state.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace flowmesh::executors::retrieval {

struct Frame {
  std::vector<std::string> columns;
  std::vector<std::vector<nlohmann::json>> rows;  // each row has columns.size() cells
};

enum class Format { kCsv, kJsonl, kJson };
// "csv" | "jsonl" (also "ndjson") | "json"; nullopt for anything else.
std::optional<Format> ParseFormat(std::string_view name);
const char* FormatName(Format format);
// The format a name ends with (.csv, .jsonl, .ndjson, .json; a query string is ignored).
std::optional<Format> FormatFromName(std::string_view name);
// The format of a Content-Type (text/csv, application/x-ndjson, application/jsonl,
// application/json; parameters ignored).
std::optional<Format> FormatFromContentType(std::string_view content_type);

// CSV (RFC 4180: quoted fields with "" escapes and line breaks, CRLF or LF), the first
// record being the header. Unquoted cells that read as integers or decimals become
// numbers, empty unquoted cells null, everything else a string. InvalidArgument
// "csv line L, column C: …" for an unterminated quote, text after a closing quote, a
// record with the wrong number of fields, or duplicate / empty header names.
Result<Frame> ParseCsv(std::string_view text);
// One JSON object per line (blank lines skipped). Columns: the keys in order of first
// appearance; a key missing from a row is null there.
// InvalidArgument "jsonl line L, column C: …".
Result<Frame> ParseJsonl(std::string_view text);
// A JSON array of objects, or the array found at `records_path` (a dot path of object
// keys such as "data.items") inside the document. InvalidArgument "json line L, column
// C: …" for malformed text; a clear message when the records are not a list of objects.
Result<Frame> ParseJson(std::string_view text, std::string_view records_path = "");
Result<Frame> ParseText(std::string_view text, Format format, std::string_view records_path = "");

enum class FilterOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kContains, kIsNull, kNotNull };

// `{column, op, value}`: a comparison of a column with a JSON scalar (a list for `in`).
struct Filter {
  std::string column;
  FilterOp op = FilterOp::kEq;
  nlohmann::json value;
};

// The ops as written in specs: = == eq, != <> ne, < lt, <= le, > gt, >= ge, in,
// contains, is_null, not_null.
std::optional<FilterOp> ParseFilterOp(std::string_view op);
const char* FilterOpName(FilterOp op);

// Typed comparison of a cell with a filter value: numbers with numbers (1 == 1.0),
// strings with strings (bytewise), booleans with booleans; values of different types
// are unequal and unordered (every ordering test is false). null equals only null.
// `contains` is a substring test on strings.
bool Matches(const nlohmann::json& cell, const Filter& filter);

// Keeps the rows that match every filter. InvalidArgument naming an unknown column.
Result<Frame> ApplyFilters(Frame frame, const std::vector<Filter>& filters);
// Keeps `columns` in the order given (all when empty). InvalidArgument naming an
// unknown column and listing the known ones.
Result<Frame> SelectColumns(Frame frame, const std::vector<std::string>& columns);

// Keeps the first of columns that share a name (as the published executor does with a
// query's duplicate columns); returns the names dropped.
std::vector<std::string> DropDuplicateColumns(Frame& frame);

// The published `table`: {column: [values…]}.
nlohmann::json TableJson(const Frame& frame);
// Bytes a row adds to the result (its cells as compact JSON).
size_t RowBytes(const std::vector<nlohmann::json>& row);

// Keeps at most `max_rows` rows and as many whole rows as fit in `*byte_budget` (which
// is reduced by what is kept). Returns true when rows were dropped.
bool Bound(Frame& frame, size_t max_rows, size_t* byte_budget);

}  // namespace flowmesh::executors::retrieval
