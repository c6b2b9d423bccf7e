// flowmesh-sim WORKLOAD [--policy NAME|all] [--preempt] [--horizon SECONDS] [--dedup-scope SCOPE]
//              [--submissions published|varied]
// Runs the discrete-event simulator (src/sim) and prints key=value lines per policy.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "sim/simulator.h"

int main(int argc, char** argv) {
  using namespace flowmesh;
  std::string path, policy = "all";
  sim::SimOptions opt;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--policy" && i + 1 < argc) {
      policy = argv[++i];
    } else if (a == "--verbose") {
      verbose = true;
    } else if (a == "--preempt") {
      opt.preempt = true;
    } else if (a == "--dedup-scope" && i + 1 < argc) {
      opt.dedup_scope = argv[++i];
    } else if (a == "--submissions" && i + 1 < argc) {
      opt.submissions = argv[++i];
    } else if (a == "--horizon" && i + 1 < argc) {
      opt.horizon_s = std::atof(argv[++i]);
    } else if (a == "-h" || a == "--help") {
      std::string names;
      for (const auto& n : sim::PolicyNames()) names += n + "|";
      std::printf("usage: flowmesh-sim WORKLOAD.json [--policy %sall] [--preempt] [--horizon S] [--dedup-scope off|tenant|global] [--submissions published|varied] [--verbose]\n", names.c_str());
      return 0;
    } else if (!a.empty() && a[0] != '-' && path.empty()) {
      path = a;
    } else {
      std::fprintf(stderr, "flowmesh-sim: unexpected argument '%s' (try --help)\n", a.c_str());
      return 2;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr, "flowmesh-sim: no workload file (try --help)\n");
    return 2;
  }
  auto workload = sim::LoadWorkload(path);
  if (!workload.ok()) {
    std::fprintf(stderr, "flowmesh-sim: %s\n", workload.status().message().c_str());
    return 1;
  }
  std::vector<std::string> policies = {policy};
  if (policy == "all") policies = sim::PolicyNames();
  std::map<std::string, double> cost;
  for (const auto& p : policies) {
    auto r = sim::Simulate(*workload, p, opt);
    if (!r.ok()) {
      std::fprintf(stderr, "flowmesh-sim: %s\n", r.status().message().c_str());
      return 1;
    }
    const char* n = p.c_str();
    std::printf("%s_workflows=%d\n%s_completed=%d\n", n, r->workflows, n, r->completed);
    std::printf("%s_cost=%.4f\n%s_p50_s=%.1f\n%s_p95_s=%.1f\n%s_mean_s=%.1f\n%s_energy_kwh=%.3f\n", n, r->cost, n, r->p50_s, n,
                r->p95_s, n, r->mean_s, n, r->energy_kwh);
    std::printf("%s_utilisation=%.3f\n%s_makespan_s=%.1f\n%s_peak_workers=%d\n", n, r->utilisation, n, r->makespan_s, n, r->peak_workers);
    std::printf("%s_worker_seconds=%.1f\n%s_task_seconds=%.1f\n", n, r->worker_seconds, n, r->task_seconds);
    std::printf("%s_tasks=%d\n%s_executed_tasks=%d\n%s_reused_tasks=%d\n%s_joined_tasks=%d\n", n, r->total_tasks, n,
                r->executed_tasks, n, r->reused_tasks, n, r->joined_tasks);
    if (opt.preempt) std::printf("%s_preempted_workers=%d\n%s_retries=%d\n", n, r->preempted, n, r->retries);
    for (const auto& [org, share] : r->org_share) std::printf("%s_share_%s=%.3f\n", n, org.c_str(), share);
    if (verbose) {
      for (const auto& [type, c] : r->cost_by_type) {
        std::printf("%s_cost_%s=%.4f\n%s_busy_s_%s=%.0f\n", n, type.c_str(), c, n, type.c_str(), r->busy_by_type.at(type));
      }
      for (const auto& [kind, lats] : r->by_workflow) {
        double sum = 0;
        for (double l : lats) sum += l;
        std::printf("%s_mean_s_%s=%.1f\n", n, kind.c_str(), lats.empty() ? 0 : sum / lats.size());
      }
    }
    cost[p] = r->cost;
  }
  // "static" is the fair dedicated baseline: a warm, autoscaled pool per tenant.
  auto ratio = [&cost](const char* name, const char* over) {
    if (cost.count(over) && cost.count("flowmesh") && cost["flowmesh"] > 0) {
      std::printf("%s=%.2f\n", name, cost[over] / cost["flowmesh"]);
    }
  };
  ratio("cost_ratio_static_over_flowmesh", "static_tenant_pool");
  ratio("cost_ratio_shared_fcfs_over_flowmesh", "shared_fcfs_autoscaled");
  ratio("cost_ratio_naive_static_over_flowmesh", "naive_static_worker");
  return 0;
}
