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
  for (const auto& p : PolicyNames()) {
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
  for (const auto& p : PolicyNames()) {
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
  for (const auto& p : PolicyNames()) {
    if (p == "flowmesh") continue;
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
  // One H100 and one A100 up; training of one key at 0 (learns 100 s), 150 (takes the
  // H100) and 160: waiting 90 + 100 s for the H100 beats 312 s on the idle A100.
  json two = json::parse(R"({
    "gpu_types": {"H100": {"cost_per_hour": 4, "inference_speed": 1, "training_speed": 1, "memory_gb": 80},
                  "A100": {"cost_per_hour": 1.8, "inference_speed": 0.6, "training_speed": 0.32, "memory_gb": 80}},
    "fleet": {"H100": 1, "A100": 1}, "fleet_policy": {"elastic": false},
    "inference": {"curve": [[1, 666], [64, 18175]]},
    "arrivals": {"process": "explicit", "items": [{"at_s": 0, "workflow": "t"}, {"at_s": 150, "workflow": "t"},
                                                  {"at_s": 160, "workflow": "t"}]},
    "workflows": [{"name": "t", "tasks": [{"name": "sft", "kind": "training", "h100_seconds": 100, "memory_gb": 10}]}]
  })");
  json never_wait = two;
  never_wait["utility"] = {{"defer_gain", 0}};
  auto waits = Simulate(two, "flowmesh", {});
  auto takes_slow = Simulate(never_wait, "flowmesh", {});
  ASSERT_TRUE(waits.ok() && takes_slow.ok());
  EXPECT_NEAR(waits->p95_s, 190, 1e-6);
  EXPECT_NEAR(takes_slow->p95_s, 312.5, 1e-6);
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
  w["failures"] = {{"preempt_at_s", 40}, {"preempt_fraction", 1.0}};  // every live worker, the leader running
  SimOptions o;
  o.preempt = true;
  o.dedup_scope = "global";
  auto r = Simulate(w, "flowmesh", o);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->preempted, 0);
  EXPECT_GT(r->retries, 0);
  EXPECT_EQ(r->completed, 12);
}

// One org submitting one short inference workflow every 30 s: a dedicated pool's worker
// stays warm (idle timeout 60 s) from one workflow to the next.
json OneTenantSeries() {
  return json::parse(R"({
    "seed": 1,
    "gpu_types": {"G": {"cost_per_hour": 1, "inference_speed": 1, "training_speed": 1, "memory_gb": 80,
                        "idle_watts": 50, "busy_watts": 300}},
    "fleet": {"G": 4},
    "fleet_policy": {"worker_startup_s": 30, "idle_timeout_s": 60, "tick_s": 5},
    "inference": {"curve": [[1, 666], [8, 3674], [32, 9915], [64, 18175]]},
    "orgs": [{"name": "a"}],
    "arrivals": {"process": "fixed", "per_min": 2, "count": 6},
    "workflows": [{"name": "ask", "tasks": [{"name": "q", "kind": "inference", "rows": 64, "model": "m", "memory_gb": 6}]}]
  })");
}

TEST(SimulatorTest, TenantPoolKeepsAWarmWorkerAcrossTheTenantsWorkflows) {
  auto pool = Simulate(OneTenantSeries(), "static_tenant_pool", {});
  auto naive = Simulate(OneTenantSeries(), "naive_static_worker", {});
  ASSERT_TRUE(pool.ok() && naive.ok()) << pool.status().message();
  EXPECT_EQ(pool->completed, 6);
  EXPECT_EQ(pool->workers_started, 1);   // one start, one model load, reused five times
  EXPECT_EQ(naive->workers_started, 6);  // a fresh worker per workflow
  EXPECT_LT(pool->mean_s, naive->mean_s);  // no start-up after the first
}

TEST(SimulatorTest, TenantPoolsAreNotShared) {
  json w = OneTenantSeries();
  w["orgs"] = json::parse(R"([{"name": "a"}, {"name": "b"}])");
  auto pool = Simulate(w, "static_tenant_pool", {});
  auto shared = Simulate(w, "shared_fcfs_autoscaled", {});
  ASSERT_TRUE(pool.ok() && shared.ok());
  EXPECT_EQ(pool->workers_started, 2);  // a worker per tenant
  EXPECT_EQ(shared->workers_started, 1);
}

TEST(SimulatorTest, AutoscaledPoolsScaleDownWhenIdle) {
  // Two bursts 2,000 s apart: the worker of the first retires after the idle timeout and a
  // new one starts for the second.
  json w = OneTenantSeries();
  w["arrivals"] = json::parse(R"({"process": "explicit", "items": [
      {"at_s": 0, "workflow": "ask"}, {"at_s": 1, "workflow": "ask"}, {"at_s": 2000, "workflow": "ask"}]})");
  for (const char* p : {"shared_fcfs_autoscaled", "static_tenant_pool", "flowmesh"}) {
    SimOptions o;
    o.dedup_scope = "off";
    auto r = Simulate(w, p, o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->completed, 3) << p;
    EXPECT_EQ(r->workers_started, 2) << p;
    EXPECT_LT(r->worker_seconds, 0.25 * r->makespan_s) << p;  // down for most of the gap
    // Idle power is charged for idle uptime only: less than the worker up at full power.
    EXPECT_LT(r->energy_kwh, r->worker_seconds * 300 / 3.6e6) << p;
    EXPECT_GT(r->energy_kwh, 0) << p;
  }
}

TEST(SimulatorTest, FlowMeshLearnsRunTimesFromHistory) {
  // The same training task again and again on one worker: its batch key's estimate is what
  // it ran at speed 1. The inference task's first run includes the model load; the moving
  // average forgets it.
  json w = OneTenantSeries();
  w["fleet_policy"] = {{"elastic", false}};
  w["fleet"] = {{"G", 1}};
  w["gpu_types"]["G"]["training_speed"] = 0.5;
  w["arrivals"] = {{"process", "fixed"}, {"per_min", 0.5}, {"count", 50}};
  w["workflows"][0]["tasks"].push_back(
      {{"name", "t"}, {"kind", "training"}, {"task_type", "sft"}, {"h100_seconds", 10}, {"memory_gb", 10}, {"depends_on", {"q"}}});
  SimOptions o;
  o.dedup_scope = "off";
  auto r = Simulate(w, "flowmesh", o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->completed, 50);
  ASSERT_EQ(r->learned_s.count("sft|"), 1u);
  EXPECT_NEAR(r->learned_s.at("sft|"), 10, 1e-6);
  ASSERT_EQ(r->learned_s.count("inference|m"), 1u);
  double alone = 64 * 256 / 18175.0;  // every row of the task in one batch
  EXPECT_NEAR(r->learned_s.at("inference|m"), alone, 0.01);
  // Nothing is learned by the baselines, and nothing before a key has run.
  auto pool = Simulate(w, "static_tenant_pool", o);
  ASSERT_TRUE(pool.ok());
  EXPECT_TRUE(pool->learned_s.empty());
}

TEST(SimulatorTest, VariedSubmissionsShareLessThanPublishedOnes) {
  auto w = LoadWorkload(Workload("paper.json"));
  ASSERT_TRUE(w.ok()) << w.status().message();
  SimOptions published, varied;
  published.dedup_scope = varied.dedup_scope = "global";
  varied.submissions = "varied";
  auto a = Simulate(*w, "flowmesh", published);
  auto b = Simulate(*w, "flowmesh", varied);
  ASSERT_TRUE(a.ok() && b.ok()) << b.status().message();
  EXPECT_EQ(a->workflows, b->workflows);  // the same arrivals and templates
  EXPECT_EQ(a->total_tasks, b->total_tasks);
  EXPECT_LT(a->executed_tasks, b->executed_tasks);
  EXPECT_LT(b->executed_tasks, b->total_tasks);  // some submissions keep the defaults
  EXPECT_EQ(b->completed, b->workflows);
  // A parameter whose every value is unique shares nothing.
  json u = *w;
  for (auto& wf : u["workflows"]) {
    std::vector<std::string> all;
    for (const auto& t : wf["tasks"]) all.push_back(t["name"]);
    wf["parameters"] = {{{"name", "seed"}, {"affects", all}, {"choices", {{{"value", "unique"}}}}}};
  }
  auto c = Simulate(u, "flowmesh", varied);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->executed_tasks, c->total_tasks);
}

TEST(SimulatorTest, BadParametersAndArrivalsNameTheField) {
  auto message = [](const json& w) {
    SimOptions o;
    o.submissions = "varied";
    auto r = Simulate(w, "flowmesh", o);
    return r.ok() ? std::string() : r.status().message();
  };
  json w = Small();
  w["workflows"][0]["parameters"] = json::parse(R"([{"name": "seed", "affects": ["three"], "choices": [{"value": "x"}]}])");
  EXPECT_NE(message(w).find("three"), std::string::npos) << message(w);
  w["workflows"][0]["parameters"] = json::parse(R"([{"name": "seed", "affects": ["one"], "choices": [{"value": "x", "weight": -1}]}])");
  EXPECT_NE(message(w).find("weight"), std::string::npos) << message(w);
  w["workflows"][0]["parameters"] = json::parse(R"([{"name": "seed", "affects": ["one"]}])");
  EXPECT_NE(message(w).find("choices"), std::string::npos) << message(w);
  json a = Small();
  a["arrivals"] = json::parse(R"({"process": "explicit", "items": [{"at_s": 0, "workflow": "nope"}]})");
  EXPECT_NE(message(a).find("arrivals.items[0].workflow"), std::string::npos) << message(a);
  a["arrivals"] = json::parse(R"({"process": "explicit", "items": [{"at_s": 0, "workflow": "chain", "org": "zz"}]})");
  EXPECT_NE(message(a).find("zz"), std::string::npos) << message(a);
  json g = Small();
  g["gpu_types"]["BIG"].erase("cost_per_hour");
  EXPECT_NE(message(g).find("gpu_types.BIG needs 'cost_per_hour'"), std::string::npos) << message(g);
  g = Small();
  g["gpu_types"]["BIG"]["busy_watts"] = "lots";
  EXPECT_NE(message(g).find("busy_watts"), std::string::npos) << message(g);
  json c = Small();
  c["workflows"][0]["tasks"][0] = {{"name", "one"}, {"kind", "cpu"}};
  EXPECT_NE(message(c).find("seconds"), std::string::npos) << message(c);
  json s = Small();
  s["submissions"] = "sometimes";
  EXPECT_NE(Simulate(s, "flowmesh", {}).status().message().find("submissions"), std::string::npos);
  SimOptions bad;
  bad.submissions = "maybe";
  EXPECT_FALSE(Simulate(Small(), "flowmesh", bad).ok());
}

TEST(SimulatorTest, CpuTasksHoldASlotForTheirSeconds) {
  json w = OneTenantSeries();
  w["fleet_policy"] = {{"elastic", false}};
  w["fleet"] = {{"G", 1}};
  w["arrivals"] = json::parse(R"({"process": "explicit", "items": [{"at_s": 0, "workflow": "ask"}]})");
  w["workflows"][0]["tasks"] = json::parse(R"([{"name": "a", "kind": "cpu", "seconds": 2},
      {"name": "b", "kind": "cpu", "seconds": 3}, {"name": "c", "kind": "cpu", "seconds": 1, "depends_on": ["a", "b"]}])");
  auto r = Simulate(w, "flowmesh", {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_NEAR(r->makespan_s, 4, 1e-6);  // a and b side by side, then c
  EXPECT_NEAR(r->task_seconds, 6, 1e-6);
}

}  // namespace
}  // namespace flowmesh::sim
