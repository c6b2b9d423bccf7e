#include "executors/data_profiling.h"

#include <gtest/gtest.h>

#include <atomic>

namespace flowmesh::executors {
namespace {

TEST(DataProfilingTest, ExactStatistics) {
  std::atomic<bool> cancelled{false};
  TaskContext ctx{"tsk-1", "wfl-1", 1, "data_profiling",
                  {{"data", {{"items", {"The cat sat.", "the dog", "", "the dog", {{"a", 1}}}}}}},
                  nullptr, nullptr, cancelled};
  auto result = DataProfilingExecutor().Run(ctx);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const auto& p = *result;
  EXPECT_EQ(p["rows"], 5);
  EXPECT_EQ(p["empty_rows"], 1);
  EXPECT_EQ(p["unique_rows"], 4);
  // chars: 12, 7, 0, 7, 7 ({"a":1})
  EXPECT_EQ(p["chars"], nlohmann::json::parse(R"({"min":0,"max":12,"mean":6.6,"total":33})"));
  // tokens: 3, 2, 0, 2, 1
  EXPECT_EQ(p["tokens"], nlohmann::json::parse(R"({"min":0,"max":3,"mean":1.6,"total":8})"));
  EXPECT_EQ(p["words_top"],
            nlohmann::json::parse(R"([["the",3],["dog",2],["a\":1",1],["cat",1],["sat",1]])"));
  EXPECT_EQ(p["items"][0], nlohmann::json::parse(R"({"index":0,"chars":12,"tokens":3})"));
  EXPECT_EQ(p["items"][4], nlohmann::json::parse(R"({"index":4,"chars":7,"tokens":1})"));
}

TEST(DataProfilingTest, EmptyDataIsZeros) {
  nlohmann::json p = ProfileRows({});
  EXPECT_EQ(p["rows"], 0);
  EXPECT_EQ(p["empty_rows"], 0);
  EXPECT_EQ(p["chars"], nlohmann::json::parse(R"({"min":0,"max":0,"mean":0.0,"total":0})"));
  EXPECT_TRUE(p["words_top"].empty());
  EXPECT_TRUE(p["items"].empty());
}

TEST(DataProfilingTest, TopWordsCappedAtTenAndUtf8Chars) {
  std::vector<std::string> rows;
  for (int i = 0; i < 12; ++i) rows.push_back("w" + std::to_string(i));
  EXPECT_EQ(ProfileRows(rows)["words_top"].size(), 10u);
  EXPECT_EQ(ProfileRows({"héllo"})["chars"]["total"], 5);
}

TEST(DataProfilingTest, NonListItemsRejected) {
  std::atomic<bool> cancelled{false};
  TaskContext ctx{"t", "w", 1, "data_profiling", {{"data", {{"items", "x"}}}}, nullptr, nullptr,
                  cancelled};
  auto result = DataProfilingExecutor().Run(ctx);
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace flowmesh::executors
