// CSV / JSONL / JSON parsing (malformed input reported with line and column), typed
// filters, column selection and the row/byte bounds of the data_retrieval executor.
#include "executors/data_frame.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace flowmesh::executors::retrieval {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CsvTest, QuotedFieldsTypesAndLineBreaks) {
  auto f = ParseCsv(
      "id,name,price,note\r\n1,\"Smith, J\",2.5,\r\n2,\"say \"\"hi\"\"\",-3,\"two\nlines\"\n");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_THAT(f->columns, ElementsAre("id", "name", "price", "note"));
  ASSERT_EQ(f->rows.size(), 2u);
  EXPECT_EQ(f->rows[0][0], json(1));
  EXPECT_EQ(f->rows[0][1], json("Smith, J"));
  EXPECT_EQ(f->rows[0][2], json(2.5));
  EXPECT_TRUE(f->rows[0][3].is_null());
  EXPECT_EQ(f->rows[1][1], json("say \"hi\""));
  EXPECT_EQ(f->rows[1][2], json(-3));
  EXPECT_EQ(f->rows[1][3], json("two\nlines"));
}

TEST(CsvTest, QuotedNumbersStayText) {
  auto f = ParseCsv("zip,code\n\"02139\",1e3\n");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->rows[0][0], json("02139"));
  EXPECT_EQ(f->rows[0][1], json(1000.0));
}

TEST(CsvTest, MalformedInputNamesLineAndColumn) {
  auto unterminated = ParseCsv("a,b\n1,\"open\n2,3\n");
  ASSERT_FALSE(unterminated.ok());
  EXPECT_EQ(unterminated.status().message(), "csv line 2, column 3: unterminated quoted field");

  auto after_quote = ParseCsv("a,b\n1,\"x\"y\n");
  ASSERT_FALSE(after_quote.ok());
  EXPECT_EQ(after_quote.status().message(),
            "csv line 2, column 6: unexpected 'y' after a closing quote");

  auto fields = ParseCsv("a,b\n1,2\n3,4,5\n");
  ASSERT_FALSE(fields.ok());
  EXPECT_EQ(fields.status().message(), "csv line 3, column 1: 3 fields where the header has 2");

  auto stray = ParseCsv("a,b\n1,x\"y\n");
  ASSERT_FALSE(stray.ok());
  EXPECT_EQ(stray.status().message(), "csv line 2, column 4: quote inside an unquoted field");

  auto dup = ParseCsv("a,a\n1,2\n");
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.status().message(), HasSubstr("duplicate header 'a'"));
}

TEST(JsonlTest, ColumnsInFirstSeenOrderMissingKeysNull) {
  auto f = ParseJsonl("{\"b\": 1, \"a\": \"x\"}\n\n{\"a\": \"y\", \"c\": [1,2]}\n");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_THAT(f->columns, ElementsAre("b", "a", "c"));
  ASSERT_EQ(f->rows.size(), 2u);
  EXPECT_TRUE(f->rows[1][0].is_null());
  EXPECT_EQ(f->rows[1][2], json::array({1, 2}));
}

TEST(JsonlTest, MalformedLineNamesLineAndColumn) {
  auto f = ParseJsonl("{\"a\": 1}\n{\"a\": 2,, }\n");
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("jsonl line 2, column 9: "));
  auto not_object = ParseJsonl("{\"a\": 1}\n[1]\n");
  ASSERT_FALSE(not_object.ok());
  EXPECT_EQ(not_object.status().message(),
            "jsonl line 2, column 1: expected an object, got a array");
}

TEST(JsonTest, TopLevelListOrRecordsPath) {
  auto f = ParseJson("[{\"a\": 1}, {\"a\": 2}]");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->rows.size(), 2u);
  auto nested = ParseJson("{\"data\": {\"items\": [{\"x\": true}]}}", "data.items");
  ASSERT_TRUE(nested.ok()) << nested.status().message();
  EXPECT_EQ(nested->rows[0][0], json(true));
  auto object = ParseJson("{\"data\": []}");
  ASSERT_FALSE(object.ok());
  EXPECT_THAT(object.status().message(), HasSubstr("set records_path"));
  auto missing = ParseJson("{\"data\": []}", "data.rows");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("no key 'rows'"));
}

TEST(JsonTest, MalformedDocumentNamesLineAndColumn) {
  auto f = ParseJson("[\n  {\"a\": 1},\n  {\"a\": }\n]");
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("json line 3, column 9: "));
}

TEST(FormatTest, FromNamesAndContentTypes) {
  EXPECT_EQ(FormatFromName("http://h/x/data.csv?sig=1"), Format::kCsv);
  EXPECT_EQ(FormatFromName("/d/rows.ndjson"), Format::kJsonl);
  EXPECT_EQ(FormatFromName("/d.v1/rows"), std::nullopt);
  EXPECT_EQ(FormatFromContentType("application/x-ndjson; charset=utf-8"), Format::kJsonl);
  EXPECT_EQ(FormatFromContentType("text/csv"), Format::kCsv);
  EXPECT_EQ(FormatFromContentType("text/html"), std::nullopt);
}

TEST(FilterTest, TypedComparisons) {
  EXPECT_TRUE(Matches(json(2), {"c", FilterOp::kEq, json(2.0)}));
  EXPECT_TRUE(Matches(json(10), {"c", FilterOp::kGt, json(9)}));
  // "10" (a string) and 9 (a number) are not ordered: neither > nor <=.
  EXPECT_FALSE(Matches(json("10"), {"c", FilterOp::kGt, json(9)}));
  EXPECT_FALSE(Matches(json("10"), {"c", FilterOp::kLe, json(9)}));
  EXPECT_TRUE(Matches(json("10"), {"c", FilterOp::kNe, json(10)}));
  EXPECT_TRUE(Matches(json("b"), {"c", FilterOp::kGe, json("a")}));
  EXPECT_TRUE(Matches(json(nullptr), {"c", FilterOp::kIsNull, {}}));
  EXPECT_FALSE(Matches(json(nullptr), {"c", FilterOp::kEq, json(0)}));
  EXPECT_TRUE(Matches(json("NVDA"), {"c", FilterOp::kIn, json::array({"AAPL", "NVDA"})}));
  EXPECT_TRUE(Matches(json("chip maker"), {"c", FilterOp::kContains, json("chip")}));
  EXPECT_FALSE(Matches(json(5), {"c", FilterOp::kContains, json("5")}));
  EXPECT_EQ(ParseFilterOp(">="), FilterOp::kGe);
  EXPECT_EQ(ParseFilterOp("LIKE"), std::nullopt);
}

TEST(FilterTest, ApplySelectAndUnknownColumns) {
  auto f = ParseCsv("sym,px,vol\nA,1,10\nB,2,20\nC,3,30\n");
  ASSERT_TRUE(f.ok());
  auto filtered =
      ApplyFilters(*f, {{"px", FilterOp::kGe, json(2)}, {"sym", FilterOp::kNe, json("C")}});
  ASSERT_TRUE(filtered.ok());
  auto picked = SelectColumns(*filtered, {"vol", "sym"});
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(TableJson(*picked), json({{"vol", {20}}, {"sym", {"B"}}}));
  auto bad = SelectColumns(*f, {"price"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "columns: unknown column 'price' (columns: sym, px, vol)");
  auto bad_filter = ApplyFilters(*f, {{"price", FilterOp::kEq, json(1)}});
  ASSERT_FALSE(bad_filter.ok());
  EXPECT_THAT(bad_filter.status().message(), HasSubstr("filters[0]: unknown column 'price'"));
}

TEST(BoundTest, RowsAndBytes) {
  Frame f;
  f.columns = {"s"};
  for (int i = 0; i < 10; ++i) f.rows.push_back({json(std::string(8, 'x'))});
  size_t budget = 1000;
  EXPECT_TRUE(Bound(f, 4, &budget));
  EXPECT_EQ(f.rows.size(), 4u);
  EXPECT_EQ(budget, 1000u - 4 * 11);  // "xxxxxxxx" + separator
  budget = 25;
  EXPECT_TRUE(Bound(f, 100, &budget));
  EXPECT_EQ(f.rows.size(), 2u);
  EXPECT_EQ(budget, 3u);
}

TEST(FrameTest, DuplicateColumnsKeepFirst) {
  Frame f{{"a", "b", "a"}, {{json(1), json(2), json(3)}}};
  EXPECT_THAT(DropDuplicateColumns(f), ElementsAre("a"));
  EXPECT_EQ(TableJson(f), json({{"a", {1}}, {"b", {2}}}));
}

}  // namespace
}  // namespace flowmesh::executors::retrieval
