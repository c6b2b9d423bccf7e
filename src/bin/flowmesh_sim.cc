// flowmesh-sim WORKLOAD [--policy NAME|all] [--preempt] [--horizon SECONDS] [--dedup-scope SCOPE]
// Runs the discrete-event simulator (src/sim) and prints key=value lines per policy.
#include <cstdio>
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
    } else if (a == "--horizon" && i + 1 < argc) {
      opt.horizon_s = std::atof(argv[++i]);
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: flowmesh-sim WORKLOAD.json [--policy flowmesh|static_worker|round_robin|fcfs_first_fit|all] [--preempt] [--horizon S] [--dedup-scope off|tenant|global] [--verbose]\n");
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
  if (policy == "all") policies = {"flowmesh", "static_worker", "round_robin", "fcfs_first_fit"};
  double flowmesh_cost = 0, static_cost = 0;
  for (const auto& p : policies) {
    auto r = sim::Simulate(*workload, p, opt);
    if (!r.ok()) {
      std::fprintf(stderr, "flowmesh-sim: %s\n", r.status().message().c_str());
      return 1;
    }
    const char* n = p.c_str();
    std::printf("%s_workflows=%d\n%s_completed=%d\n", n, r->workflows, n, r->completed);
    std::printf("%s_cost=%.4f\n%s_p50_s=%.1f\n%s_p95_s=%.1f\n%s_mean_s=%.1f\n", n, r->cost, n, r->p50_s, n, r->p95_s, n, r->mean_s);
    std::printf("%s_utilisation=%.3f\n%s_makespan_s=%.1f\n%s_peak_workers=%d\n", n, r->utilisation, n, r->makespan_s, n, r->peak_workers);
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
    if (p == "flowmesh") flowmesh_cost = r->cost;
    if (p == "static_worker") static_cost = r->cost;
  }
  if (flowmesh_cost > 0 && static_cost > 0) std::printf("cost_ratio_static_over_flowmesh=%.2f\n", static_cost / flowmesh_cost);
  return 0;
}
