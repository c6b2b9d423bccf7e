#include "scheduler/scheduler_metrics.h"

namespace flowmesh::scheduler {

namespace {

// Placement waits range from sub-millisecond (a free worker) to minutes (a busy fleet).
std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1,      2.5,   5,      10,    30,   60,    120,  300, 600};
}

}  // namespace

SchedulerMetrics::SchedulerMetrics(metrics::Registry* r)
    : registry(r),
      tasks_total(r->AddCounter("flowmesh_tasks_total",
                                "Tasks that reached a terminal state, by task type and status "
                                "(DONE, FAILED, CANCELLED).",
                                {"task_type", "status"})),
      tokens_total(r->AddCounter("flowmesh_inference_tokens_total",
                                 "Tokens read (kind=prompt) and generated (kind=completion) by "
                                 "ended task attempts, as their executors reported them.",
                                 {"task_type", "kind"})),
      placement_latency(
          r->AddHistogram("flowmesh_placement_latency_seconds",
                          "Seconds from a ready task's admission to the placement queue to its "
                          "dispatch to a worker.",
                          LatencyBuckets())
              .Get()),
      placement_pass(
          r->AddHistogram("flowmesh_placement_pass_seconds",
                          "Seconds one placement pass (the placer's decisions) took.",
                          metrics::ExponentialBuckets(0.00001, 4, 10))
              .Get()),
      queue_depth(r->AddGauge("flowmesh_queue_depth",
                              "Ready tasks (dependencies met) waiting to be dispatched.")
                      .Get()),
      tasks_pending(r->AddGauge("flowmesh_tasks_pending",
                                "Tasks PENDING, ready or waiting for their dependencies.")
                        .Get()),
      tasks_in_flight(r->AddGauge("flowmesh_tasks_in_flight",
                                  "Tasks dispatched to a worker and not yet ended "
                                  "(DISPATCHED or CANCELLING).")
                          .Get()),
      workflows_active(r->AddGauge("flowmesh_workflows_active",
                                   "Workflows with tasks not yet terminal.")
                           .Get()) {}

void SchedulerMetrics::SeeTaskType(const std::string& task_type) {
  if (seen_types_.size() >= 1000 || !seen_types_.insert(task_type).second) return;
  for (const char* status : {"DONE", "FAILED", "CANCELLED"}) {
    tasks_total.With({task_type.empty() ? "unknown" : task_type, status});
  }
}

void SchedulerMetrics::TaskEnded(const std::string& task_type, std::string_view status) {
  tasks_total.With({task_type.empty() ? "unknown" : task_type, std::string(status)}).Inc();
}

void SchedulerMetrics::Tokens(const std::string& task_type, int64_t prompt, int64_t completion) {
  const std::string& type = task_type.empty() ? std::string("unknown") : task_type;
  if (prompt > 0) tokens_total.With({type, "prompt"}).Inc(static_cast<double>(prompt));
  if (completion > 0) tokens_total.With({type, "completion"}).Inc(static_cast<double>(completion));
}

}  // namespace flowmesh::scheduler
