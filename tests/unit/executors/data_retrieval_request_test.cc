// The data_retrieval executor's pure rules: reading spec.data, naming unsupported sources,
// params rows, and SQL with every user value bound (never spliced into the text).
#include "executors/data_retrieval_request.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace flowmesh::executors::retrieval {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

Result<RetrievalOptions> Parse(const json& data) { return ParseRetrievalOptions(data, {}); }

TEST(RetrievalOptionsTest, PublishedSqlSourceIsPostgres) {
  auto o = Parse({{"type", "sql"},
                  {"connection_string", "postgresql://u:p@db:5432/news"},
                  {"template", "SELECT * FROM t WHERE s = '{symbol}'"},
                  {"params", {{{"label", "symbol"}, {"value", {"A", "B"}}}}}});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->kind, SourceKind::kPostgres);
  ASSERT_EQ(o->param_rows.size(), 2u);
  EXPECT_EQ(o->param_rows[1], json({{"symbol", "B"}}));
  EXPECT_TRUE(o->require_non_empty_rows);  // the published default
  EXPECT_EQ(o->limit, RetrievalLimits{}.max_rows);
}

TEST(RetrievalOptionsTest, SqliteConnectionStringsAndPaths) {
  auto o = Parse({{"type", "sql"}, {"connection_string", "sqlite:///data/x.db"}, {"table", "t"}});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->kind, SourceKind::kSqlite);
  EXPECT_EQ(o->path, "/data/x.db");
  auto rel = Parse({{"type", "sqlite"}, {"path", "x.db"}, {"query", "SELECT 1"}});
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(rel->sql_template, "SELECT 1");
}

TEST(RetrievalOptionsTest, UnsupportedSourcesAreNamedAndNotRetryable) {
  for (const json& data :
       {json{{"type", "s3"}, {"connection_string", "s3://b"}, {"template", "k"}},
        json{{"type", "lumid"}, {"mode", "sql"}}, json{{"type", "bigquery"}},
        json{{"type", "sql"}, {"connection_string", "mysql://u@h/db"}, {"table", "t"}}}) {
    auto o = Parse(data);
    ASSERT_FALSE(o.ok()) << data.dump();
    EXPECT_EQ(o.status().code(), StatusCode::kUnimplemented) << data.dump();
    EXPECT_THAT(o.status().message(), HasSubstr("is not supported by this worker"));
    EXPECT_THAT(o.status().message(), HasSubstr("supported sources: sql"));
  }
  EXPECT_THAT(Parse({{"type", "s3"}}).status().message(), HasSubstr("source type 's3'"));
  EXPECT_THAT(Parse({{"type", "sql"}, {"connection_string", "mysql://h/d"}, {"table", "t"}})
                  .status()
                  .message(),
              HasSubstr("a 'mysql' connection_string"));
  auto unknown = Parse({{"type", "ftp"}});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown source type 'ftp'"));
}

TEST(RetrievalOptionsTest, LimitsAndShapeErrors) {
  RetrievalLimits limits;
  limits.max_rows = 50;
  auto over = ParseRetrievalOptions({{"type", "file"}, {"path", "a.csv"}, {"limit", 51}}, limits);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().message(), "spec.data.limit is 51, above this worker's maximum of 50");
  EXPECT_FALSE(Parse({{"type", "sql"}, {"connection_string", "postgresql://h/d"}}).ok());
  EXPECT_FALSE(Parse({{"type", "file"}, {"path", "a.csv"}, {"table", "t"}}).ok());
  EXPECT_FALSE(Parse({{"type", "http"}, {"url", "ftp://x"}}).ok());
  EXPECT_FALSE(Parse({{"type", "file"}, {"path", "a"}, {"format", "parquet"}}).ok());
  auto filter = Parse({{"type", "file"},
                       {"path", "a"},
                       {"filters", {{{"column", "x"}, {"op", "~"}, {"value", 1}}}}});
  ASSERT_FALSE(filter.ok());
  EXPECT_THAT(filter.status().message(),
              HasSubstr("spec.data.filters[0].op: unknown operator '~'"));
}

TEST(ParamRowsTest, ListsBroadcastScalars) {
  auto rows =
      ParamRows(json::array({{{"label", "s"}, {"value", {"A", "B"}}},
                             {{"label", "n"}, {"data", {{"type", "list"}, {"items", {1, 2}}}}},
                             {{"label", "k"}, {"value", "fixed"}}}));
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[1], json({{"s", "B"}, {"n", 2}, {"k", "fixed"}}));
  auto mismatch = ParamRows(
      json::array({{{"label", "s"}, {"value", {"A", "B"}}}, {{"label", "n"}, {"value", {1}}}}));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_THAT(mismatch.status().message(),
              HasSubstr("'n' has 1 values where an earlier list param has 2"));
}

TEST(RenderTemplateTest, PublishedTemplateBecomesBindParameters) {
  json row = {
      {"table_name", "fact_news"}, {"symbol", "NVDA"}, {"since", "2024-06-01"}, {"limit", 5}};
  auto q = RenderTemplate(
      "SELECT id, \"publishedDate\" FROM star.\"{table_name}\" WHERE symbol='{symbol}' AND "
      "\"publishedDate\" >= '{since}' ORDER BY \"publishedDate\" DESC LIMIT {limit};",
      row, Dialect::kPostgres);
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->text,
            "SELECT id, \"publishedDate\" FROM star.\"fact_news\" WHERE symbol=$1 AND "
            "\"publishedDate\" >= $2 ORDER BY \"publishedDate\" DESC LIMIT $3");
  EXPECT_EQ(q->binds, (std::vector<json>{"NVDA", "2024-06-01", 5}));
}

TEST(RenderTemplateTest, InjectionAttemptsStayValues) {
  json row = {{"s", "x' OR '1'='1"}, {"t", "a\" ; DROP TABLE t; --"}};
  auto q =
      RenderTemplate("SELECT * FROM \"{t}\" WHERE s = '{s}' AND n = {s}", row, Dialect::kSqlite);
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->text, "SELECT * FROM \"a\"\" ; DROP TABLE t; --\" WHERE s = ?1 AND n = ?2");
  EXPECT_EQ(q->binds, (std::vector<json>{"x' OR '1'='1", "x' OR '1'='1"}));
}

TEST(RenderTemplateTest, SlotsInsideLiteralsConcatenate) {
  json row = {{"q", "chip"}};
  auto pg = RenderTemplate("SELECT * FROM t WHERE title LIKE '%{q}%' AND x = 'it''s {{q}}'", row,
                           Dialect::kPostgres);
  ASSERT_TRUE(pg.ok()) << pg.status().message();
  EXPECT_EQ(pg->text,
            "SELECT * FROM t WHERE title LIKE ('%' || $1::text || '%') AND x = 'it''s {q}'");
  auto lite = RenderTemplate("SELECT '{q}-{q}'", row, Dialect::kSqlite);
  ASSERT_TRUE(lite.ok());
  EXPECT_EQ(lite->text, "SELECT (?1 || '-' || ?2)");
}

TEST(RenderTemplateTest, Errors) {
  json row = {{"a", 1}, {"list", {1, 2}}};
  auto unknown = RenderTemplate("SELECT {b}", row, Dialect::kSqlite);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            "spec.data.template, character 8: slot {b} has no param (params: a, list)");
  EXPECT_THAT(RenderTemplate("SELECT 1; SELECT 2", row, Dialect::kSqlite).status().message(),
              HasSubstr("only one statement"));
  EXPECT_THAT(RenderTemplate("SELECT {list}", row, Dialect::kSqlite).status().message(),
              HasSubstr("param 'list' is a array, not a scalar"));
  EXPECT_THAT(RenderTemplate("SELECT \"x_{a}\"", row, Dialect::kSqlite).status().message(),
              HasSubstr("whole quoted identifier"));
  EXPECT_THAT(RenderTemplate("SELECT \"{a}\"", row, Dialect::kSqlite).status().message(),
              HasSubstr("must be a non-empty string"));
  EXPECT_THAT(RenderTemplate("SELECT 1 -- {a}", row, Dialect::kSqlite).status().message(),
              HasSubstr("inside a comment"));
  EXPECT_THAT(RenderTemplate("SELECT '{a}", row, Dialect::kSqlite).status().message(),
              HasSubstr("unterminated string literal"));
  EXPECT_THAT(RenderTemplate("SELECT { a }", row, Dialect::kSqlite).status().message(),
              HasSubstr("write '{{'"));
}

TEST(BuildQueryTest, WrapsTemplateWithColumnsFiltersAndLimit) {
  RetrievalOptions o;
  o.columns = {"id", "na\"me"};
  o.filters = {{"px", FilterOp::kGe, json(2.5)},
               {"sym", FilterOp::kIn, json::array({"A", "B"})},
               {"note", FilterOp::kContains, json("x")},
               {"gone", FilterOp::kIsNull, {}}};
  o.limit = 10;
  SqlStatement inner{"SELECT * FROM t WHERE k = $1", {json("v")}};
  auto q = BuildQuery(o, inner, Dialect::kPostgres);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->text,
            "SELECT \"id\", \"na\"\"me\" FROM (SELECT * FROM t WHERE k = $1) AS fm_source WHERE "
            "\"px\" >= $2 AND \"sym\" IN ($3, $4) AND strpos(\"note\"::text, $5::text) > 0 AND "
            "\"gone\" IS NULL LIMIT 11");
  EXPECT_EQ(q->binds, (std::vector<json>{"v", 2.5, "A", "B", "x"}));
}

TEST(BuildQueryTest, TableSource) {
  RetrievalOptions o;
  o.table = "star.fact_news";
  o.limit = 3;
  o.filters = {{"sym", FilterOp::kNe, json("A")}};
  auto q = BuildQuery(o, {}, Dialect::kSqlite);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->text, "SELECT * FROM \"star\".\"fact_news\" WHERE \"sym\" <> ?1 LIMIT 4");
  o.table = "a..b";
  EXPECT_FALSE(BuildQuery(o, {}, Dialect::kSqlite).ok());
}

}  // namespace
}  // namespace flowmesh::executors::retrieval
