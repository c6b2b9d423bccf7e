#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "spec/operator.h"
#include "spec/task_spec.h"

namespace flowmesh::spec {
namespace {

using nlohmann::json;

TEST(TaskSpecTest, ReadsTheFabricFields) {
  json body = json::parse(R"({
    "resources": {"hardware": {"cpu": 2, "memory": "2Gi",
                               "gpu": {"count": 1, "memory": "8Gi", "type": "A100"}}},
    "priority": 5, "timeoutSeconds": 30, "cache": "always",
    "model": {"source": {"type": "local", "identifier": "/m/x.gguf"}},
    "inference": {"temperature": 0.7},
    "data": {"type": "dataset", "path": "d.jsonl"},
    "condition": {"node": "gate", "field": "ok", "equals": true},
    "extra": {"kept": [1, 2]}
  })");
  TaskSpec t = ParseTaskSpec("inference", body);
  EXPECT_EQ(t.task_type, "inference");
  EXPECT_EQ(t.demand, (Demand{2, 2048, 1, 8192, "A100"}));
  EXPECT_EQ(t.priority, 5);
  EXPECT_EQ(t.timeout_seconds, 30);
  EXPECT_EQ(t.cache, CachePolicy::kAlways);
  EXPECT_TRUE(t.deterministic);  // `cache: always` overrides the sampling parameters
  EXPECT_EQ(t.model_key, ModelKey(body));
  EXPECT_EQ(t.batch_key, BatchKey("inference", body));
  EXPECT_TRUE(t.reads_dataset);
  ASSERT_TRUE(t.condition.has_value());
  EXPECT_EQ(t.condition->node, "gate");
  EXPECT_EQ(t.condition->field, "ok");
  EXPECT_EQ(t.condition->equals, json(true));
  EXPECT_TRUE(t.condition_error.empty());
  EXPECT_EQ(t.body, body);  // free-form extras travel untouched
}

TEST(TaskSpecTest, DefaultsForAnEmptyOrMistypedSpec) {
  for (const json& body : {json::object(), json::array(), json("x"),
                           json::parse(R"({"priority": "high", "timeoutSeconds": "10",
                                           "resources": {"hardware": {"cpu": "2",
                                           "gpu": {"type": "any", "count": 1.5}}}})")}) {
    TaskSpec t = ParseTaskSpec("echo", body);
    EXPECT_EQ(t.demand, Demand{}) << body;
    EXPECT_EQ(t.priority, 0) << body;
    EXPECT_EQ(t.timeout_seconds, 0) << body;
    EXPECT_EQ(t.cache, CachePolicy::kAuto);
    EXPECT_TRUE(t.deterministic);  // echo declares itself deterministic
    EXPECT_FALSE(t.condition.has_value());
    EXPECT_TRUE(t.body.is_object());
  }
}

TEST(TaskSpecTest, CacheNeverMakesAnyTaskNonDeterministic) {
  TaskSpec t = ParseTaskSpec("echo", json::parse(R"({"cache": "never"})"));
  EXPECT_EQ(t.cache, CachePolicy::kNever);
  EXPECT_FALSE(t.deterministic);
  EXPECT_STREQ(CachePolicyName(t.cache), "never");
}

TEST(TaskSpecTest, AMalformedConditionIsKeptAsItsError) {
  TaskSpec t = ParseTaskSpec("echo", json::parse(R"({"condition": {"field": "a", "equals": 1}})"));
  EXPECT_FALSE(t.condition.has_value());
  EXPECT_EQ(t.condition_error, "condition.node must name an upstream node");
  EXPECT_EQ(ParseCondition(json::parse(R"({"node": "n", "field": 3, "equals": 1})")).status().message(),
            "condition.field must be a dot path string");
  EXPECT_EQ(ParseCondition(json::parse(R"({"node": "n"})")).status().message(),
            "condition.equals is missing");
  EXPECT_EQ(ParseCondition(json(5)).status().message(),
            "condition must be an object {node, field, equals}");
  auto whole = ParseCondition(json::parse(R"({"node": "n", "equals": {"a": 1}})"));
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->field, "");  // absent field: the whole result
}

TEST(TaskSpecTest, MemoryUnits) {
  EXPECT_DOUBLE_EQ(MemoryMb(json("512Mi")), 512);
  EXPECT_DOUBLE_EQ(MemoryMb(json("2Gi")), 2048);
  EXPECT_DOUBLE_EQ(MemoryMb(json("1G")), 1024);
  EXPECT_DOUBLE_EQ(MemoryMb(json("64K")), 64.0 / 1024);
  EXPECT_DOUBLE_EQ(MemoryMb(json("1Ti")), 1024.0 * 1024);
  EXPECT_DOUBLE_EQ(MemoryMb(json(1048576)), 1);
  EXPECT_DOUBLE_EQ(MemoryMb(json("lots")), 0);
  EXPECT_DOUBLE_EQ(MemoryMb(json(nullptr)), 0);
}

}  // namespace
}  // namespace flowmesh::spec
