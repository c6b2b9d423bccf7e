// The pure parts of the data_retrieval executor: reading spec.data (the published keys —
// type, connection_string, template, params, require_non_empty_rows — and ours: path,
// url, format, table, columns, filters, limit, max_bytes), classifying the source, and
// building parameterised SQL: a template's `{label}` slots become bind parameters (a
// quoted identifier slot becomes a quoted identifier), and filters, column selection and
// the row limit wrap the query. No I/O here, so every rule is unit-tested without a
// database.
#pragma once

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "executors/data_frame.h"

namespace flowmesh::executors::retrieval {

enum class SourceKind { kSqlite, kPostgres, kHttp, kFile };
const char* SourceKindName(SourceKind kind);

// The worker's bounds on every retrieval (resolved in the worker's main()).
struct RetrievalLimits {
  size_t max_rows = 100000;                    // rows per query, the most `limit` may ask
  size_t max_bytes = size_t{16} << 20;         // bytes of all tables in one result
  size_t max_input_bytes = size_t{256} << 20;  // bytes read from one file or HTTP body
  double timeout_s = 300;                      // per query / request
};

struct RetrievalOptions {
  SourceKind kind = SourceKind::kFile;
  std::string type;               // spec.data.type as written
  std::string connection_string;  // postgres: libpq URI or key=value string
  std::string path;               // sqlite and file: as written (checked by the executor)
  std::string url;                // http
  std::map<std::string, std::string> headers;  // http
  std::optional<Format> format;      // http and file; nullopt: from the name / content type
  std::string records_path;          // json: where the list of records is
  std::string sql_template;          // `template` (or `query`) with `{label}` slots
  std::string table;                 // or a table (schema.table) to select from
  std::vector<std::string> columns;  // selection; empty = all
  std::vector<Filter> filters;
  // One params row per query (label → value); a single empty row without params.
  std::vector<nlohmann::json> param_rows;
  size_t limit = 0;      // rows per query (≤ RetrievalLimits::max_rows)
  size_t max_bytes = 0;  // result bytes (≤ RetrievalLimits::max_bytes)
  bool require_non_empty_rows = true;
  double timeout_s = 0;
};

// Reads spec.data of a data_retrieval task (params already resolved by the scheduler to
// [{label, value}], or written inline as {label, value} / {label, data: {type: list,
// items}}). Unimplemented names a source this worker does not support (s3, lumid,
// bigquery, mysql, …) and lists those it does; InvalidArgument names the key at fault.
Result<RetrievalOptions> ParseRetrievalOptions(const nlohmann::json& data,
                                               const RetrievalLimits& limits);

// Params columns → rows: list columns must have one common length N (N rows), scalar
// columns repeat on every row; no list column gives one row.
Result<std::vector<nlohmann::json>> ParamRows(const nlohmann::json& params);

enum class Dialect { kSqlite, kPostgres };

// SQL text with numbered placeholders ($1 for PostgreSQL, ?1 for SQLite) and the values
// bound to them, in order.
struct SqlStatement {
  std::string text;
  std::vector<nlohmann::json> binds;
};

// Renders a template for one params row. `{label}` slots (`{{` / `}}` are literal braces)
// become bind parameters: a bare slot binds the value with its JSON type; a string literal
// that is exactly '{label}' becomes the bare parameter (typed by the database like a
// literal); a slot inside a longer literal ('%{label}%') becomes a concatenation with the
// value bound as text; a double-quoted identifier that is exactly "{label}" becomes that
// value quoted as an identifier (it cannot be bound). Slots in comments, partial
// identifiers, unknown labels, list/object values and a second statement are
// InvalidArgument.
Result<SqlStatement> RenderTemplate(const std::string& sql_template, const nlohmann::json& row,
                                    Dialect dialect);

// The query actually run: SELECT <columns> FROM (<inner>) AS fm_source | <table>
// WHERE <filters> LIMIT <limit + 1> (one more row than kept, to tell truncation), filter
// values bound after the inner statement's. Identifiers are quoted.
Result<SqlStatement> BuildQuery(const RetrievalOptions& options, const SqlStatement& inner,
                                Dialect dialect);

// `name` quoted as an identifier ("a""b"); `schema.table` quotes each part.
std::string QuoteIdentifier(const std::string& name);

// The published result item for one query: {index, query, params, table, rows, columns,
// truncated}.
nlohmann::json ResultItem(size_t index, const std::string& query, const nlohmann::json& params,
                          const Frame& frame, bool truncated);

}  // namespace flowmesh::executors::retrieval
