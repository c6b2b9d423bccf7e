#include "executors/data_retrieval_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace flowmesh::executors::retrieval {
namespace {

using nlohmann::json;

constexpr const char* kSupported =
    "sql (postgresql:// or sqlite: connection_string), postgresql, sqlite, http, file";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

Status NotSupported(const std::string& what) {
  return Unimplemented(
      fmt::format("data_retrieval: {} is not supported by this worker (supported sources: {})",
                  what, kSupported));
}

// Source types the published executor (or other systems) have that we do not offer.
bool KnownUnsupported(const std::string& type) {
  static const std::set<std::string> kTypes = {
      "s3",       "lumid",      "agent",     "bigquery", "mysql", "mariadb",
      "mssql",    "oracle",     "snowflake", "mongodb",  "gcs",   "azure",
      "redshift", "clickhouse", "duckdb",    "hdfs",     "kafka"};
  return kTypes.count(type) > 0;
}

Result<std::string> OptionalString(const json& data, const char* key) {
  auto it = data.find(key);
  if (it == data.end() || it->is_null()) return std::string();
  if (!it->is_string()) return InvalidArgument(fmt::format("spec.data.{} must be a string", key));
  return it->get<std::string>();
}

Result<std::string> RequiredString(const json& data, const char* key, const std::string& why) {
  FM_ASSIGN_OR_RETURN(std::string value, OptionalString(data, key));
  if (value.empty()) return InvalidArgument(fmt::format("spec.data.{} is required {}", key, why));
  return value;
}

Result<size_t> Bounded(const json& data, const char* key, size_t fallback, size_t max) {
  auto it = data.find(key);
  if (it == data.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() || it->get<int64_t>() < 1) {
    return InvalidArgument(fmt::format("spec.data.{} must be a positive integer", key));
  }
  auto value = static_cast<size_t>(it->get<int64_t>());
  if (value > max) {
    return InvalidArgument(
        fmt::format("spec.data.{} is {}, above this worker's maximum of {}", key, value, max));
  }
  return value;
}

// A `sql` connection string: postgresql:// (or a key=value libpq string) or sqlite:.
Status ClassifySql(const std::string& connection, RetrievalOptions* o) {
  std::string lower = Lower(connection);
  if (StartsWith(lower, "postgresql://") || StartsWith(lower, "postgres://")) {
    o->kind = SourceKind::kPostgres;
    o->connection_string = connection;
    return Status::Ok();
  }
  if (StartsWith(lower, "sqlite:")) {
    std::string path = connection.substr(7);
    if (StartsWith(path, "//")) path = path.substr(2);  // sqlite:///abs/path → /abs/path
    if (path.empty()) return InvalidArgument("spec.data.connection_string: sqlite: names no file");
    o->kind = SourceKind::kSqlite;
    o->path = path;
    return Status::Ok();
  }
  if (size_t scheme = lower.find("://"); scheme != std::string::npos) {
    return NotSupported(fmt::format("a '{}' connection_string", lower.substr(0, scheme)));
  }
  if (connection.find('=') != std::string::npos) {  // host=… dbname=…
    o->kind = SourceKind::kPostgres;
    o->connection_string = connection;
    return Status::Ok();
  }
  return InvalidArgument(
      "spec.data.connection_string must be postgresql://…, a libpq 'key=value' string or "
      "sqlite:///path");
}

Result<std::vector<Filter>> ParseFilters(const json& data) {
  std::vector<Filter> filters;
  auto it = data.find("filters");
  if (it == data.end() || it->is_null()) return filters;
  if (!it->is_array()) {
    return InvalidArgument("spec.data.filters must be a list of {column, op, value}");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& f = (*it)[i];
    std::string where = fmt::format("spec.data.filters[{}]", i);
    if (!f.is_object() || !f.contains("column") || !f["column"].is_string() ||
        f["column"].get<std::string>().empty()) {
      return InvalidArgument(where + " must be an object {column, op, value}");
    }
    Filter filter;
    filter.column = f["column"].get<std::string>();
    std::string op = f.contains("op") && f["op"].is_string() ? f["op"].get<std::string>() : "=";
    if (f.contains("op") && !f["op"].is_string())
      return InvalidArgument(where + ".op must be a string");
    auto parsed = ParseFilterOp(op);
    if (!parsed) {
      return InvalidArgument(fmt::format(
          "{}.op: unknown operator '{}' (one of =, !=, <, <=, >, >=, in, contains, is_null, "
          "not_null)",
          where, op));
    }
    filter.op = *parsed;
    bool needs_value = filter.op != FilterOp::kIsNull && filter.op != FilterOp::kNotNull;
    if (needs_value) {
      if (!f.contains("value")) return InvalidArgument(where + ".value is required");
      filter.value = f["value"];
      if (filter.op == FilterOp::kIn) {
        if (!filter.value.is_array())
          return InvalidArgument(where + ".value must be a list for 'in'");
        for (const json& v : filter.value) {
          if (v.is_structured()) return InvalidArgument(where + ".value must list scalars");
        }
      } else if (filter.value.is_structured()) {
        return InvalidArgument(where + ".value must be a string, number, boolean or null");
      } else if (filter.op == FilterOp::kContains && !filter.value.is_string()) {
        return InvalidArgument(where + ".value must be a string for 'contains'");
      }
    }
    filters.push_back(std::move(filter));
  }
  return filters;
}

std::string Placeholder(Dialect dialect, size_t n) {
  return fmt::format("{}{}", dialect == Dialect::kPostgres ? "$" : "?", n);
}

std::string TextOf(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

std::string QuoteLiteral(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out.push_back(c);
    if (c == '\'') out.push_back('\'');
  }
  out.push_back('\'');
  return out;
}

bool IsLabelChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

// One piece of a quoted section: text, or a slot naming a label.
struct Piece {
  bool slot = false;
  std::string text;
};

// Template rendering state: the row, the statement being built and error positions.
class Renderer {
 public:
  Renderer(const std::string& tmpl, const json& row, Dialect dialect)
      : t_(tmpl), row_(row), dialect_(dialect) {}

  Result<SqlStatement> Run() {
    size_t end = t_.size();
    while (end > 0 &&
           (std::isspace(static_cast<unsigned char>(t_[end - 1])) || t_[end - 1] == ';')) {
      --end;
    }
    size_t i = 0;
    while (i < end) {
      char c = t_[i];
      if (c == '\'' || c == '"') {
        FM_ASSIGN_OR_RETURN(i, Quoted(i, end));
      } else if (c == '-' && i + 1 < end && t_[i + 1] == '-') {
        size_t nl = t_.find('\n', i);
        nl = nl == std::string::npos || nl > end ? end : nl;
        FM_RETURN_IF_ERROR(Comment(i, nl));
        i = nl;
      } else if (c == '/' && i + 1 < end && t_[i + 1] == '*') {
        size_t close = t_.find("*/", i + 2);
        size_t stop = close == std::string::npos || close + 2 > end ? end : close + 2;
        FM_RETURN_IF_ERROR(Comment(i, stop));
        i = stop;
      } else if (c == ';') {
        return Error(i, "only one statement may be run");
      } else if (c == '{' || c == '}') {
        FM_ASSIGN_OR_RETURN(Piece piece, Brace(i, end));
        if (piece.slot) {
          FM_ASSIGN_OR_RETURN(json value, Value(piece.text, i));
          out_.text += Bind(std::move(value));
        } else {
          out_.text += piece.text;
        }
        i = next_;
      } else {
        out_.text.push_back(c);
        ++i;
      }
    }
    return std::move(out_);
  }

 private:
  Status Error(size_t at, const std::string& why) const {
    return InvalidArgument(fmt::format("spec.data.template, character {}: {}", at + 1, why));
  }

  // A brace at `i`: `{{` or `}}` (text), or `{label}` (a slot). Sets next_.
  Result<Piece> Brace(size_t i, size_t end) {
    char c = t_[i];
    if (i + 1 < end && t_[i + 1] == c) {
      next_ = i + 2;
      return Piece{false, std::string(1, c)};
    }
    if (c == '}') return Error(i, "a single '}' (write '}}' for a brace)");
    size_t j = i + 1;
    while (j < end && IsLabelChar(t_[j])) ++j;
    if (j == i + 1 || j >= end || t_[j] != '}') {
      return Error(i, "a '{' that does not start a {label} slot (write '{{' for a brace)");
    }
    next_ = j + 1;
    return Piece{true, t_.substr(i + 1, j - i - 1)};
  }

  Result<json> Value(const std::string& label, size_t at) const {
    if (!row_.is_object() || !row_.contains(label)) {
      std::vector<std::string> labels;
      if (row_.is_object()) {
        for (auto it = row_.begin(); it != row_.end(); ++it) labels.push_back(it.key());
      }
      return Error(
          at, fmt::format("slot {{{}}} has no param (params: {})", label,
                          labels.empty() ? "none" : fmt::format("{}", fmt::join(labels, ", "))));
    }
    const json& value = row_[label];
    if (value.is_structured()) {
      return Error(at, fmt::format("param '{}' is a {}, not a scalar", label, value.type_name()));
    }
    return value;
  }

  std::string Bind(json value) {
    out_.binds.push_back(std::move(value));
    return Placeholder(dialect_, out_.binds.size());
  }

  Status Comment(size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      if ((t_[k] == '{' || t_[k] == '}') && !(k + 1 < end && t_[k + 1] == t_[k])) {
        return Error(k, "a slot inside a comment");
      }
      out_.text.push_back(t_[k]);
      if ((t_[k] == '{' || t_[k] == '}')) ++k;  // the doubled brace becomes one
    }
    return Status::Ok();
  }

  // A '…' literal or "…" identifier starting at `i`; returns the index after it.
  Result<size_t> Quoted(size_t i, size_t end) {
    char q = t_[i];
    std::vector<Piece> pieces;
    size_t k = i + 1;
    bool closed = false;
    std::vector<size_t> slot_at;
    while (k < end) {
      char c = t_[k];
      if (c == q) {
        if (k + 1 < end && t_[k + 1] == q) {
          if (pieces.empty() || pieces.back().slot) pieces.push_back({});
          pieces.back().text.push_back(q);
          k += 2;
          continue;
        }
        closed = true;
        ++k;
        break;
      }
      if (c == '{' || c == '}') {
        FM_ASSIGN_OR_RETURN(Piece piece, Brace(k, end));
        if (piece.slot) {
          pieces.push_back(std::move(piece));
          slot_at.push_back(k);
        } else {
          if (pieces.empty() || pieces.back().slot) pieces.push_back({});
          pieces.back().text += piece.text;
        }
        k = next_;
        continue;
      }
      if (pieces.empty() || pieces.back().slot) pieces.push_back({});
      pieces.back().text.push_back(c);
      ++k;
    }
    if (!closed)
      return Error(i, q == '\'' ? "unterminated string literal" : "unterminated identifier");
    if (slot_at.empty()) {
      std::string plain;
      for (const Piece& p : pieces) plain += p.text;
      out_.text += q == '\'' ? QuoteLiteral(plain) : QuoteIdentifier(plain);
      return k;
    }
    if (q == '"') {
      if (pieces.size() != 1) return Error(i, "a slot must be the whole quoted identifier");
      FM_ASSIGN_OR_RETURN(json value, Value(pieces[0].text, slot_at[0]));
      if (!value.is_string() || value.get<std::string>().empty() ||
          value.get<std::string>().find('\0') != std::string::npos) {
        return Error(slot_at[0], fmt::format("param '{}' names an identifier and must be a "
                                             "non-empty string",
                                             pieces[0].text));
      }
      out_.text += QuoteIdentifier(value.get<std::string>());
      return k;
    }
    if (pieces.size() == 1) {  // '{label}': the bare parameter, typed like a literal
      FM_ASSIGN_OR_RETURN(json value, Value(pieces[0].text, slot_at[0]));
      out_.text += Bind(value.is_null() ? json(nullptr) : json(TextOf(value)));
      return k;
    }
    std::vector<std::string> parts;
    size_t s = 0;
    for (const Piece& p : pieces) {
      if (!p.slot) {
        parts.push_back(QuoteLiteral(p.text));
        continue;
      }
      FM_ASSIGN_OR_RETURN(json value, Value(p.text, slot_at[s++]));
      std::string placeholder = Bind(json(TextOf(value)));
      parts.push_back(dialect_ == Dialect::kPostgres ? placeholder + "::text" : placeholder);
    }
    out_.text += fmt::format("({})", fmt::join(parts, " || "));
    return k;
  }

  const std::string& t_;
  const json& row_;
  Dialect dialect_;
  SqlStatement out_;
  size_t next_ = 0;
};

}  // namespace

const char* SourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::kSqlite:
      return "sqlite";
    case SourceKind::kPostgres:
      return "postgresql";
    case SourceKind::kHttp:
      return "http";
    case SourceKind::kFile:
      return "file";
  }
  return "?";
}

Result<std::vector<json>> ParamRows(const json& params) {
  if (params.is_null()) return std::vector<json>{json::object()};
  if (!params.is_array()) {
    return InvalidArgument("spec.data.params must be a list of {label, value | data | node+path}");
  }
  std::vector<std::string> labels;
  std::vector<json> values;
  std::optional<size_t> rows;
  for (size_t i = 0; i < params.size(); ++i) {
    const json& p = params[i];
    std::string where = fmt::format("spec.data.params[{}]", i);
    if (!p.is_object() || !p.contains("label") || !p["label"].is_string() ||
        p["label"].get<std::string>().empty()) {
      return InvalidArgument(where + " must be an object with a label");
    }
    std::string label = p["label"].get<std::string>();
    if (std::find(labels.begin(), labels.end(), label) != labels.end()) {
      return InvalidArgument(fmt::format("{}: duplicate label '{}'", where, label));
    }
    json value;
    if (p.contains("value")) {
      value = p["value"];
    } else if (p.contains("data") && p["data"].is_object() && p["data"].contains("items")) {
      value = p["data"]["items"];
    } else if (p.contains("node")) {
      return InvalidArgument(where +
                             ": a {node, path} param is resolved by the scheduler; "
                             "this task was not dispatched by one");
    } else {
      return InvalidArgument(where +
                             " needs a value (value, data: {type: list, items} or "
                             "node + path)");
    }
    if (value.is_array()) {
      if (rows && *rows != value.size()) {
        return InvalidArgument(
            fmt::format("{}: '{}' has {} values where an earlier list param has {}", where, label,
                        value.size(), *rows));
      }
      rows = value.size();
    }
    labels.push_back(std::move(label));
    values.push_back(std::move(value));
  }
  std::vector<json> out;
  size_t n = rows.value_or(1);
  for (size_t r = 0; r < n; ++r) {
    json row = json::object();
    for (size_t c = 0; c < labels.size(); ++c) {
      row[labels[c]] = values[c].is_array() ? values[c][r] : values[c];
    }
    out.push_back(std::move(row));
  }
  return out;
}

Result<RetrievalOptions> ParseRetrievalOptions(const json& data, const RetrievalLimits& limits) {
  if (!data.is_object()) {
    return InvalidArgument("data_retrieval needs spec.data: {type, …} naming a source");
  }
  auto type_it = data.find("type");
  if (type_it == data.end() || !type_it->is_string() || type_it->get<std::string>().empty()) {
    return InvalidArgument(fmt::format("spec.data.type must name a source ({})", kSupported));
  }
  RetrievalOptions o;
  o.type = type_it->get<std::string>();
  std::string type = Lower(o.type);
  if (type == "sql") {
    FM_ASSIGN_OR_RETURN(std::string conn,
                        RequiredString(data, "connection_string", "for type sql"));
    FM_RETURN_IF_ERROR(ClassifySql(conn, &o));
  } else if (type == "postgresql" || type == "postgres") {
    FM_ASSIGN_OR_RETURN(o.connection_string,
                        RequiredString(data, "connection_string", "for type " + type));
    o.kind = SourceKind::kPostgres;
  } else if (type == "sqlite") {
    FM_ASSIGN_OR_RETURN(o.path, OptionalString(data, "path"));
    FM_ASSIGN_OR_RETURN(std::string conn, OptionalString(data, "connection_string"));
    if (o.path.empty() && StartsWith(Lower(conn), "sqlite:")) {
      FM_RETURN_IF_ERROR(ClassifySql(conn, &o));
    }
    if (o.path.empty()) {
      return InvalidArgument(
          "spec.data.path is required for type sqlite (or a sqlite: "
          "connection_string)");
    }
    o.kind = SourceKind::kSqlite;
  } else if (type == "http" || type == "https") {
    FM_ASSIGN_OR_RETURN(o.url, RequiredString(data, "url", "for type " + type));
    std::string lower = Lower(o.url);
    if (!StartsWith(lower, "http://") && !StartsWith(lower, "https://")) {
      return InvalidArgument("spec.data.url must be an http:// or https:// URL");
    }
    o.kind = SourceKind::kHttp;
  } else if (type == "file") {
    FM_ASSIGN_OR_RETURN(o.path, RequiredString(data, "path", "for type file"));
    o.kind = SourceKind::kFile;
  } else if (KnownUnsupported(type)) {
    return NotSupported(fmt::format("source type '{}'", o.type));
  } else {
    return InvalidArgument(fmt::format("spec.data.type: unknown source type '{}' (supported: {})",
                                       o.type, kSupported));
  }
  bool sql = o.kind == SourceKind::kSqlite || o.kind == SourceKind::kPostgres;

  FM_ASSIGN_OR_RETURN(o.sql_template, OptionalString(data, "template"));
  FM_ASSIGN_OR_RETURN(std::string query, OptionalString(data, "query"));
  if (!query.empty()) {
    if (!o.sql_template.empty()) {
      return InvalidArgument("spec.data: give either template or query, not both");
    }
    o.sql_template = query;
  }
  FM_ASSIGN_OR_RETURN(o.table, OptionalString(data, "table"));
  if (sql) {
    if (o.sql_template.empty() == o.table.empty()) {
      return InvalidArgument(fmt::format(
          "spec.data: a {} source needs either template (a SQL query with {{label}} slots) or "
          "table",
          SourceKindName(o.kind)));
    }
  } else if (!o.sql_template.empty() || !o.table.empty()) {
    return InvalidArgument(fmt::format(
        "spec.data: template/query/table apply to SQL sources, not to {} (use columns and "
        "filters)",
        SourceKindName(o.kind)));
  }

  if (auto it = data.find("columns"); it != data.end() && !it->is_null()) {
    if (!it->is_array()) return InvalidArgument("spec.data.columns must be a list of column names");
    for (const json& c : *it) {
      if (!c.is_string() || c.get<std::string>().empty()) {
        return InvalidArgument("spec.data.columns must be a list of column names");
      }
      o.columns.push_back(c.get<std::string>());
    }
  }
  FM_ASSIGN_OR_RETURN(o.filters, ParseFilters(data));
  FM_ASSIGN_OR_RETURN(o.param_rows, ParamRows(data.value("params", json())));
  if (!sql && (o.param_rows.size() != 1 || !o.param_rows[0].empty())) {
    return InvalidArgument("spec.data.params fill a SQL template's slots; a " +
                           std::string(SourceKindName(o.kind)) + " source has none");
  }
  FM_ASSIGN_OR_RETURN(o.limit, Bounded(data, "limit", limits.max_rows, limits.max_rows));
  FM_ASSIGN_OR_RETURN(o.max_bytes, Bounded(data, "max_bytes", limits.max_bytes, limits.max_bytes));
  if (auto it = data.find("require_non_empty_rows"); it != data.end() && !it->is_null()) {
    if (!it->is_boolean())
      return InvalidArgument("spec.data.require_non_empty_rows must be a boolean");
    o.require_non_empty_rows = it->get<bool>();
  }
  o.timeout_s = limits.timeout_s;
  if (auto it = data.find("timeout_seconds"); it != data.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() <= 0) {
      return InvalidArgument("spec.data.timeout_seconds must be a positive number");
    }
    o.timeout_s = std::min(it->get<double>(), limits.timeout_s);
  }

  if (o.kind == SourceKind::kHttp) {
    if (auto it = data.find("headers"); it != data.end() && !it->is_null()) {
      if (!it->is_object()) return InvalidArgument("spec.data.headers must be a mapping");
      for (auto h = it->begin(); h != it->end(); ++h) {
        if (!h->is_string()) {
          return InvalidArgument(fmt::format("spec.data.headers.{} must be a string", h.key()));
        }
        o.headers[h.key()] = h->get<std::string>();
      }
    }
  }
  if (!sql) {
    FM_ASSIGN_OR_RETURN(std::string format, OptionalString(data, "format"));
    if (!format.empty()) {
      o.format = ParseFormat(format);
      if (!o.format) {
        return InvalidArgument(
            fmt::format("spec.data.format: unknown format '{}' (csv, jsonl or json)", format));
      }
    }
    FM_ASSIGN_OR_RETURN(o.records_path, OptionalString(data, "records_path"));
  }
  return o;
}

std::string QuoteIdentifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    out.push_back(c);
    if (c == '"') out.push_back('"');
  }
  out.push_back('"');
  return out;
}

Result<SqlStatement> RenderTemplate(const std::string& sql_template, const json& row,
                                    Dialect dialect) {
  return Renderer(sql_template, row, dialect).Run();
}

Result<SqlStatement> BuildQuery(const RetrievalOptions& options, const SqlStatement& inner,
                                Dialect dialect) {
  SqlStatement out;
  out.binds = inner.binds;
  std::vector<std::string> select;
  for (const std::string& c : options.columns) select.push_back(QuoteIdentifier(c));
  std::string from;
  if (!options.table.empty()) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      size_t dot = options.table.find('.', start);
      std::string part = options.table.substr(start, dot == std::string::npos ? dot : dot - start);
      if (part.empty()) {
        return InvalidArgument(
            fmt::format("spec.data.table: '{}' is not a table name", options.table));
      }
      parts.push_back(QuoteIdentifier(part));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    from = fmt::format("{}", fmt::join(parts, "."));
  } else {
    from = fmt::format("({}) AS fm_source", inner.text);
  }
  std::vector<std::string> where;
  auto bind = [&](const json& v) {
    out.binds.push_back(v);
    return Placeholder(dialect, out.binds.size());
  };
  for (const Filter& f : options.filters) {
    std::string col = QuoteIdentifier(f.column);
    switch (f.op) {
      case FilterOp::kIsNull:
        where.push_back(col + " IS NULL");
        break;
      case FilterOp::kNotNull:
        where.push_back(col + " IS NOT NULL");
        break;
      case FilterOp::kIn: {
        if (f.value.empty()) {
          where.push_back("1 = 0");
          break;
        }
        std::vector<std::string> ps;
        for (const json& v : f.value) ps.push_back(bind(v));
        where.push_back(fmt::format("{} IN ({})", col, fmt::join(ps, ", ")));
        break;
      }
      case FilterOp::kContains:
        where.push_back(dialect == Dialect::kPostgres
                            ? fmt::format("strpos({}::text, {}::text) > 0", col, bind(f.value))
                            : fmt::format("instr({}, {}) > 0", col, bind(f.value)));
        break;
      case FilterOp::kNe:
        where.push_back(fmt::format("{} <> {}", col, bind(f.value)));
        break;
      default:
        where.push_back(fmt::format("{} {} {}", col, FilterOpName(f.op), bind(f.value)));
        break;
    }
  }
  out.text = fmt::format("SELECT {} FROM {}",
                         select.empty() ? "*" : fmt::format("{}", fmt::join(select, ", ")), from);
  if (!where.empty()) out.text += fmt::format(" WHERE {}", fmt::join(where, " AND "));
  out.text += fmt::format(" LIMIT {}", options.limit + 1);
  return out;
}

json ResultItem(size_t index, const std::string& query, const json& params, const Frame& frame,
                bool truncated) {
  return {{"index", index},           {"query", query},
          {"params", params},         {"table", TableJson(frame)},
          {"columns", frame.columns}, {"rows", frame.rows.size()},
          {"truncated", truncated}};
}

}  // namespace flowmesh::executors::retrieval
