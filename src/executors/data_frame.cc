#include "executors/data_frame.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>

namespace flowmesh::executors::retrieval {
namespace {

using nlohmann::json;
using ordered_json = nlohmann::ordered_json;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// An unquoted CSV cell: integer, decimal, null (empty) or the text itself.
json CsvCell(const std::string& text) {
  if (text.empty()) return nullptr;
  const char* begin = text.c_str();
  char* end = nullptr;
  bool digits = std::any_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
  });
  if (!digits || !plain) return text;
  errno = 0;
  long long i = std::strtoll(begin, &end, 10);
  if (errno == 0 && *end == '\0') return static_cast<int64_t>(i);
  errno = 0;
  double d = std::strtod(begin, &end);
  if (errno == 0 && *end == '\0') return d;
  return text;
}

// Line and column (1-based) of byte `offset` in `text`.
std::pair<size_t, size_t> LineColumn(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

// nlohmann's parse_error::byte is 1-based and points just past the offending byte.
std::string JsonErrorMessage(const json::parse_error& e) {
  std::string what = e.what();
  // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error …"
  size_t colon = what.find(": ", what.find("parse error"));
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

json FromOrdered(const ordered_json& value) { return json::parse(value.dump()); }

Result<Frame> FrameFromRecords(const ordered_json& records, const std::string& what) {
  Frame frame;
  std::map<std::string, size_t> index;
  for (size_t r = 0; r < records.size(); ++r) {
    const ordered_json& record = records[r];
    if (!record.is_object()) {
      return InvalidArgument(
          fmt::format("{} record {} is not an object (a {})", what, r, record.type_name()));
    }
    for (auto it = record.begin(); it != record.end(); ++it) {
      if (index.emplace(it.key(), frame.columns.size()).second) frame.columns.push_back(it.key());
    }
  }
  for (const ordered_json& record : records) {
    std::vector<json> row(frame.columns.size(), nullptr);
    for (auto it = record.begin(); it != record.end(); ++it) {
      row[index[it.key()]] = FromOrdered(it.value());
    }
    frame.rows.push_back(std::move(row));
  }
  return frame;
}

int TypeRank(const json& v) {
  if (v.is_number()) return 1;
  if (v.is_string()) return 2;
  if (v.is_boolean()) return 3;
  if (v.is_null()) return 4;
  return 5;
}

// -1, 0, 1; nullopt when the two are not comparable.
std::optional<int> Compare(const json& a, const json& b) {
  if (TypeRank(a) != TypeRank(b)) return std::nullopt;
  if (a.is_number()) {
    if (a.is_number_integer() && b.is_number_integer()) {
      int64_t x = a.get<int64_t>(), y = b.get<int64_t>();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    double x = a.get<double>(), y = b.get<double>();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string()) {
    int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_boolean()) return static_cast<int>(a.get<bool>()) - static_cast<int>(b.get<bool>());
  if (a.is_null()) return 0;
  if (a == b) return 0;
  return std::nullopt;
}

Result<size_t> ColumnIndex(const Frame& frame, const std::string& name, const std::string& what) {
  auto it = std::find(frame.columns.begin(), frame.columns.end(), name);
  if (it == frame.columns.end()) {
    return InvalidArgument(fmt::format("{}: unknown column '{}' (columns: {})", what, name,
                                       fmt::join(frame.columns, ", ")));
  }
  return static_cast<size_t>(it - frame.columns.begin());
}

}  // namespace

std::optional<Format> ParseFormat(std::string_view name) {
  std::string n = Lower(name);
  if (n == "csv") return Format::kCsv;
  if (n == "jsonl" || n == "ndjson") return Format::kJsonl;
  if (n == "json") return Format::kJson;
  return std::nullopt;
}

const char* FormatName(Format format) {
  switch (format) {
    case Format::kCsv:
      return "csv";
    case Format::kJsonl:
      return "jsonl";
    case Format::kJson:
      return "json";
  }
  return "?";
}

std::optional<Format> FormatFromName(std::string_view name) {
  name = name.substr(0, name.find_first_of("?#"));
  size_t dot = name.rfind('.');
  size_t slash = name.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) {
    return std::nullopt;
  }
  return ParseFormat(name.substr(dot + 1));
}

std::optional<Format> FormatFromContentType(std::string_view content_type) {
  std::string type = Lower(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  if (type == "text/csv" || type == "application/csv") return Format::kCsv;
  if (type == "application/x-ndjson" || type == "application/jsonl" ||
      type == "application/x-jsonlines" || type == "application/jsonlines") {
    return Format::kJsonl;
  }
  if (type == "application/json") return Format::kJson;
  return std::nullopt;
}

Result<Frame> ParseCsv(std::string_view text) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // BOM
  std::vector<std::vector<json>> records;
  std::vector<size_t> record_lines;
  std::vector<json> record;
  std::string cell;
  size_t line = 1, column = 1;
  size_t record_line = 1;
  size_t i = 0;
  auto error = [&](size_t l, size_t c, const std::string& why) {
    return InvalidArgument(fmt::format("csv line {}, column {}: {}", l, c, why));
  };
  bool at_record_start = true;
  while (i < text.size()) {
    if (at_record_start) {
      record_line = line;
      at_record_start = false;
    }
    // One field.
    cell.clear();
    bool quoted = false;
    if (text[i] == '"') {
      quoted = true;
      size_t open_line = line, open_column = column;
      ++i;
      ++column;
      bool closed = false;
      while (i < text.size()) {
        char c = text[i];
        if (c == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            cell.push_back('"');
            i += 2;
            column += 2;
            continue;
          }
          ++i;
          ++column;
          closed = true;
          break;
        }
        cell.push_back(c);
        ++i;
        if (c == '\n') {
          ++line;
          column = 1;
        } else {
          ++column;
        }
      }
      if (!closed) return error(open_line, open_column, "unterminated quoted field");
      if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
        return error(line, column, fmt::format("unexpected '{}' after a closing quote", text[i]));
      }
    } else {
      while (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
        if (text[i] == '"') return error(line, column, "quote inside an unquoted field");
        cell.push_back(text[i]);
        ++i;
        ++column;
      }
    }
    record.push_back(quoted ? json(cell) : CsvCell(cell));
    if (i < text.size() && text[i] == ',') {
      ++i;
      ++column;
      if (i == text.size()) record.push_back(nullptr);  // trailing comma at end of text
      continue;
    }
    // End of record.
    if (i < text.size() && text[i] == '\r') ++i;
    if (i < text.size() && text[i] == '\n') ++i;
    bool blank = record.size() == 1 && record[0].is_null() && !quoted;
    if (!blank) {
      records.push_back(std::move(record));
      record_lines.push_back(record_line);
    }
    record.clear();
    ++line;
    column = 1;
    at_record_start = true;
  }
  if (!record.empty()) {
    records.push_back(std::move(record));
    record_lines.push_back(record_line);
  }
  Frame frame;
  if (records.empty()) return frame;
  std::set<std::string> seen;
  for (size_t c = 0; c < records[0].size(); ++c) {
    const json& name = records[0][c];
    std::string text_name =
        name.is_string() ? name.get<std::string>() : (name.is_null() ? "" : name.dump());
    if (text_name.empty())
      return error(record_lines[0], 1, fmt::format("header field {} is empty", c + 1));
    if (!seen.insert(text_name).second) {
      return error(record_lines[0], 1, fmt::format("duplicate header '{}'", text_name));
    }
    frame.columns.push_back(text_name);
  }
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].size() != frame.columns.size()) {
      return error(record_lines[r], 1,
                   fmt::format("{} fields where the header has {}", records[r].size(),
                               frame.columns.size()));
    }
    frame.rows.push_back(std::move(records[r]));
  }
  return frame;
}

Result<Frame> ParseJsonl(std::string_view text) {
  ordered_json records = ordered_json::array();
  size_t line = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    ++line;
    std::string_view row = text.substr(start, end - start);
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    bool blank = std::all_of(row.begin(), row.end(), [](char c) { return c == ' ' || c == '\t'; });
    if (!blank) {
      try {
        ordered_json value = ordered_json::parse(row);
        if (!value.is_object()) {
          return InvalidArgument(fmt::format(
              "jsonl line {}, column 1: expected an object, got a {}", line, value.type_name()));
        }
        records.push_back(std::move(value));
      } catch (const json::parse_error& e) {
        size_t column = e.byte == 0 ? 1 : std::min(e.byte, row.size() + 1);
        return InvalidArgument(
            fmt::format("jsonl line {}, column {}: {}", line, column, JsonErrorMessage(e)));
      }
    }
    if (end == text.size()) break;
    start = end + 1;
  }
  return FrameFromRecords(records, "jsonl");
}

Result<Frame> ParseJson(std::string_view text, std::string_view records_path) {
  ordered_json doc;
  try {
    doc = ordered_json::parse(text);
  } catch (const json::parse_error& e) {
    auto [line, column] = LineColumn(text, e.byte == 0 ? 0 : e.byte - 1);
    return InvalidArgument(
        fmt::format("json line {}, column {}: {}", line, column, JsonErrorMessage(e)));
  }
  const ordered_json* records = &doc;
  std::string where = "the document";
  if (!records_path.empty()) {
    size_t start = 0;
    while (start <= records_path.size()) {
      size_t dot = records_path.find('.', start);
      std::string key(records_path.substr(
          start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
      if (!records->is_object() || !records->contains(key)) {
        return InvalidArgument(
            fmt::format("json: records path '{}': no key '{}'", records_path, key));
      }
      records = &(*records)[key];
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
    where = fmt::format("'{}'", records_path);
  }
  if (!records->is_array()) {
    return InvalidArgument(
        fmt::format("json: {} is a {}, not a list of records (set records_path to the list)", where,
                    records->type_name()));
  }
  return FrameFromRecords(*records, "json");
}

Result<Frame> ParseText(std::string_view text, Format format, std::string_view records_path) {
  switch (format) {
    case Format::kCsv:
      return ParseCsv(text);
    case Format::kJsonl:
      return ParseJsonl(text);
    case Format::kJson:
      return ParseJson(text, records_path);
  }
  return InvalidArgument("unknown format");
}

std::optional<FilterOp> ParseFilterOp(std::string_view op) {
  static const std::map<std::string, FilterOp, std::less<>> kOps = {
      {"=", FilterOp::kEq},           {"==", FilterOp::kEq},
      {"eq", FilterOp::kEq},          {"!=", FilterOp::kNe},
      {"<>", FilterOp::kNe},          {"ne", FilterOp::kNe},
      {"<", FilterOp::kLt},           {"lt", FilterOp::kLt},
      {"<=", FilterOp::kLe},          {"le", FilterOp::kLe},
      {">", FilterOp::kGt},           {"gt", FilterOp::kGt},
      {">=", FilterOp::kGe},          {"ge", FilterOp::kGe},
      {"in", FilterOp::kIn},          {"contains", FilterOp::kContains},
      {"is_null", FilterOp::kIsNull}, {"not_null", FilterOp::kNotNull}};
  auto it = kOps.find(Lower(op));
  if (it == kOps.end()) return std::nullopt;
  return it->second;
}

const char* FilterOpName(FilterOp op) {
  switch (op) {
    case FilterOp::kEq:
      return "=";
    case FilterOp::kNe:
      return "!=";
    case FilterOp::kLt:
      return "<";
    case FilterOp::kLe:
      return "<=";
    case FilterOp::kGt:
      return ">";
    case FilterOp::kGe:
      return ">=";
    case FilterOp::kIn:
      return "in";
    case FilterOp::kContains:
      return "contains";
    case FilterOp::kIsNull:
      return "is_null";
    case FilterOp::kNotNull:
      return "not_null";
  }
  return "?";
}

bool Matches(const json& cell, const Filter& filter) {
  switch (filter.op) {
    case FilterOp::kIsNull:
      return cell.is_null();
    case FilterOp::kNotNull:
      return !cell.is_null();
    case FilterOp::kContains:
      return cell.is_string() && filter.value.is_string() &&
             cell.get_ref<const std::string&>().find(filter.value.get_ref<const std::string&>()) !=
                 std::string::npos;
    case FilterOp::kIn:
      return filter.value.is_array() &&
             std::any_of(filter.value.begin(), filter.value.end(),
                         [&](const json& v) { return Compare(cell, v) == 0; });
    default:
      break;
  }
  std::optional<int> c = Compare(cell, filter.value);
  if (filter.op == FilterOp::kNe) return c != 0;
  if (!c) return false;
  switch (filter.op) {
    case FilterOp::kEq:
      return *c == 0;
    case FilterOp::kLt:
      return *c < 0;
    case FilterOp::kLe:
      return *c <= 0;
    case FilterOp::kGt:
      return *c > 0;
    case FilterOp::kGe:
      return *c >= 0;
    default:
      return false;
  }
}

Result<Frame> ApplyFilters(Frame frame, const std::vector<Filter>& filters) {
  if (filters.empty()) return frame;
  std::vector<size_t> index;
  for (size_t f = 0; f < filters.size(); ++f) {
    FM_ASSIGN_OR_RETURN(size_t i,
                        ColumnIndex(frame, filters[f].column, fmt::format("filters[{}]", f)));
    index.push_back(i);
  }
  std::vector<std::vector<json>> kept;
  for (auto& row : frame.rows) {
    bool all = true;
    for (size_t f = 0; f < filters.size() && all; ++f) all = Matches(row[index[f]], filters[f]);
    if (all) kept.push_back(std::move(row));
  }
  frame.rows = std::move(kept);
  return frame;
}

Result<Frame> SelectColumns(Frame frame, const std::vector<std::string>& columns) {
  if (columns.empty()) return frame;
  std::vector<size_t> index;
  for (const std::string& name : columns) {
    FM_ASSIGN_OR_RETURN(size_t i, ColumnIndex(frame, name, "columns"));
    index.push_back(i);
  }
  Frame out;
  out.columns = columns;
  for (auto& row : frame.rows) {
    std::vector<json> picked;
    picked.reserve(index.size());
    for (size_t i : index) picked.push_back(row[i]);
    out.rows.push_back(std::move(picked));
  }
  return out;
}

std::vector<std::string> DropDuplicateColumns(Frame& frame) {
  std::set<std::string> seen;
  std::vector<size_t> keep;
  std::vector<std::string> dropped;
  for (size_t c = 0; c < frame.columns.size(); ++c) {
    if (seen.insert(frame.columns[c]).second) {
      keep.push_back(c);
    } else {
      dropped.push_back(frame.columns[c]);
    }
  }
  if (dropped.empty()) return dropped;
  std::vector<std::string> columns;
  for (size_t c : keep) columns.push_back(frame.columns[c]);
  frame.columns = std::move(columns);
  for (auto& row : frame.rows) {
    std::vector<json> kept;
    for (size_t c : keep) kept.push_back(std::move(row[c]));
    row = std::move(kept);
  }
  return dropped;
}

json TableJson(const Frame& frame) {
  json table = json::object();
  for (size_t c = 0; c < frame.columns.size(); ++c) {
    json values = json::array();
    for (const auto& row : frame.rows) values.push_back(row[c]);
    table[frame.columns[c]] = std::move(values);
  }
  return table;
}

size_t RowBytes(const std::vector<json>& row) {
  size_t bytes = 0;
  for (const json& cell : row) bytes += cell.dump().size() + 1;
  return bytes;
}

bool Bound(Frame& frame, size_t max_rows, size_t* byte_budget) {
  size_t keep = 0;
  for (; keep < frame.rows.size() && keep < max_rows; ++keep) {
    size_t bytes = RowBytes(frame.rows[keep]);
    if (bytes > *byte_budget) break;
    *byte_budget -= bytes;
  }
  bool dropped = keep < frame.rows.size();
  frame.rows.resize(keep);
  return dropped;
}

}  // namespace flowmesh::executors::retrieval
