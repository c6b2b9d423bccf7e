// `data: {type: dataset}`: reading a JSONL/JSON/CSV file from a path or http:// URL,
// split slicing and the deterministic shuffle.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>

#include <curl/curl.h>

#include "dataflow/internal.h"
#include "http/http.h"

namespace flowmesh::dataflow::internal {
namespace {

namespace fs = std::filesystem;

enum class Format { kUnknown, kJsonLines, kJson, kCsv, kTsv };

struct Source {
  std::string text;
  std::string name;          // the path or URL, for messages
  std::string content_type;  // from HTTP, else empty
};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

Status TooBig(const std::string& where, const std::string& name, size_t size,
              const DataOptions& opts) {
  return TooLarge(fmt::format("{}: dataset '{}' is {} bytes, more than max_bytes ({})", where,
                              name, size, opts.max_bytes));
}

Result<Source> ReadLocal(const std::string& path_text, const DataOptions& opts,
                         const std::string& where, const std::string& key) {
  fs::path path(path_text);
  if (path.is_relative() && !opts.data_dir.empty()) path = fs::path(opts.data_dir) / path;
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    return NotFound(fmt::format("{}.{}: dataset file '{}' not found", where, key, path.string()));
  }
  if (!fs::is_regular_file(st)) {
    return InvalidArgument(
        fmt::format("{}.{}: dataset '{}' is not a regular file", where, key, path.string()));
  }
  auto size = fs::file_size(path, ec);
  if (ec) {
    return Internal(fmt::format("{}.{}: cannot stat '{}': {}", where, key, path.string(),
                                ec.message()));
  }
  if (size > opts.max_bytes) return TooBig(where, path.string(), size, opts);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Internal(fmt::format("{}.{}: cannot open '{}'", where, key, path.string()));
  std::ostringstream buf;
  buf << in.rdbuf();
  return Source{buf.str(), path.string(), ""};
}

Result<Source> FetchHttp(const std::string& full_url, const DataOptions& opts,
                         const std::string& where, const std::string& key) {
  constexpr std::string_view kScheme = "http://";
  std::string url = full_url.substr(0, full_url.find('#'));
  size_t slash = url.find('/', kScheme.size());
  std::string base = slash == std::string::npos ? url : url.substr(0, slash);
  std::string target = slash == std::string::npos ? "/" : url.substr(slash);
  if (base.size() == kScheme.size()) {
    return InvalidArgument(fmt::format("{}.{}: bad URL '{}'", where, key, url));
  }
  http::Client client(base, opts.http_timeout);
  Result<http::ClientResponse> response = client.Get(target);
  if (!response.ok()) {
    return Unavailable(
        fmt::format("{}.{}: GET {} failed: {}", where, key, url, response.status().message()));
  }
  if (response->status != 200) {
    return Unavailable(
        fmt::format("{}.{}: GET {} returned HTTP {}", where, key, url, response->status));
  }
  if (response->body.size() > opts.max_bytes) {
    return TooBig(where, url, response->body.size(), opts);
  }
  auto ct = response->headers.find("Content-Type");
  return Source{std::move(response->body), url,
                ct == response->headers.end() ? "" : Lower(ct->second)};
}

// https:// through libcurl (TLS with certificate and host verification; redirects are not
// followed, as for http://).
Result<Source> FetchHttps(const std::string& full_url, const DataOptions& opts,
                          const std::string& where, const std::string& key) {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!initialised) return Internal(where + "." + key + ": cannot initialise libcurl");
  std::string url = full_url.substr(0, full_url.find('#'));
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Internal(where + "." + key + ": cannot create a libcurl handle");
  struct Sink {
    std::string body;
    size_t limit;
    bool too_big = false;
  } sink{"", opts.max_bytes};
  auto write = +[](char* data, size_t size, size_t n, void* user) -> size_t {
    auto* s = static_cast<Sink*>(user);
    if (s->body.size() + size * n > s->limit) {
      s->too_big = true;
      return 0;  // aborts the transfer
    }
    s->body.append(data, size * n);
    return size * n;
  };
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(opts.http_timeout.count()));
  if (!opts.https_ca_file.empty()) curl_easy_setopt(curl.get(), CURLOPT_CAINFO, opts.https_ca_file.c_str());
  CURLcode rc = curl_easy_perform(curl.get());
  if (sink.too_big) return TooBig(where, url, sink.body.size() + 1, opts);
  if (rc != CURLE_OK) {
    return Unavailable(fmt::format("{}.{}: GET {} failed: {}", where, key, url,
                                   error[0] != 0 ? error : curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    return Unavailable(fmt::format("{}.{}: GET {} returned HTTP {}", where, key, url, status));
  }
  char* ct = nullptr;
  curl_easy_getinfo(curl.get(), CURLINFO_CONTENT_TYPE, &ct);
  return Source{std::move(sink.body), url, ct != nullptr ? Lower(ct) : ""};
}

Result<Source> ReadSource(const json& data, const DataOptions& opts, const std::string& where) {
  std::string key = data.contains("url") ? "url" : "name";
  auto it = data.find(key);
  if (it == data.end() || !it->is_string() || it->get<std::string>().empty()) {
    return InvalidArgument(where + ": a dataset needs url or name (a path or http:// URL)");
  }
  std::string url = it->get<std::string>();
  std::string lower = Lower(url.substr(0, std::min<size_t>(url.size(), 16)));
  if (lower.rfind("http://", 0) == 0) return FetchHttp(url, opts, where, key);
  if (lower.rfind("https://", 0) == 0) return FetchHttps(url, opts, where, key);
  if (lower.rfind("file://", 0) == 0) {
    std::string path = url.substr(7);
    if (path.rfind("localhost/", 0) == 0) path = path.substr(9);
    return ReadLocal(http::PercentDecode(path, false), opts, where, key);
  }
  if (size_t scheme = url.find("://"); scheme != std::string::npos) {
    return Unimplemented(fmt::format(
        "{}.{}: unsupported dataset URL '{}' (supported: local path, file://, http://, https://)", where,
        key, url));
  }
  return ReadLocal(url, opts, where, key);
}

Format FormatFromName(std::string name) {
  name = Lower(name.substr(0, name.find_first_of("?#")));
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() &&
           name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
  };
  if (ends(".jsonl") || ends(".ndjson")) return Format::kJsonLines;
  if (ends(".json")) return Format::kJson;
  if (ends(".csv")) return Format::kCsv;
  if (ends(".tsv")) return Format::kTsv;
  return Format::kUnknown;
}

Result<Format> DetectFormat(const json& data, const Source& src, const std::string& where) {
  if (auto f = data.find("format"); f != data.end() && !f->is_null()) {
    std::string name = f->is_string() ? Lower(f->get<std::string>()) : "";
    if (name == "jsonl" || name == "ndjson") return Format::kJsonLines;
    if (name == "json") return Format::kJson;
    if (name == "csv") return Format::kCsv;
    if (name == "tsv") return Format::kTsv;
    return InvalidArgument(where + ".format must be one of jsonl, json, csv, tsv");
  }
  Format f = FormatFromName(src.name);
  if (f != Format::kUnknown) return f;
  if (src.content_type.find("csv") != std::string::npos) return Format::kCsv;
  if (src.content_type.find("tab-separated") != std::string::npos) return Format::kTsv;
  if (src.content_type.find("json") != std::string::npos) return Format::kJson;
  size_t first = src.text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (src.text[first] == '{' || src.text[first] == '[')) {
    return Format::kJson;
  }
  return Format::kCsv;
}

std::string FieldNames(const json& row) {
  std::string out;
  for (auto it = row.begin(); it != row.end(); ++it) {
    if (!out.empty()) out += ", ";
    out += it.key();
  }
  return out.empty() ? "none" : out;
}

// The chosen column of one JSON row; `at` says which row ("line 3", "element 2").
Result<json> PickJson(const json& row, const std::string& column, bool column_given,
                      const std::string& where, const std::string& name,
                      const std::string& at) {
  if (row.is_object()) {
    auto it = row.find(column);
    if (it == row.end()) {
      return InvalidArgument(fmt::format("{}: dataset '{}' {} has no field '{}' (fields: {})",
                                         where, name, at, column, FieldNames(row)));
    }
    return *it;
  }
  if (column_given) {
    return InvalidArgument(fmt::format("{}: dataset '{}' {} is a {}, not an object with '{}'",
                                       where, name, at, row.type_name(), column));
  }
  return row;
}

Result<std::vector<json>> JsonRows(const Source& src, Format format, const std::string& column,
                                   bool column_given, const std::string& where) {
  std::vector<json> rows;
  size_t first = src.text.find_first_not_of(" \t\r\n");
  if (format == Format::kJson && first != std::string::npos && src.text[first] == '[') {
    json doc = json::parse(src.text, nullptr, false);
    if (doc.is_discarded() || !doc.is_array()) {
      return InvalidArgument(
          fmt::format("{}: dataset '{}' is not a valid JSON array", where, src.name));
    }
    for (size_t i = 0; i < doc.size(); ++i) {
      FM_ASSIGN_OR_RETURN(json v, PickJson(doc[i], column, column_given, where, src.name,
                                           fmt::format("element {}", i)));
      rows.push_back(std::move(v));
    }
    return rows;
  }
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= src.text.size()) {
    size_t end = src.text.find('\n', pos);
    if (end == std::string::npos) end = src.text.size();
    ++line_no;
    std::string_view line(src.text.data() + pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    json row = json::parse(line, nullptr, false);
    if (row.is_discarded()) {
      return InvalidArgument(
          fmt::format("{}: dataset '{}' line {} is not valid JSON", where, src.name, line_no));
    }
    FM_ASSIGN_OR_RETURN(json v, PickJson(row, column, column_given, where, src.name,
                                         fmt::format("line {}", line_no)));
    rows.push_back(std::move(v));
  }
  return rows;
}

Result<std::vector<json>> CsvRows(const Source& src, char delimiter, const std::string& column,
                                  const std::string& where) {
  FM_ASSIGN_OR_RETURN(CsvTable table, ParseCsv(src.text, delimiter, where));
  if (table.records.empty()) {
    return InvalidArgument(fmt::format("{}: dataset '{}' has no header row", where, src.name));
  }
  const auto& header = table.records[0];
  auto col = std::find(header.begin(), header.end(), column);
  if (col == header.end()) {
    std::string names;
    for (const auto& h : header) names += (names.empty() ? "" : ", ") + h;
    return InvalidArgument(fmt::format("{}: dataset '{}' has no column '{}' (columns: {})", where,
                                       src.name, column, names));
  }
  size_t index = static_cast<size_t>(col - header.begin());
  std::vector<json> rows;
  for (size_t r = 1; r < table.records.size(); ++r) {
    const auto& rec = table.records[r];
    if (rec.size() != header.size()) {
      return InvalidArgument(
          fmt::format("{}: dataset '{}' line {} has {} fields, the header has {}", where,
                      src.name, table.lines[r], rec.size(), header.size()));
    }
    rows.emplace_back(rec[index]);
  }
  return rows;
}

// One bound of a split slice: an integer (negative counts from the end) or a percentage.
Result<size_t> SliceBound(std::string_view text, size_t n, const std::string& split,
                          const std::string& where) {
  bool percent = !text.empty() && text.back() == '%';
  if (percent) text.remove_suffix(1);
  bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty() || text.size() > 12 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgument(fmt::format(
        "{}: bad split '{}' (want name, name[a:b] or name[a%:b%])", where, split));
  }
  auto value = static_cast<long long>(std::stoll(std::string(text)));
  if (percent) {
    if (value > 100) {
      return InvalidArgument(
          fmt::format("{}: split '{}' has a percentage above 100", where, split));
    }
    value = std::llround(static_cast<double>(value) * static_cast<double>(n) / 100.0);
  }
  if (negative) value = static_cast<long long>(n) - value;
  return static_cast<size_t>(std::clamp<long long>(value, 0, static_cast<long long>(n)));
}

}  // namespace

Result<CsvTable> ParseCsv(std::string_view text, char delimiter, const std::string& where) {
  CsvTable table;
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  size_t line = 1;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '\n' || text[i] == '\r') {  // blank line
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++i;
      ++line;
      continue;
    }
    std::vector<std::string> record;
    size_t record_line = line;
    while (true) {  // one field per iteration
      std::string field;
      if (i < text.size() && text[i] == '"') {
        size_t quote_line = line;
        ++i;
        while (true) {
          if (i >= text.size()) {
            return InvalidArgument(fmt::format(
                "{}: CSV quoted field opened on line {} is never closed", where, quote_line));
          }
          char c = text[i++];
          if (c == '"') {
            if (i < text.size() && text[i] == '"') {
              field += '"';
              ++i;
              continue;
            }
            break;
          }
          if (c == '\n') ++line;
          field += c;
        }
        if (i < text.size() && text[i] != delimiter && text[i] != '\n' && text[i] != '\r') {
          return InvalidArgument(fmt::format(
              "{}: CSV line {}: unexpected character after a closing quote", where, line));
        }
      } else {
        while (i < text.size() && text[i] != delimiter && text[i] != '\n' && text[i] != '\r') {
          field += text[i++];
        }
      }
      record.push_back(std::move(field));
      if (i < text.size() && text[i] == delimiter) {
        ++i;
        continue;
      }
      break;
    }
    // End of record: CRLF, LF, lone CR or end of text.
    if (i < text.size() && text[i] == '\r') ++i;
    if (i < text.size() && text[i] == '\n') ++i;
    ++line;
    table.records.push_back(std::move(record));
    table.lines.push_back(record_line);
  }
  return table;
}

Status ApplySplit(const std::string& split, std::vector<json>* rows, const std::string& where) {
  size_t open = split.find('[');
  std::string_view name = std::string_view(split).substr(0, open);
  bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
  });
  if (!name_ok) {
    return InvalidArgument(
        fmt::format("{}: bad split '{}' (want name, name[a:b] or name[a%:b%])", where, split));
  }
  if (open == std::string::npos) return Status::Ok();
  if (split.back() != ']') {
    return InvalidArgument(
        fmt::format("{}: bad split '{}' (want name, name[a:b] or name[a%:b%])", where, split));
  }
  std::string_view inner = std::string_view(split).substr(open + 1, split.size() - open - 2);
  size_t colon = inner.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgument(
        fmt::format("{}: bad split '{}' (want name, name[a:b] or name[a%:b%])", where, split));
  }
  size_t n = rows->size();
  std::string_view a = inner.substr(0, colon);
  std::string_view b = inner.substr(colon + 1);
  size_t begin = 0;
  size_t end = n;
  if (!a.empty()) {
    FM_ASSIGN_OR_RETURN(begin, SliceBound(a, n, split, where));
  }
  if (!b.empty()) {
    FM_ASSIGN_OR_RETURN(end, SliceBound(b, n, split, where));
  }
  if (end < begin) end = begin;
  std::vector<json> out(std::make_move_iterator(rows->begin() + static_cast<ptrdiff_t>(begin)),
                        std::make_move_iterator(rows->begin() + static_cast<ptrdiff_t>(end)));
  *rows = std::move(out);
  return Status::Ok();
}

void ShuffleRows(std::vector<json>* rows, uint64_t seed) {
  // Not std::shuffle / uniform_int_distribution: their output differs between standard
  // libraries. mt19937_64's sequence is fixed by the standard, and so is this loop.
  std::mt19937_64 rng(seed);
  for (size_t i = rows->size(); i > 1; --i) {
    size_t j = static_cast<size_t>(rng() % i);
    std::swap((*rows)[i - 1], (*rows)[j]);
  }
}

Result<std::vector<json>> LoadDatasetRows(const json& data, const DataOptions& opts,
                                          const std::string& where) {
  FM_ASSIGN_OR_RETURN(Source src, ReadSource(data, opts, where));
  std::string column = "text";
  bool column_given = false;
  if (auto c = data.find("column"); c != data.end() && !c->is_null()) {
    if (!c->is_string() || c->get<std::string>().empty()) {
      return InvalidArgument(where + ".column must be a non-empty string");
    }
    column = c->get<std::string>();
    column_given = true;
  }
  FM_ASSIGN_OR_RETURN(Format format, DetectFormat(data, src, where));
  if (format == Format::kCsv || format == Format::kTsv) {
    return CsvRows(src, format == Format::kCsv ? ',' : '\t', column, where);
  }
  return JsonRows(src, format, column, column_given, where);
}

}  // namespace flowmesh::dataflow::internal
