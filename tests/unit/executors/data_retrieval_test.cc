// The data_retrieval executor against real sources: SQLite files made by the test, a real
// PostgreSQL server (Debian's binaries, initdb + postgres in a temp dir on a free port,
// stopped by pid), a local HTTP server (python3 -m http.server on port 0) and local files
// under the worker's allowed directories.
#include "executors/data_retrieval.h"

#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/process.h"
#include "support/temp_dir.h"

namespace flowmesh::executors {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

Result<json> RunSpec(const json& data, const DataRetrievalConfig& config,
                     std::vector<std::string>* log = nullptr) {
  std::atomic<bool> cancelled{false};
  TaskContext ctx{"t",
                  "w",
                  1,
                  "data_retrieval",
                  json{{"taskType", "data_retrieval"}, {"data", data}},
                  [log](std::string line) {
                    if (log) log->push_back(std::move(line));
                  },
                  [](json) {},
                  cancelled};
  DataRetrievalExecutor executor(config);
  return executor.Run(ctx);
}

// ---- SQLite and local files

class SqliteRetrievalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_ / "market.db";
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    const char* sql =
        "CREATE TABLE quotes(id INTEGER, symbol TEXT, price REAL, note TEXT);"
        "INSERT INTO quotes VALUES (1,'NVDA',120.5,'chips'),(2,'AAPL',190.0,NULL),"
        "(3,'NVDA',125.0,'more chips'),(4,'MSFT',410.25,'cloud');"
        "CREATE TABLE secrets(v TEXT); INSERT INTO secrets VALUES ('hidden');";
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    config_.data_dirs = {dir_.path()};
  }
  testing::TempDir dir_;
  std::string db_;
  DataRetrievalConfig config_;
};

TEST_F(SqliteRetrievalTest, TemplateWithParamsGivesOneItemPerRow) {
  auto r =
      RunSpec({{"type", "sql"},
               {"connection_string", "sqlite:///" + db_},
               {"template", "SELECT id, price FROM quotes WHERE symbol = '{symbol}' ORDER BY id"},
               {"params", {{{"label", "symbol"}, {"value", {"NVDA", "MSFT"}}}}}},
              config_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["count"], 2);
  EXPECT_EQ((*r)["type"], "sql");
  const json& first = (*r)["items"][0];
  EXPECT_EQ(first["index"], 0);
  EXPECT_EQ(first["params"], json({{"symbol", "NVDA"}}));
  EXPECT_EQ(first["rows"], 2);
  EXPECT_EQ(first["table"], json({{"id", {1, 3}}, {"price", {120.5, 125.0}}}));
  EXPECT_EQ(first["columns"], json({"id", "price"}));
  EXPECT_THAT(first["query"].get<std::string>(), HasSubstr("symbol = ?1"));
  EXPECT_EQ((*r)["items"][1]["table"]["id"], json({4}));
}

TEST_F(SqliteRetrievalTest, InjectionAttemptMatchesNothing) {
  auto r = RunSpec({{"type", "sqlite"},
                    {"path", "market.db"},  // relative to the first allowed directory
                    {"template", "SELECT * FROM quotes WHERE symbol = '{s}'"},
                    {"params", {{{"label", "s"}, {"value", "x' OR '1'='1"}}}},
                    {"require_non_empty_rows", false}},
                   config_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["items"][0]["rows"], 0);
  // The published default: no rows is an error naming the query and its params.
  auto strict = RunSpec({{"type", "sqlite"},
                         {"path", "market.db"},
                         {"template", "SELECT * FROM quotes WHERE symbol = '{s}'"},
                         {"params", {{{"label", "s"}, {"value", "ZZZ"}}}}},
                        config_);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(strict.status().message(), HasSubstr("returned no rows"));
  EXPECT_THAT(strict.status().message(), HasSubstr("\"s\":\"ZZZ\""));
}

TEST_F(SqliteRetrievalTest, TableColumnsFiltersAndLimit) {
  auto r = RunSpec({{"type", "sqlite"},
                    {"path", db_},
                    {"table", "quotes"},
                    {"columns", {"symbol", "price"}},
                    {"filters",
                     {{{"column", "price"}, {"op", ">"}, {"value", 121}},
                      {{"column", "note"}, {"op", "not_null"}}}},
                    {"limit", 1}},
                   config_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const json& item = (*r)["items"][0];
  EXPECT_EQ(item["rows"], 1);
  EXPECT_EQ(item["truncated"], true);
  EXPECT_EQ((*r)["truncated"], true);
  EXPECT_EQ(item["table"], json({{"symbol", {"NVDA"}}, {"price", {125.0}}}));
}

TEST_F(SqliteRetrievalTest, ByteBudgetCutsRows) {
  auto r = RunSpec({{"type", "sqlite"},
                    {"path", db_},
                    {"table", "quotes"},
                    {"columns", {"id"}},
                    {"max_bytes", 5}},
                   config_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["items"][0]["rows"], 2);  // "1" and "2" take 2 bytes each
  EXPECT_EQ((*r)["truncated"], true);
}

TEST_F(SqliteRetrievalTest, OnlyReadingAndNoAttach) {
  auto attach =
      RunSpec({{"type", "sqlite"}, {"path", db_}, {"query", "SELECT * FROM pragma_database_list"}},
              config_);
  EXPECT_FALSE(attach.ok());
  auto write = RunSpec(
      {{"type", "sqlite"}, {"path", db_}, {"query", "DELETE FROM quotes RETURNING id"}}, config_);
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.status().code(), StatusCode::kInvalidArgument);
  auto two = RunSpec(
      {{"type", "sqlite"}, {"path", db_}, {"query", "SELECT 1; ATTACH DATABASE '/tmp/x.db' AS x"}},
      config_);
  ASSERT_FALSE(two.ok());
  EXPECT_THAT(two.status().message(), HasSubstr("only one statement"));
  auto bad =
      RunSpec({{"type", "sqlite"}, {"path", db_}, {"query", "SELECT nope FROM quotes"}}, config_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("no such column: nope"));
}

TEST_F(SqliteRetrievalTest, PathsOutsideTheAllowedDirectoriesAreRefused) {
  testing::TempDir other;
  std::string outside = other / "out.db";
  std::filesystem::copy_file(db_, outside);
  auto abs = RunSpec({{"type", "sqlite"}, {"path", outside}, {"table", "quotes"}}, config_);
  ASSERT_FALSE(abs.ok());
  EXPECT_EQ(abs.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(abs.status().message(), HasSubstr("outside the directories"));
  auto dots =
      RunSpec({{"type", "sqlite"},
               {"path", "../" + std::filesystem::path(outside).parent_path().filename().string() +
                            "/out.db"},
               {"table", "quotes"}},
              config_);
  EXPECT_EQ(dots.status().code(), StatusCode::kFailedPrecondition);
  std::filesystem::create_symlink(outside, dir_ / "link.db");
  auto link = RunSpec({{"type", "sqlite"}, {"path", "link.db"}, {"table", "quotes"}}, config_);
  EXPECT_EQ(link.status().code(), StatusCode::kFailedPrecondition);
  auto none = RunSpec({{"type", "sqlite"}, {"path", db_}, {"table", "quotes"}}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("reads no local files"));
  auto missing = RunSpec({{"type", "file"}, {"path", "nope.csv"}}, config_);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteRetrievalTest, LocalFilesWithFiltersAndMalformedInput) {
  WriteFile(dir_ / "q.csv", "symbol,price\nNVDA,120.5\nAAPL,190\n");
  auto csv = RunSpec({{"type", "file"},
                      {"path", "q.csv"},
                      {"filters", {{{"column", "price"}, {"op", ">="}, {"value", 150}}}}},
                     config_);
  ASSERT_TRUE(csv.ok()) << csv.status().message();
  EXPECT_EQ((*csv)["items"][0]["table"], json({{"symbol", {"AAPL"}}, {"price", {190}}}));
  EXPECT_EQ((*csv)["items"][0]["query"], "q.csv");
  WriteFile(dir_ / "bad.jsonl", "{\"a\": 1}\n{\"a\": 2\n");
  auto bad = RunSpec({{"type", "file"}, {"path", "bad.jsonl"}}, config_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("bad.jsonl: jsonl line 2, column"));
  WriteFile(dir_ / "rows", "[{\"a\": 1}]");
  auto unknown = RunSpec({{"type", "file"}, {"path", "rows"}}, config_);
  EXPECT_THAT(unknown.status().message(), HasSubstr("set spec.data.format"));
  auto json_rows = RunSpec({{"type", "file"}, {"path", "rows"}, {"format", "json"}}, config_);
  ASSERT_TRUE(json_rows.ok());
  EXPECT_EQ((*json_rows)["items"][0]["table"], json({{"a", {1}}}));
  DataRetrievalConfig small = config_;
  small.limits.max_input_bytes = 10;
  auto big = RunSpec({{"type", "file"}, {"path", "q.csv"}}, small);
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr("above this worker's maximum of 10"));
}

TEST(DataRetrievalTest, InMemorySqliteNeedsNoDirectory) {
  auto r = RunSpec({{"type", "sqlite"},
                    {"path", ":memory:"},
                    {"template",
                     "WITH t(n, s) AS (VALUES (1, 'a'), (2, 'b'), (3, 'c')) "
                     "SELECT n, s FROM t WHERE n >= {min}"},
                    {"params", {{{"label", "min"}, {"value", 2}}}}},
                   {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["items"][0]["table"], json({{"n", {2, 3}}, {"s", {"b", "c"}}}));
}

TEST(DataRetrievalTest, UnsupportedSourceFailsWithoutRetry) {
  auto r =
      RunSpec({{"type", "s3"}, {"connection_string", "s3://u:p@h/b"}, {"template", "k/{id}"}}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_FALSE(IsRetryable(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("source type 's3' is not supported"));
}

TEST(DataRetrievalTest, RegisteredAsABuiltinExecutor) {
  EXPECT_TRUE(BuiltinExecutors().Has("data_retrieval"));
}

// ---- HTTP

class HttpServer {
 public:
  explicit HttpServer(const std::string& root) {
    SpawnOptions o;
    o.argv = {"/usr/bin/env", "python3",   "-u",          "-m", "http.server", "0",
              "--bind",       "127.0.0.1", "--directory", root};
    o.log_file = dir_ / "http.log";
    auto pid = Spawn(o);
    if (!pid.ok()) return;
    pid_ = *pid;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline && ProcessAlive(pid_)) {
      std::ifstream in(dir_ / "http.log");
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      size_t at = text.find(" port ");
      if (at != std::string::npos) {
        base_ = "http://127.0.0.1:" + std::to_string(std::atoi(text.c_str() + at + 6));
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~HttpServer() {
    if (pid_ > 0) TerminateProcess(pid_, std::chrono::milliseconds(2000));
  }
  const std::string& base() const { return base_; }

 private:
  testing::TempDir dir_;
  pid_t pid_ = -1;
  std::string base_;
};

TEST(HttpRetrievalTest, JsonlCsvAndErrors) {
  testing::TempDir root;
  WriteFile(root / "rows.jsonl", "{\"q\": \"a\", \"n\": 1}\n{\"q\": \"b\", \"n\": 2}\n");
  WriteFile(root / "rows.csv", "q,n\na,1\nb,\"x\"oops\n");
  HttpServer server(root.path());
  ASSERT_FALSE(server.base().empty()) << "python3 -m http.server did not start";
  auto r = RunSpec({{"type", "http"},
                    {"url", server.base() + "/rows.jsonl"},
                    {"filters", {{{"column", "n"}, {"op", "=="}, {"value", 2}}}}},
                   {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["items"][0]["table"], json({{"q", {"b"}}, {"n", {2}}}));
  auto malformed = RunSpec({{"type", "http"}, {"url", server.base() + "/rows.csv"}}, {});
  ASSERT_FALSE(malformed.ok());
  EXPECT_THAT(malformed.status().message(), HasSubstr("csv line 3, column 6"));
  auto missing = RunSpec({{"type", "http"}, {"url", server.base() + "/none.csv"}}, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr("HTTP 404"));
}

// ---- PostgreSQL

// A private PostgreSQL server: initdb in a temp dir, postgres on a free TCP port, stopped by
// its pid. As root the binaries run as the `postgres` user (initdb refuses root).
class PostgresServer {
 public:
  PostgresServer() {
    if (!std::filesystem::exists(std::string(kPgBin) + "/postgres")) {
      skip_ = std::string("PostgreSQL binaries not found under ") + kPgBin +
              " (Debian package postgresql; scripts/install-deps installs it)";
      return;
    }
    std::vector<std::string> as_user;
    if (::geteuid() == 0) {
      passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr) {
        skip_ = "running as root and there is no postgres user to run the server as";
        return;
      }
      if (::chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) return;
      as_user = {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"};
    }
    std::string data = dir_ / "data";
    auto with_user = [&](std::vector<std::string> argv) {
      argv.insert(argv.begin(), as_user.begin(), as_user.end());
      return argv;
    };
    SpawnOptions init;
    init.argv = with_user({std::string(kPgBin) + "/initdb", "-D", data, "-U", "fm", "--auth=trust",
                           "-E", "UTF8", "--no-sync"});
    init.log_file = dir_ / "initdb.log";
    auto init_pid = Spawn(init);
    int status = 0;
    if (!init_pid.ok() || ::waitpid(*init_pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      error_ = "initdb failed (see " + init.log_file + ")";
      return;
    }
    port_ = FreePort();
    SpawnOptions run;
    run.argv = with_user({std::string(kPgBin) + "/postgres", "-D", data, "-p",
                          std::to_string(port_), "-k", dir_.path(), "-h", "127.0.0.1", "-F"});
    run.log_file = dir_ / "postgres.log";
    auto pid = Spawn(run);
    if (!pid.ok()) return;
    pid_ = *pid;
    std::string admin = Conninfo("postgres");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline && ProcessAlive(pid_)) {
      if (PQping(admin.c_str()) == PQPING_OK) {
        ready_ = Exec("postgres", "CREATE DATABASE fmtest");
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    error_ = "postgres did not accept connections (see " + run.log_file + ")";
  }
  ~PostgresServer() {
    if (pid_ > 0) TerminateProcess(pid_, std::chrono::milliseconds(10000));
  }
  std::string Conninfo(const std::string& db) const {
    return "postgresql://fm@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }
  bool Exec(const std::string& db, const std::string& sql) const {
    PGconn* c = PQconnectdb(Conninfo(db).c_str());
    PGresult* r = PQexec(c, sql.c_str());
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) ADD_FAILURE() << PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    return ok;
  }
  const std::string& skip() const { return skip_; }
  const std::string& error() const { return error_; }
  bool ready() const { return ready_; }

 private:
  testing::TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool ready_ = false;
  std::string skip_, error_;
};

class PostgresRetrievalTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new PostgresServer();
    if (server_->ready()) {
      server_->Exec("fmtest",
                    "CREATE SCHEMA star;"
                    "CREATE TABLE star.\"fact_news-metadata\"(id int, symbol text, "
                    "\"publishedDate\" timestamp, title text, score numeric, flags jsonb, "
                    "live boolean);"
                    "INSERT INTO star.\"fact_news-metadata\" VALUES "
                    "(1,'NVDA','2024-07-01 10:00','chips up',1.5,'{\"k\":1}',true),"
                    "(2,'NVDA','2024-05-01 10:00','old',0.5,NULL,false),"
                    "(3,'AAPL','2024-08-01 10:00','phones',2.25,'[1,2]',true),"
                    "(4,'NVDA','2024-09-01 10:00','more chips',3,NULL,NULL);"
                    "CREATE SEQUENCE counter;");
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!server_->skip().empty()) GTEST_SKIP() << server_->skip();
    ASSERT_TRUE(server_->ready()) << server_->error();
  }
  static PostgresServer* server_;
};
PostgresServer* PostgresRetrievalTest::server_ = nullptr;

TEST_F(PostgresRetrievalTest, PublishedTemplateWithParams) {
  auto r = RunSpec({{"type", "sql"},
                    {"connection_string", server_->Conninfo("fmtest")},
                    {"template",
                     "SELECT id, symbol, \"publishedDate\", title FROM star.\"{table_name}\" WHERE "
                     "symbol='{symbol}' AND \"publishedDate\" >= '{publishedDateMin}' ORDER BY "
                     "\"publishedDate\" DESC LIMIT {limit}"},
                    {"params",
                     {{{"label", "symbol"}, {"value", "NVDA"}},
                      {{"label", "limit"}, {"value", {1, 5}}},
                      {{"label", "publishedDateMin"}, {"value", {"2024-06-01", "2024-01-01"}}},
                      {{"label", "table_name"}, {"value", "fact_news-metadata"}}}}},
                   {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ((*r)["count"], 2);
  EXPECT_EQ((*r)["items"][0]["table"]["id"], json({4}));
  EXPECT_EQ((*r)["items"][1]["table"]["id"], json({4, 1, 2}));
  EXPECT_EQ((*r)["items"][1]["table"]["publishedDate"][0], "2024-09-01 10:00:00");
  EXPECT_EQ((*r)["items"][1]["params"]["limit"], 5);
}

TEST_F(PostgresRetrievalTest, TypesFiltersColumnsAndTruncation) {
  auto r = RunSpec({{"type", "postgresql"},
                    {"connection_string", server_->Conninfo("fmtest")},
                    {"table", "star.fact_news-metadata"},
                    {"columns", {"id", "score", "flags", "live"}},
                    {"filters",
                     {{{"column", "score"}, {"op", ">="}, {"value", 1}},
                      {{"column", "title"}, {"op", "contains"}, {"value", "p"}}}},
                    {"limit", 1}},
                   {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  const json& item = (*r)["items"][0];
  EXPECT_EQ(item["rows"], 1);
  EXPECT_EQ(item["truncated"], true);
  EXPECT_EQ(item["table"],
            json({{"id", {1}}, {"score", {1.5}}, {"flags", {{{"k", 1}}}}, {"live", {true}}}));
}

TEST_F(PostgresRetrievalTest, InjectionAttemptAndReadOnly) {
  auto r = RunSpec({{"type", "sql"},
                    {"connection_string", server_->Conninfo("fmtest")},
                    {"template", "SELECT id FROM star.\"fact_news-metadata\" WHERE symbol = '{s}'"},
                    {"params", {{{"label", "s"}, {"value", "NVDA' OR '1'='1"}}}},
                    {"require_non_empty_rows", false}},
                   {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["items"][0]["rows"], 0);
  auto write = RunSpec({{"type", "sql"},
                        {"connection_string", server_->Conninfo("fmtest")},
                        {"query", "SELECT nextval('counter')"}},
                       {});
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(write.status().message(), HasSubstr("read-only transaction"));
  auto syntax = RunSpec({{"type", "sql"},
                         {"connection_string", server_->Conninfo("fmtest")},
                         {"query", "SELECT FROM WHERE"}},
                        {});
  EXPECT_EQ(syntax.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PostgresRetrievalTest, ConnectionRules) {
  auto closed = RunSpec(
      {{"type", "sql"},
       {"connection_string", "postgresql://fm@127.0.0.1:" + std::to_string(FreePort()) + "/fmtest"},
       {"table", "t"}},
      {});
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.status().code(), StatusCode::kUnavailable);  // retried by the scheduler
  auto passfile =
      RunSpec({{"type", "sql"},
               {"connection_string", server_->Conninfo("fmtest") + "?passfile=/root/.pgpass"},
               {"table", "t"}},
              {});
  EXPECT_EQ(passfile.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(passfile.status().message(), HasSubstr("'passfile' is not allowed"));
  auto socket = RunSpec(
      {{"type", "sql"}, {"connection_string", "host=/var/run/postgresql dbname=x"}, {"table", "t"}},
      {});
  EXPECT_THAT(socket.status().message(), HasSubstr("Unix-domain socket"));
  auto local =
      RunSpec({{"type", "sql"}, {"connection_string", "postgresql:///x"}, {"table", "t"}}, {});
  EXPECT_THAT(local.status().message(), HasSubstr("must name a host"));
}

}  // namespace
}  // namespace flowmesh::executors
