#include "sim/simulator.h"

#include <gtest/gtest.h>

namespace flowmesh::sim {
namespace {

using nlohmann::json;

std::string Workload(const std::string& name) { return std::string(FLOWMESH_SOURCE_DIR) + "/bench/workloads/" + name; }

json Small() {
  return json::parse(R"({
    "seed": 1,
    "gpu_types": {"BIG": {"cost_per_hour": 4, "inference_speed": 1, "training_speed": 1, "memory_gb": 80},
                  "SMALL": {"cost_per_hour": 1, "inference_speed": 0.5, "training_speed": 0.3, "memory_gb": 24}},
    "fleet": {"BIG": 2, "SMALL": 4},
    "fleet_policy": {"elastic": true, "worker_startup_s": 30, "idle_timeout_s": 30, "max_workers": 6},
    "inference": {"curve": [[1, 666], [8, 3674], [32, 9915], [64, 18175]]},
    "orgs": [{"name": "a"}, {"name": "b"}],
    "arrivals": {"process": "fixed", "per_min": 6, "count": 12},
    "workflows": [
      {"name": "chain", "tasks": [
        {"name": "one", "kind": "inference", "rows": 100, "model": "m", "memory_gb": 6},
        {"name": "two", "kind": "inference", "rows": 100, "model": "m", "memory_gb": 6, "depends_on": ["one"]}]},
      {"name": "big_train", "tasks": [
        {"name": "t", "kind": "training", "h100_seconds": 120, "memory_gb": 60, "produces": "adapter:{wf}"},
        {"name": "i", "kind": "inference", "rows": 50, "model": "adapter:{wf}", "memory_gb": 6, "depends_on": ["t"]}]}
    ]})");
}

TEST(SimulatorTest, EveryPolicyCompletesEveryWorkflow) {
  for (const char* p : {"flowmesh", "static_worker", "round_robin", "fcfs_first_fit"}) {
    auto r = Simulate(Small(), p, {});
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->completed, 12) << p;
    EXPECT_GT(r->cost, 0) << p;
    EXPECT_LE(r->p50_s, r->p95_s) << p;
  }
}

TEST(SimulatorTest, RunsAreRepeatable) {
  auto a = Simulate(Small(), "flowmesh", {});
  auto b = Simulate(Small(), "flowmesh", {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_DOUBLE_EQ(a->cost, b->cost);
  EXPECT_DOUBLE_EQ(a->p95_s, b->p95_s);
}

TEST(SimulatorTest, WeightedFairShareUnderSaturation) {
  auto w = LoadWorkload(Workload("fairness.json"));
  ASSERT_TRUE(w.ok()) << w.status().message();
  SimOptions o;
  o.horizon_s = 3600;
  auto r = Simulate(*w, "flowmesh", o);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->org_share.at("a"), 0.25, 0.05);
  EXPECT_NEAR(r->org_share.at("b"), 0.75, 0.05);
}

TEST(SimulatorTest, PreemptedWorkersLoseNoWorkflow) {
  auto w = LoadWorkload(Workload("paper.json"));
  ASSERT_TRUE(w.ok()) << w.status().message();
  SimOptions o;
  o.preempt = true;
  for (const char* p : {"flowmesh", "static_worker", "round_robin", "fcfs_first_fit"}) {
    auto r = Simulate(*w, p, o);
    ASSERT_TRUE(r.ok());
    EXPECT_GT(r->preempted, 0) << p;
    EXPECT_EQ(r->completed, r->workflows) << p;
  }
}

TEST(SimulatorTest, ElasticFleetGrowsWithTheQueueAndCostsLessThanAFixedOne) {
  auto elastic = Simulate(Small(), "flowmesh", {});
  json fixed_w = Small();
  fixed_w["fleet_policy"]["elastic"] = false;
  auto fixed = Simulate(fixed_w, "flowmesh", {});
  ASSERT_TRUE(elastic.ok() && fixed.ok());
  EXPECT_GT(elastic->peak_workers, 1);
  EXPECT_LT(elastic->cost, fixed->cost);
}

TEST(SimulatorTest, BadWorkloadsAreRejectedWithTheField) {
  json w = Small();
  w["workflows"][0]["tasks"][1]["depends_on"] = json::array({"nope"});
  auto r = Simulate(w, "flowmesh", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nope"), std::string::npos) << r.status().message();
  json v = Small();
  v["fleet"]["TPU"] = 1;
  r = Simulate(v, "flowmesh", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("TPU"), std::string::npos);
  EXPECT_FALSE(Simulate(Small(), "magic", {}).ok());
  json d = Small();
  d["dedup_scope"] = "everyone";
  r = Simulate(d, "flowmesh", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("dedup_scope"), std::string::npos) << r.status().message();
  SimOptions bad;
  bad.dedup_scope = "sometimes";
  EXPECT_FALSE(Simulate(Small(), "flowmesh", bad).ok());
  EXPECT_FALSE(LoadWorkload("/nonexistent.json").ok());
}

// Small() with every instance of a template identical (one variant).
json Identical() {
  json w = Small();
  for (auto& wf : w["workflows"]) wf["variants"] = 1;
  return w;
}

Result<PolicyResult> WithScope(const json& w, const std::string& policy, const std::string& scope) {
  SimOptions o;
  o.dedup_scope = scope;
  return Simulate(w, policy, o);
}

TEST(SimulatorTest, GlobalDedupRunsEachIdenticalOperatorOnce) {
  auto r = WithScope(Identical(), "flowmesh", "global");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->completed, 12);
  EXPECT_EQ(r->total_tasks, 24);
  EXPECT_EQ(r->executed_tasks, 4);  // two templates × two tasks
  EXPECT_EQ(r->reused_tasks + r->joined_tasks, 20);
  EXPECT_GT(r->joined_tasks, 0);    // arrivals every 10 s join running twins
}

TEST(SimulatorTest, TenantDedupNeverCrossesOrganisations) {
  auto r = WithScope(Identical(), "flowmesh", "tenant");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->completed, 12);
  EXPECT_EQ(r->executed_tasks, 8);  // each of the two orgs once
}

TEST(SimulatorTest, DistinctInstancesAndOffScopeRunEverything) {
  auto distinct = WithScope(Small(), "flowmesh", "global");  // no variants: every instance differs
  auto off = WithScope(Identical(), "flowmesh", "off");
  ASSERT_TRUE(distinct.ok() && off.ok());
  EXPECT_EQ(distinct->executed_tasks, 24);
  EXPECT_EQ(off->executed_tasks, 24);
  EXPECT_EQ(off->reused_tasks + off->joined_tasks, 0);
}

TEST(SimulatorTest, BaselinesRunEveryTaskTheyAreGiven) {
  for (const char* p : {"static_worker", "round_robin", "fcfs_first_fit"}) {
    auto r = WithScope(Identical(), p, "global");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->executed_tasks, 24) << p;
    EXPECT_EQ(r->completed, 12) << p;
  }
}

TEST(SimulatorTest, DedupCostsLessThanRunningEverything) {
  auto global = WithScope(Identical(), "flowmesh", "global");
  auto off = WithScope(Identical(), "flowmesh", "off");
  ASSERT_TRUE(global.ok() && off.ok());
  EXPECT_LT(global->cost, off->cost);
}

TEST(SimulatorTest, UtilitySectionIsCheckedAndApplied) {
  auto w = LoadWorkload(Workload("paper.json"));
  ASSERT_TRUE(w.ok()) << w.status().message();
  json never_wait = *w;
  never_wait["utility"] = {{"defer_gain", 0}};
  auto waits = WithScope(*w, "flowmesh", "off");
  auto takes_slow = WithScope(never_wait, "flowmesh", "off");
  ASSERT_TRUE(waits.ok() && takes_slow.ok());
  // Training that takes an idle A100 instead of waiting for an H100 runs ~3× longer.
  EXPECT_LT(waits->p95_s, takes_slow->p95_s);
  json bad = *w;
  bad["utility"] = {{"lambda_training", 2}};
  auto r = Simulate(bad, "flowmesh", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("lambda_training"), std::string::npos) << r.status().message();
  bad["utility"] = {{"speediness", 1}};
  EXPECT_FALSE(Simulate(bad, "flowmesh", {}).ok());
}

TEST(SimulatorTest, PreemptedLeaderStillCompletesItsJoiners) {
  json w = Identical();
  w["failures"] = {{"preempt_at_s", 50}, {"preempt_fraction", 1.0}};  // every live worker
  SimOptions o;
  o.preempt = true;
  o.dedup_scope = "global";
  auto r = Simulate(w, "flowmesh", o);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->preempted, 0);
  EXPECT_GT(r->retries, 0);
  EXPECT_EQ(r->completed, 12);
}

}  // namespace
}  // namespace flowmesh::sim
