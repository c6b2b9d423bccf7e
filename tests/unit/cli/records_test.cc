#include "cli/records.h"

#include <gtest/gtest.h>

#include "cli/output.h"

namespace flowmesh::cli {
namespace {

using nlohmann::json;

TEST(RecordsTest, CountOfTakesACountOrAListOfIds) {
  EXPECT_EQ(CountOf(json(4)), 4u);
  EXPECT_EQ(CountOf(json(4.0)), 4u);
  EXPECT_EQ(CountOf(json::array({"tsk-a", "tsk-b"})), 2u);
  EXPECT_EQ(CountOf(json()), 0u);
  EXPECT_EQ(CountOf(json("x")), 0u);
  EXPECT_EQ(CountOf(json(-3)), 0u);
}

TEST(RecordsTest, EpochSecondsReadsNumbersAndIso8601) {
  EXPECT_DOUBLE_EQ(*EpochSeconds(json(1700000000.5)), 1700000000.5);
  EXPECT_DOUBLE_EQ(*EpochSeconds(json("2023-11-14T22:13:20Z")), 1700000000.0);
  EXPECT_DOUBLE_EQ(*EpochSeconds(json("2023-11-14T22:13:20.25+00:00")), 1700000000.25);
  EXPECT_DOUBLE_EQ(*EpochSeconds(json("2023-11-15T00:13:20+02:00")), 1700000000.0);
  EXPECT_DOUBLE_EQ(*EpochSeconds(json("2023-11-14 22:13:20")), 1700000000.0);
  EXPECT_FALSE(EpochSeconds(json("yesterday")).has_value());
  EXPECT_FALSE(EpochSeconds(json()).has_value());
}

TEST(RecordsTest, WorkerIdAndTaskTypesInEitherShape) {
  json ours = {{"worker_id", "wkr-1"}, {"task_types", {"echo", "inference"}}};
  json published = {{"id", "wkr-2"}, {"capabilities", {{"supported_task_types", {"sft"}}}}};
  json nested = {{"worker_id", "wkr-3"}, {"info", {{"task_types", {"embedding"}}}}};
  EXPECT_EQ(WorkerId(ours), "wkr-1");
  EXPECT_EQ(WorkerId(published), "wkr-2");
  EXPECT_EQ(WorkerTaskTypes(ours), (std::vector<std::string>{"echo", "inference"}));
  EXPECT_EQ(WorkerTaskTypes(published), (std::vector<std::string>{"sft"}));
  EXPECT_EQ(WorkerTaskTypes(nested), (std::vector<std::string>{"embedding"}));
  EXPECT_TRUE(WorkerTaskTypes(json("x")).empty());
  // After the API change a worker carries both spellings: each type once.
  json both = {{"task_types", {"echo", "inference"}},
               {"capabilities", {{"supported_task_types", {"inference", "echo", "sft"}}}}};
  EXPECT_EQ(WorkerTaskTypes(both), (std::vector<std::string>{"echo", "inference", "sft"}));
}

TEST(RecordsTest, TimestampsDisplayTheSameInEitherShape) {
  EXPECT_EQ(FormatTimestamp(json("2023-11-14T22:13:20+00:00")), FormatTimestamp(json(1700000000)));
  EXPECT_EQ(FormatTimestamp(json("soon")), "soon");
  std::string record = FormatRecord({{"submitted_at", "2023-11-14T22:13:20Z"}});
  EXPECT_NE(record.find(FormatTimestamp(json(1700000000))), std::string::npos) << record;
}

TEST(RecordsTest, FlattenWorkerListsAcceptsAListOrAnObjectPerNode) {
  json list = json::array({{{"id", "a"}}});
  EXPECT_EQ(FlattenWorkerLists(list), list);
  json per_node = {{"nod-1", {{{"id", "a"}}, {{"id", "b"}}}}, {"nod-2", {{{"id", "c"}}}}};
  EXPECT_EQ(FlattenWorkerLists(per_node).size(), 3u);
  EXPECT_TRUE(FlattenWorkerLists(json()).empty());
}

TEST(RecordsTest, QueryFiltersAsThePublishedCli) {
  auto ok = ParseQueryFilters({"a=1", "?b=2&c=", "d=x=y"});
  ASSERT_TRUE(ok.ok());
  std::vector<std::pair<std::string, std::string>> want = {
      {"a", "1"}, {"b", "2"}, {"c", ""}, {"d", "x=y"}};
  EXPECT_EQ(*ok, want);
  EXPECT_FALSE(ParseQueryFilters({"novalue"}).ok());
  EXPECT_FALSE(ParseQueryFilters({"=1"}).ok());
  EXPECT_TRUE(ParseQueryFilters({})->empty());
}

TEST(RecordsTest, FilterByStatusAndKeepNewest) {
  json recs = json::array({{{"status", "DONE"}}, {{"status", "FAILED"}}, {{"status", "PENDING"}}});
  EXPECT_EQ(FilterByStatus(recs, {}).size(), 3u);
  EXPECT_EQ(FilterByStatus(recs, {"DONE", "PENDING"}).size(), 2u);
  json wfs = json::array({{{"task_ids", {"a", "b"}}}, {{"task_ids", {"c"}}}, {{"x", 1}}});
  EXPECT_EQ(FilterByAny(wfs, "task_ids", {"b", "z"}).size(), 1u);
  EXPECT_EQ(FilterByAny(wfs, "task_ids", {"a", "c"}).size(), 2u);
  EXPECT_EQ(FilterByAny(wfs, "task_ids", {}).size(), 3u);
  EXPECT_EQ(KeepNewest(recs, 0).size(), 3u);
  json newest = KeepNewest(recs, 2);
  ASSERT_EQ(newest.size(), 2u);
  EXPECT_EQ(newest[1]["status"], "PENDING");
  EXPECT_EQ(KeepNewest(recs, 10).size(), 3u);
}

}  // namespace
}  // namespace flowmesh::cli
