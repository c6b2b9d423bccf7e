#include "executors/data_retrieval.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>

#include "executors/api_client.h"
#include "executors/api_http.h"
#include "executors/api_request.h"

namespace flowmesh::executors {
namespace {

using nlohmann::json;
using retrieval::Dialect;
using retrieval::Frame;
using retrieval::RetrievalOptions;
using retrieval::SourceKind;
using retrieval::SqlStatement;
using Clock = std::chrono::steady_clock;

// Where one query stops reading: rows (limit + 1, to tell truncation) and bytes.
struct ReadBounds {
  size_t max_rows = 0;
  size_t max_bytes = 0;
  Clock::time_point deadline;
};

bool Within(const std::filesystem::path& path, const std::filesystem::path& dir) {
  auto [d, p] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return d == dir.end();
}

// ---- SQLite

// Only reading: SELECT, reading columns, functions, recursive CTEs.
int AuthorizeRead(void*, int action, const char*, const char*, const char*, const char*) {
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    default:
      return SQLITE_DENY;
  }
}

struct SqliteProgress {
  const std::atomic<bool>* cancelled = nullptr;
  Clock::time_point deadline;
  bool timed_out = false;
};

int InterruptWhenDone(void* arg) {
  auto* p = static_cast<SqliteProgress*>(arg);
  if (p->cancelled->load()) return 1;
  if (Clock::now() > p->deadline) {
    p->timed_out = true;
    return 1;
  }
  return 0;
}

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

json SqliteCell(sqlite3_stmt* stmt, int c) {
  switch (sqlite3_column_type(stmt, c)) {
    case SQLITE_INTEGER:
      return static_cast<int64_t>(sqlite3_column_int64(stmt, c));
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt, c);
    case SQLITE_TEXT:
      return std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c)),
                         static_cast<size_t>(sqlite3_column_bytes(stmt, c)));
    case SQLITE_BLOB:
      return json{{"blob_bytes", sqlite3_column_bytes(stmt, c)}};
    default:
      return nullptr;
  }
}

Status SqliteError(sqlite3* db, int rc, const std::string& what, const SqliteProgress& progress,
                   const std::atomic<bool>& cancelled) {
  if (rc == SQLITE_INTERRUPT) {
    if (cancelled.load()) return Cancelled("data_retrieval: cancelled");
    if (progress.timed_out) return DeadlineExceeded(what + ": the query ran past its timeout");
  }
  std::string message = fmt::format("{}: {}", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Unavailable(message);
  if (primary == SQLITE_CANTOPEN) return NotFound(message);
  return InvalidArgument(message);
}

class SqliteSource {
 public:
  static Result<std::unique_ptr<SqliteSource>> Open(const std::string& path,
                                                    const std::atomic<bool>& cancelled) {
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    std::unique_ptr<sqlite3, SqliteCloser> db(raw);
    auto source = std::unique_ptr<SqliteSource>(new SqliteSource(std::move(db), cancelled));
    if (rc != SQLITE_OK) {
      return SqliteError(source->db_.get(), rc, "sqlite " + path, source->progress_, cancelled);
    }
    sqlite3_limit(source->db_.get(), SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_set_authorizer(source->db_.get(), AuthorizeRead, nullptr);
    sqlite3_progress_handler(source->db_.get(), 1000, InterruptWhenDone, &source->progress_);
    sqlite3_busy_timeout(source->db_.get(), 5000);
    return source;
  }

  Result<Frame> Query(const SqlStatement& q, const ReadBounds& bounds) {
    progress_.deadline = bounds.deadline;
    progress_.timed_out = false;
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    int rc =
        sqlite3_prepare_v2(db_.get(), q.text.c_str(), static_cast<int>(q.text.size()), &raw, &tail);
    std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt(raw);
    if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, "sqlite", progress_, cancelled_);
    if (stmt == nullptr || !sqlite3_stmt_readonly(stmt.get())) {
      return InvalidArgument("sqlite: only a reading query (SELECT) may be run");
    }
    for (size_t i = 0; i < q.binds.size(); ++i) {
      const json& v = q.binds[i];
      int n = static_cast<int>(i + 1);
      if (v.is_null()) {
        rc = sqlite3_bind_null(stmt.get(), n);
      } else if (v.is_boolean()) {
        rc = sqlite3_bind_int(stmt.get(), n, v.get<bool>() ? 1 : 0);
      } else if (v.is_number_integer()) {
        rc = sqlite3_bind_int64(stmt.get(), n, v.get<int64_t>());
      } else if (v.is_number()) {
        rc = sqlite3_bind_double(stmt.get(), n, v.get<double>());
      } else {
        std::string text = v.is_string() ? v.get<std::string>() : v.dump();
        rc = sqlite3_bind_text(stmt.get(), n, text.data(), static_cast<int>(text.size()),
                               SQLITE_TRANSIENT);
      }
      if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, "sqlite bind", progress_, cancelled_);
    }
    Frame frame;
    int ncols = sqlite3_column_count(stmt.get());
    for (int c = 0; c < ncols; ++c) frame.columns.emplace_back(sqlite3_column_name(stmt.get(), c));
    size_t bytes = 0;
    while (frame.rows.size() < bounds.max_rows && bytes <= bounds.max_bytes) {
      rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "sqlite", progress_, cancelled_);
      std::vector<json> row;
      row.reserve(static_cast<size_t>(ncols));
      for (int c = 0; c < ncols; ++c) row.push_back(SqliteCell(stmt.get(), c));
      bytes += retrieval::RowBytes(row);
      frame.rows.push_back(std::move(row));
    }
    return frame;
  }

 private:
  SqliteSource(std::unique_ptr<sqlite3, SqliteCloser> db, const std::atomic<bool>& cancelled)
      : db_(std::move(db)), cancelled_(cancelled) {
    progress_.cancelled = &cancelled_;
  }
  std::unique_ptr<sqlite3, SqliteCloser> db_;
  const std::atomic<bool>& cancelled_;
  SqliteProgress progress_;
};

// ---- PostgreSQL

struct PgFinisher {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgClearer {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgClearer>;

// Type OIDs (pg_type.h) read as JSON numbers, booleans or documents.
constexpr Oid kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kOidOid = 26,
              kJsonOid = 114, kFloat4Oid = 700, kFloat8Oid = 701, kNumericOid = 1700,
              kJsonbOid = 3802;

json PgCell(const PGresult* r, int row, int c) {
  if (PQgetisnull(r, row, c)) return nullptr;
  std::string text(PQgetvalue(r, row, c), static_cast<size_t>(PQgetlength(r, row, c)));
  switch (PQftype(r, c)) {
    case kBoolOid:
      return text == "t";
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid:
      try {
        return static_cast<int64_t>(std::stoll(text));
      } catch (...) {
        return text;
      }
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid:
      try {
        return std::stod(text);
      } catch (...) {
        return text;  // NaN, Infinity
      }
    case kJsonOid:
    case kJsonbOid: {
      json doc = json::parse(text, nullptr, false);
      return doc.is_discarded() ? json(text) : doc;
    }
    default:
      return text;
  }
}

std::string PgMessage(const PGresult* r, PGconn* conn) {
  std::string m = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// SQLSTATE classes: connection trouble and shutdown are worth retrying; a statement
// timeout is a deadline; anything else (syntax, missing table, types) is the query's fault.
Status PgStatus(const PGresult* r, PGconn* conn, const std::string& what) {
  std::string message = what + ": " + PgMessage(r, conn);
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string s = state ? state : "";
  if (s.empty() || s.rfind("08", 0) == 0 || s.rfind("53", 0) == 0 || s.rfind("57P", 0) == 0 ||
      s.rfind("40", 0) == 0) {
    return Unavailable(message);
  }
  if (s == "57014") return DeadlineExceeded(message);
  return InvalidArgument(message);
}

class PostgresSource {
 public:
  static Result<std::unique_ptr<PostgresSource>> Connect(const std::string& conninfo,
                                                         double timeout_s,
                                                         const std::atomic<bool>& cancelled) {
    bool has_timeout = conninfo.find("connect_timeout") != std::string::npos;
    std::string timeout = std::to_string(std::max(1, static_cast<int>(std::min(timeout_s, 30.0))));
    // passfile: libpq would otherwise read the worker's ~/.pgpass (or $PGPASSFILE) and hand
    // the worker's own passwords to whatever host a task names. A path that does not exist
    // is skipped silently.
    const char* keys[] = {"dbname", "passfile", has_timeout ? nullptr : "connect_timeout",
                          nullptr};
    const char* values[] = {conninfo.c_str(), "/nonexistent/flowmesh-no-passfile",
                            has_timeout ? nullptr : timeout.c_str(), nullptr};
    std::unique_ptr<PGconn, PgFinisher> conn(PQconnectdbParams(keys, values, 1));
    if (conn == nullptr) return Unavailable("postgresql: out of memory");
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      return Unavailable("postgresql: cannot connect: " + PgMessage(nullptr, conn.get()));
    }
    return std::unique_ptr<PostgresSource>(new PostgresSource(std::move(conn), cancelled));
  }

  Result<Frame> Query(const SqlStatement& q, const ReadBounds& bounds) {
    FM_RETURN_IF_ERROR(Command("BEGIN TRANSACTION READ ONLY"));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(bounds.deadline - Clock::now());
    Result<Frame> frame =
        Command(fmt::format("SET LOCAL statement_timeout = {}", std::max<int64_t>(1, ms.count())))
                .ok()
            ? Run(q, bounds)
            : Result<Frame>(Unavailable("postgresql: cannot set the timeout"));
    // The transaction only ever read; end it whatever happened (a failed one included).
    PgResult end(PQexec(conn_.get(), "ROLLBACK"));
    return frame;
  }

 private:
  PostgresSource(std::unique_ptr<PGconn, PgFinisher> conn, const std::atomic<bool>& cancelled)
      : conn_(std::move(conn)), cancelled_(cancelled) {}

  Status Command(const std::string& sql) {
    PgResult r(PQexec(conn_.get(), sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
      return PgStatus(r.get(), conn_.get(), "postgresql");
    return Status::Ok();
  }

  void Cancel() {
    std::unique_ptr<PGcancel, decltype(&PQfreeCancel)> c(PQgetCancel(conn_.get()), PQfreeCancel);
    char err[256];
    if (c) PQcancel(c.get(), err, sizeof err);
  }

  // Single-row mode: rows are read one at a time, so the row and byte bounds hold however
  // large the result would be; once they are reached the rest is cancelled.
  Result<Frame> Run(const SqlStatement& q, const ReadBounds& bounds) {
    std::vector<std::string> texts;
    std::vector<const char*> values;
    texts.reserve(q.binds.size());
    for (const json& v : q.binds) {
      texts.push_back(v.is_string() ? v.get<std::string>() : v.dump());
    }
    for (size_t i = 0; i < q.binds.size(); ++i) {
      values.push_back(q.binds[i].is_null() ? nullptr : texts[i].c_str());
    }
    if (!PQsendQueryParams(conn_.get(), q.text.c_str(), static_cast<int>(values.size()), nullptr,
                           values.data(), nullptr, nullptr, 0)) {
      return Unavailable("postgresql: " + PgMessage(nullptr, conn_.get()));
    }
    PQsetSingleRowMode(conn_.get());
    Frame frame;
    bool have_columns = false, stopped = false, cancelled = false;
    size_t bytes = 0;
    std::optional<Status> error;
    while (true) {
      while (PQisBusy(conn_.get())) {
        if (!cancelled && !stopped && cancelled_.load()) {
          cancelled = true;
          Cancel();
        }
        pollfd p{PQsocket(conn_.get()), POLLIN, 0};
        ::poll(&p, 1, 100);
        if (!PQconsumeInput(conn_.get())) {
          return Unavailable("postgresql: " + PgMessage(nullptr, conn_.get()));
        }
      }
      PgResult r(PQgetResult(conn_.get()));
      if (!r) break;
      ExecStatusType st = PQresultStatus(r.get());
      if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
        if (!have_columns) {
          for (int c = 0; c < PQnfields(r.get()); ++c)
            frame.columns.emplace_back(PQfname(r.get(), c));
          have_columns = true;
        }
        if (st == PGRES_SINGLE_TUPLE && !stopped) {
          std::vector<json> row;
          for (int c = 0; c < PQnfields(r.get()); ++c) row.push_back(PgCell(r.get(), 0, c));
          bytes += retrieval::RowBytes(row);
          frame.rows.push_back(std::move(row));
          if (frame.rows.size() >= bounds.max_rows || bytes > bounds.max_bytes) {
            stopped = true;
            Cancel();
          }
        }
      } else if (!stopped && !error) {
        error = PgStatus(r.get(), conn_.get(), "postgresql");
      }
    }
    if (cancelled) return Cancelled("data_retrieval: cancelled");
    if (error) return *error;
    return frame;
  }

  std::unique_ptr<PGconn, PgFinisher> conn_;
  const std::atomic<bool>& cancelled_;
};

// ---- One run

class Retrieval {
 public:
  Retrieval(const DataRetrievalConfig& config, RetrievalOptions options, TaskContext& ctx)
      : config_(config), o_(std::move(options)), ctx_(ctx), budget_(o_.max_bytes) {}

  Result<json> Run() {
    switch (o_.kind) {
      case SourceKind::kSqlite:
        FM_RETURN_IF_ERROR(RunSqlite());
        break;
      case SourceKind::kPostgres:
        FM_RETURN_IF_ERROR(RunPostgres());
        break;
      case SourceKind::kHttp:
        FM_RETURN_IF_ERROR(RunHttp());
        break;
      case SourceKind::kFile:
        FM_RETURN_IF_ERROR(RunFile());
        break;
    }
    return json{{"type", o_.type},
                {"source", retrieval::SourceKindName(o_.kind)},
                {"items", items_},
                {"count", items_.size()},
                {"truncated", truncated_}};
  }

 private:
  void Log(const std::string& line) {
    if (ctx_.log) ctx_.log("data_retrieval: " + line);
  }

  ReadBounds Bounds() const {
    return {o_.limit + 1, budget_,
            Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o_.timeout_s * 1000))};
  }

  // Bounds the frame, checks it is not empty when it must not be, and adds the item.
  Status AddItem(const std::string& query, const json& params, Frame frame) {
    std::vector<std::string> dropped = retrieval::DropDuplicateColumns(frame);
    if (!dropped.empty()) {
      Log(fmt::format("query {} returned duplicate columns ({}); keeping the first of each",
                      items_.size(), fmt::join(dropped, ", ")));
    }
    bool cut = retrieval::Bound(frame, o_.limit, &budget_);
    if (o_.require_non_empty_rows && frame.rows.empty()) {
      return FailedPrecondition(fmt::format(
          "data_retrieval: query {} returned no rows (require_non_empty_rows is true) — query: "
          "{}, params: {}",
          items_.size(), query, params.dump()));
    }
    if (cut) {
      truncated_ = true;
      Log(fmt::format("query {}: kept {} rows (limit {}, max_bytes {})", items_.size(),
                      frame.rows.size(), o_.limit, o_.max_bytes));
    }
    Log(fmt::format("query {}: {} rows, {} columns", items_.size(), frame.rows.size(),
                    frame.columns.size()));
    items_.push_back(retrieval::ResultItem(items_.size(), query, params, frame, cut));
    return Status::Ok();
  }

  template <typename Source>
  Status RunQueries(Source& source, Dialect dialect) {
    for (const json& row : o_.param_rows) {
      if (ctx_.cancelled.load()) return Cancelled("data_retrieval: cancelled");
      SqlStatement inner;
      if (o_.table.empty()) {
        FM_ASSIGN_OR_RETURN(inner, retrieval::RenderTemplate(o_.sql_template, row, dialect));
      }
      FM_ASSIGN_OR_RETURN(SqlStatement q, retrieval::BuildQuery(o_, inner, dialect));
      FM_ASSIGN_OR_RETURN(Frame frame, source.Query(q, Bounds()));
      FM_RETURN_IF_ERROR(AddItem(q.text, row, std::move(frame)));
    }
    return Status::Ok();
  }

  Status RunSqlite() {
    // ":memory:" is an empty private database (queries over VALUES / CTEs): no file.
    std::string path = o_.path;
    if (path != ":memory:") {
      FM_ASSIGN_OR_RETURN(path, AllowedPath(o_.path, config_.data_dirs));
    }
    FM_ASSIGN_OR_RETURN(auto source, SqliteSource::Open(path, ctx_.cancelled));
    Log("sqlite " + path);
    return RunQueries(*source, Dialect::kSqlite);
  }

  Status RunPostgres() {
    FM_ASSIGN_OR_RETURN(std::string conninfo, Resolve(o_.connection_string));
    FM_RETURN_IF_ERROR(CheckPostgresConnection(conninfo));
    FM_ASSIGN_OR_RETURN(auto source,
                        PostgresSource::Connect(conninfo, o_.timeout_s, ctx_.cancelled));
    Log("postgresql connected");
    return RunQueries(*source, Dialect::kPostgres);
  }

  // Filters, columns and bounds of a file or HTTP body.
  Status AddParsed(const std::string& where, std::string_view text,
                   std::optional<retrieval::Format> format) {
    if (!format) {
      return InvalidArgument(fmt::format(
          "data_retrieval: cannot tell the format of {} (set spec.data.format: csv, jsonl or json)",
          where));
    }
    Result<Frame> parsed = retrieval::ParseText(text, *format, o_.records_path);
    if (!parsed.ok()) return InvalidArgument(where + ": " + parsed.status().message());
    FM_ASSIGN_OR_RETURN(Frame frame, retrieval::ApplyFilters(std::move(*parsed), o_.filters));
    FM_ASSIGN_OR_RETURN(frame, retrieval::SelectColumns(std::move(frame), o_.columns));
    return AddItem(where, json::object(), std::move(frame));
  }

  Status RunFile() {
    FM_ASSIGN_OR_RETURN(std::string path, AllowedPath(o_.path, config_.data_dirs));
    std::ifstream in(path, std::ios::binary);
    if (!in) return NotFound("data_retrieval: cannot open " + path);
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (!ec && size > config_.limits.max_input_bytes) {
      return InvalidArgument(
          fmt::format("data_retrieval: {} has {} bytes, above this worker's "
                      "maximum of {}",
                      o_.path, size, config_.limits.max_input_bytes));
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Log(fmt::format("file {} ({} bytes)", path, text.size()));
    return AddParsed(o_.path, text, o_.format ? o_.format : retrieval::FormatFromName(path));
  }

  Status RunHttp() {
    HttpExchange x;
    x.method = "GET";
    FM_ASSIGN_OR_RETURN(x.url, Resolve(o_.url));
    for (const auto& [name, value] : o_.headers) {
      FM_ASSIGN_OR_RETURN(x.headers[name], Resolve(value));
    }
    x.timeout_s = o_.timeout_s;
    x.max_body_bytes = config_.limits.max_input_bytes;
    FM_ASSIGN_OR_RETURN(HttpReply reply, PerformHttp(x, ctx_.cancelled));
    if (reply.status >= 400) {
      std::string m = fmt::format("data_retrieval: GET {} answered HTTP {}", o_.url, reply.status);
      return api::IsRetryableStatus(reply.status) ? Unavailable(m) : FailedPrecondition(m);
    }
    if (reply.truncated) {
      return InvalidArgument(
          fmt::format("data_retrieval: {} is larger than this worker's "
                      "maximum of {} bytes",
                      o_.url, config_.limits.max_input_bytes));
    }
    Log(fmt::format("GET {}: HTTP {}, {} bytes", o_.url, reply.status, reply.body.size()));
    std::optional<retrieval::Format> format = o_.format;
    if (!format) format = retrieval::FormatFromName(o_.url);
    if (!format) {
      auto ct = reply.headers.find("content-type");
      if (ct != reply.headers.end()) format = retrieval::FormatFromContentType(ct->second);
    }
    return AddParsed(o_.url, reply.body, format);
  }

  // Credential placeholders resolved from the grant (fetched once, when first needed).
  Result<std::string> Resolve(const std::string& text) {
    if (api::CredentialNames(json(text)).empty()) return text;
    if (!grant_) {
      FM_ASSIGN_OR_RETURN(CredentialGrant grant,
                          api::FetchGrant(ctx_, ctx_.spec["data"], false, "spec.data"));
      grant_ = std::move(grant);
    }
    return api::ResolveCredentials(text, grant_->values);
  }

  const DataRetrievalConfig& config_;
  RetrievalOptions o_;
  TaskContext& ctx_;
  size_t budget_;
  json items_ = json::array();
  bool truncated_ = false;
  std::optional<CredentialGrant> grant_;
};

}  // namespace

Result<std::string> AllowedPath(const std::string& path, const std::vector<std::string>& dirs) {
  namespace fs = std::filesystem;
  if (dirs.empty()) {
    return FailedPrecondition(
        "data_retrieval: this worker reads no local files (its operator lists the directories "
        "tasks may read with --data-dirs / FLOWMESH_WORKER_DATA_DIRS)");
  }
  fs::path p(path);
  if (p.is_relative()) p = fs::path(dirs[0]) / p;
  p = p.lexically_normal();
  std::error_code ec;
  std::vector<fs::path> roots;
  for (const std::string& d : dirs) {
    fs::path root = fs::weakly_canonical(d, ec);
    if (!ec) roots.push_back(root);
  }
  auto inside = [&](const fs::path& candidate) {
    return std::any_of(roots.begin(), roots.end(),
                       [&](const fs::path& root) { return Within(candidate, root); });
  };
  std::string refused =
      fmt::format("data_retrieval: {} is outside the directories this worker lets tasks read ({})",
                  path, fmt::join(dirs, ", "));
  fs::path canonical = fs::canonical(p, ec);
  if (ec) {
    if (!inside(fs::weakly_canonical(p, ec))) return FailedPrecondition(refused);
    return NotFound(fmt::format("data_retrieval: no such file {}", path));
  }
  if (!inside(canonical)) return FailedPrecondition(refused);
  if (!fs::is_regular_file(canonical, ec)) {
    return FailedPrecondition(fmt::format("data_retrieval: {} is not a regular file", path));
  }
  return canonical.string();
}

Status CheckPostgresConnection(const std::string& connection_string) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(connection_string.c_str(), &err);
  if (options == nullptr) {
    std::string message = err ? err : "malformed";
    if (err) PQfreemem(err);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return InvalidArgument("spec.data.connection_string: " + message);
  }
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> guard(options, PQconninfoFree);
  static const std::set<std::string> kWorkerFiles = {
      "passfile", "service",   "sslcert",     "sslkey",     "sslrootcert",
      "sslcrl",   "sslcrldir", "sslpassword", "krbsrvname", "requirepeer"};
  std::string host, hostaddr;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    std::string key = o->keyword;
    if (kWorkerFiles.count(key)) {
      return FailedPrecondition(fmt::format(
          "spec.data.connection_string: '{}' is not allowed on a shared worker (it reads the "
          "worker's files or identity)",
          key));
    }
    if (key == "host") host = o->val;
    if (key == "hostaddr") hostaddr = o->val;
  }
  if (host.empty() && hostaddr.empty()) {
    return FailedPrecondition(
        "spec.data.connection_string must name a host: the worker's local PostgreSQL socket "
        "is not reachable from tasks");
  }
  size_t start = 0;
  while (start <= host.size() && !host.empty()) {
    size_t comma = host.find(',', start);
    std::string one = host.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!one.empty() && (one[0] == '/' || one[0] == '@')) {
      return FailedPrecondition(
          "spec.data.connection_string: a Unix-domain socket host is not allowed (use TCP)");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return Status::Ok();
}

Result<json> DataRetrievalExecutor::Run(TaskContext& ctx) {
  const json data = ctx.spec.is_object() ? ctx.spec.value("data", json()) : json();
  FM_ASSIGN_OR_RETURN(RetrievalOptions options,
                      retrieval::ParseRetrievalOptions(data, config_.limits));
  return Retrieval(config_, std::move(options), ctx).Run();
}

void RegisterDataRetrievalExecutor(ExecutorRegistry& registry, DataRetrievalConfig config) {
  registry.Register("data_retrieval",
                    [config] { return std::make_unique<DataRetrievalExecutor>(config); });
}

}  // namespace flowmesh::executors
