// placements_per_sec of the scheduling core with 10,000 simulated workers and 1,000,000
// queued tasks from 100 organisations, and the memory each queued task costs.
//
// Fleet: 10,000 workers in five hardware classes (CPU and four GPU types) with 1–8 slots
// and different costs and speeds. Tasks: 100 orgs × 20 batch keys, three task types, some
// asking for GPUs or a GPU type, some carrying locality keys. The loop fills every free
// slot (Schedule), then ends every running task (Finished) and repeats, until 500,000
// tasks have been placed; the time of Schedule + Finished is what is measured.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "placement/placement.h"

using namespace flowmesh::placement;

int main(int argc, char** argv) {
  const int kWorkers = 10000, kTasks = 1000000, kOrgs = 100, kKeys = 20;
  const size_t kPlaceTarget = argc > 1 ? std::stoul(argv[1]) : 500000;
  std::mt19937_64 rng(42);
  Placer p;
  const char* gpu_types[] = {"", "L4", "A10G", "A100", "H100"};
  const double costs[] = {0.2, 0.8, 1.2, 3.0, 4.5};
  const double speeds[] = {0.3, 1.0, 1.3, 3.0, 4.5};
  for (int o = 0; o < kOrgs; ++o) p.SetOrgPolicy("org-" + std::to_string(o), {1.0 + o % 4, 0, 0});
  for (int i = 0; i < kWorkers; ++i) {
    WorkerSpec w;
    int cls = i % 5;
    w.id = "wkr-" + std::to_string(i);
    w.gpu_type = gpu_types[cls];
    w.task_types = cls == 0 ? std::vector<std::string>{"echo", "data"}
                            : std::vector<std::string>{"echo", "infer", "train"};
    w.capacity = {16, 65536, cls == 0 ? 0 : 8, cls == 0 ? 0 : 24576.0 * cls};
    w.slots = 1 + static_cast<int>(rng() % 8);
    w.cost_per_hour = costs[cls] * (0.9 + 0.2 * (rng() % 100) / 100.0);
    w.speed = speeds[cls];
    if (cls != 0) w.keys = {"model-" + std::to_string(rng() % 50)};
    p.UpsertWorker(w);
  }
  struct mallinfo2 before = mallinfo2();
  for (int i = 0; i < kTasks; ++i) {
    TaskRequest t;
    t.handle = static_cast<uint64_t>(i) + 1;
    int o = static_cast<int>(rng() % kOrgs);
    int k = static_cast<int>(rng() % kKeys);
    t.org = "org-" + std::to_string(o);
    t.priority = k % 3 == 0 ? 1 : 0;
    t.task_type = k < 10 ? "echo" : (k < 17 ? "infer" : "train");
    t.batch_key = t.task_type + "|model-" + std::to_string(k % 50);
    t.category = k < 10 ? Category::kOther : (k < 17 ? Category::kInference : Category::kTraining);
    t.demand.cpu = 1;
    t.demand.memory_mb = 1024;
    if (k >= 10) t.demand.gpus = 1;
    if (k == 19) t.gpu_type = "H100";
    if (k >= 10) t.locality_keys = {"model-" + std::to_string(k % 50)};
    t.enqueue_time = i * 1e-6;
    t.est_seconds = 1;
    p.Enqueue(t);
  }
  struct mallinfo2 after = mallinfo2();
  double bytes = (static_cast<double>(after.uordblks + after.hblkhd) - static_cast<double>(before.uordblks + before.hblkhd)) / kTasks;

  size_t placed = 0, decisions = 0;
  double now = 1;
  std::vector<uint64_t> running;
  auto t0 = std::chrono::steady_clock::now();
  while (placed < kPlaceTarget && p.queued() > 0) {
    auto out = p.Schedule(now);
    if (out.empty() && running.empty()) break;
    for (const auto& pl : out) {
      ++decisions;
      placed += pl.tasks.size();
      running.insert(running.end(), pl.tasks.begin(), pl.tasks.end());
    }
    now += 1;
    for (uint64_t h : running) p.Finished(h, 1.0, now);
    running.clear();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("workers=%d\nqueued_tasks=%d\norgs=%d\n", kWorkers, kTasks, kOrgs);
  std::printf("placements_per_sec=%.0f\n", placed / secs);
  std::printf("batch_decisions_per_sec=%.0f\n", decisions / secs);
  std::printf("tasks_placed=%zu\nmeasure_seconds=%.3f\n", placed, secs);
  std::printf("bytes_per_queued_task=%.0f\n", bytes);
  return 0;
}
