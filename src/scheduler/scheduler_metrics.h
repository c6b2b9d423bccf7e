// The scheduler's metrics in the process's registry (every one is listed in
// docs/operations.md). Built once by the Scheduler; the rooms update the children they
// hold on the loop thread (atomics: a scrape reads them from any thread). The gauges of the
// fleet (workers, slots, nodes) are collectors that read the rooms' snapshots at scrape
// time, so a node or worker that is gone leaves no stale series behind.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>

#include "common/metrics.h"

namespace flowmesh::scheduler {

struct SchedulerMetrics {
  explicit SchedulerMetrics(metrics::Registry* registry);

  // A task of this type was submitted or recovered: its tasks_total series exist from now
  // on (at 0), so a rate() over them sees the first ends too. Loop thread only.
  void SeeTaskType(const std::string& task_type);
  // A task reached a terminal state (DONE, FAILED, CANCELLED): once per task.
  void TaskEnded(const std::string& task_type, std::string_view status);
  // Tokens an ended attempt reported (its usage row).
  void Tokens(const std::string& task_type, int64_t prompt, int64_t completion);

  metrics::Registry* registry;
  metrics::Family<metrics::Counter>& tasks_total;     // {task_type, status}
  metrics::Family<metrics::Counter>& tokens_total;    // {task_type, kind}
  metrics::Histogram& placement_latency;              // admitted to the placer -> dispatched
  metrics::Histogram& placement_pass;                 // one placer pass (decision cost)
  metrics::Gauge& queue_depth;                        // ready tasks not yet dispatched
  metrics::Gauge& tasks_pending;                      // PENDING tasks (ready or not)
  metrics::Gauge& tasks_in_flight;                    // DISPATCHED + CANCELLING
  metrics::Gauge& workflows_active;                   // workflows in memory (not terminal)

 private:
  std::unordered_set<std::string> seen_types_;  // loop-owned
};

}  // namespace flowmesh::scheduler
