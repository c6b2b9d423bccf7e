// placements_per_sec of the scheduling core with 10,000 simulated workers and 1,000,000
// queued tasks from 100 organisations, and the memory each queued task costs.
//
// Fleet: 10,000 workers in five hardware classes (CPU and four GPU types) with 1–8 slots
// and different costs and speeds. Tasks: 100 orgs × 20 batch keys, three task types, some
// asking for GPUs or a GPU type, some carrying locality keys. The loop fills every free
// slot (Schedule), then ends every running task (Finished) and repeats until every queued
// task has been placed; the time of Schedule + Finished is what is measured.
//
// A placement is one decision that may carry a batch of tasks with the same batch key, so
// placements_per_sec (tasks placed) is printed beside batch_decisions_per_sec (decisions
// made). The run is repeated with one task per batch key (unique_keys_*): there every
// decision places exactly one task.
//   placement_bench [QUEUED_TASKS]   (default 1,000,000; a smaller queue is for tests)
#include <malloc.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "placement/placement.h"

using namespace flowmesh::placement;

namespace {

constexpr int kWorkers = 10000, kOrgs = 100, kKeys = 20;

void AddFleet(Placer& p, std::mt19937_64& rng) {
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
}

// Enqueues `tasks` tasks; returns the heap bytes each one costs while queued.
double EnqueueTasks(Placer& p, std::mt19937_64& rng, int tasks, bool unique_keys) {
  struct mallinfo2 before = mallinfo2();
  for (int i = 0; i < tasks; ++i) {
    TaskRequest t;
    t.handle = static_cast<uint64_t>(i) + 1;
    int o = static_cast<int>(rng() % kOrgs);
    int k = static_cast<int>(rng() % kKeys);
    t.org = "org-" + std::to_string(o);
    t.priority = k % 3 == 0 ? 1 : 0;
    t.task_type = k < 10 ? "echo" : (k < 17 ? "infer" : "train");
    t.batch_key = t.task_type + "|model-" + std::to_string(k % 50);
    if (unique_keys) t.batch_key += "|task-" + std::to_string(i);
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
  return (static_cast<double>(after.uordblks + after.hblkhd) -
          static_cast<double>(before.uordblks + before.hblkhd)) / tasks;
}

struct Figures {
  size_t placed = 0, decisions = 0;
  double seconds = 0, cpu_seconds = 0, bytes_per_task = 0;
};

// This process's CPU time: beside the wall time, it shows how much a busy machine slowed
// the run (the figures are wall-time rates).
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

Figures Run(int tasks, bool unique_keys) {
  std::mt19937_64 rng(42);
  auto p = std::make_unique<Placer>();
  AddFleet(*p, rng);
  Figures f;
  f.bytes_per_task = EnqueueTasks(*p, rng, tasks, unique_keys);
  double now = 1;
  std::vector<uint64_t> running;
  auto t0 = std::chrono::steady_clock::now();
  double cpu0 = CpuSeconds();
  while (p->queued() > 0) {
    auto out = p->Schedule(now);
    if (out.empty() && running.empty()) break;
    for (const auto& pl : out) {
      ++f.decisions;
      f.placed += pl.tasks.size();
      running.insert(running.end(), pl.tasks.begin(), pl.tasks.end());
    }
    now += 1;
    for (uint64_t h : running) p->Finished(h, 1.0, now);
    running.clear();
  }
  f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  f.cpu_seconds = CpuSeconds() - cpu0;
  return f;
}

void Print(const char* prefix, const Figures& f) {
  std::printf("%splacements_per_sec=%.0f\n", prefix, f.placed / f.seconds);
  std::printf("%sbatch_decisions_per_sec=%.0f\n", prefix, f.decisions / f.seconds);
  std::printf("%stasks_per_decision=%.2f\n", prefix, f.decisions ? double(f.placed) / f.decisions : 0.0);
  std::printf("%stasks_placed=%zu\n%sbatch_decisions=%zu\n", prefix, f.placed, prefix, f.decisions);
  std::printf("%smeasure_seconds=%.3f\n%smeasure_cpu_seconds=%.3f\n", prefix, f.seconds, prefix,
              f.cpu_seconds);
  std::printf("%sbytes_per_queued_task=%.0f\n", prefix, f.bytes_per_task);
}

}  // namespace

int main(int argc, char** argv) {
  const int tasks = argc > 1 ? std::stoi(argv[1]) : 1000000;
  std::printf("workers=%d\nqueued_tasks=%d\norgs=%d\nbatch_keys=%d\n", kWorkers, tasks, kOrgs, kKeys);
  Figures shared = Run(tasks, false);
  Print("", shared);
  Figures unique = Run(tasks, true);
  Print("unique_keys_", unique);
  // Every queued task must have been placed, or the figures describe a subset.
  if (shared.placed != static_cast<size_t>(tasks) || unique.placed != static_cast<size_t>(tasks)) {
    std::fprintf(stderr, "placement_bench: not every queued task was placed\n");
    return 1;
  }
  return 0;
}
