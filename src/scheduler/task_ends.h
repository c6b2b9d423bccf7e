// Task ends: every way a task finishes or goes back to wait — success (with an inline
// result stored in the same group commit), skip (condition unmet), failure before
// dispatch, failure of an attempt (retried with backoff on another worker, or final),
// cancellation — and what follows from each: the worker's capacity is released, usage is
// recorded per attempt, dependents are released or ended (Cascade), the de-duplication
// flight is finished or released, and the workflow's status is refreshed (which may drop
// the workflow, and with it the task: callers must not touch a task after ending it).
// Loop-owned.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

#include "cas/content_store.h"
#include "common/clock.h"
#include "scheduler/counters.h"
#include "scheduler/deadlines.h"
#include "scheduler/dedup.h"
#include "scheduler/outbox.h"
#include "scheduler/placement_queue.h"
#include "scheduler/retry_policy.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/task_graph.h"
#include "scheduler/worker_registry.h"
#include "state/store.h"

namespace flowmesh::scheduler {

class TaskEnds {
 public:
  struct Deps {
    TaskGraph* graph;
    PlacementQueue* queue;
    WorkerRegistry* workers;
    Dedup* dedup;
    Outbox* outbox;
    Deadlines* deadlines;
    state::Store* store;
    cas::ContentStore* content;
    Counters* counters;
    const TimeSource* time;
    SchedulerMetrics* metrics;
  };
  TaskEnds(Deps deps, RetryPolicy retry) : d_(deps), retry_(std::move(retry)) {}

  // The usage sink gets one row per ended attempt (on the loop: it must not block).
  void SetUsageSink(std::function<void(const state::UsageRecord&)> sink) {
    usage_sink_ = std::move(sink);
  }

  // The worker reported success; `payload` may carry the result inline.
  void Succeed(Task& t, nlohmann::json payload);
  // Its condition is unmet: DONE with {"skipped": true}.
  void Skip(Task& t);
  // It cannot be dispatched (unresolvable, unplaceable): FAILED, not retried.
  void FailBeforeDispatch(Task& t, const std::string& error);
  // An attempt failed: back to PENDING after a backoff when retryable and attempts remain,
  // else FAILED (CANCELLED when it was being cancelled).
  void Fail(Task& t, const std::string& error, bool retryable);
  // A running task's cancellation completed (or its worker is gone while cancelling).
  void Cancelled(Task& t);
  // Asks the worker running `t` to stop it: CANCELLING now, CANCELLED when the worker says
  // so. `flag` names why in the TASK_UPDATE event (cancel_requested | stop_requested).
  void RequestInterrupt(Task& t, const char* flag);
  // (Again: the interrupt or the worker's answer may have been lost.)
  void SendInterrupt(const Task& t);
  // A PENDING task of a cancelled workflow (its workflow is refreshed by the caller).
  void CancelPending(Task& t);
  // Stores a task's result (content-addressed) through the group commit, keeps it for
  // dependents, and sets the task's digest.
  Status StoreResult(Task& t, nlohmann::json result, const nlohmann::json& metadata);

 private:
  // One usage row per ended attempt; `tokens` is the attempt's reported usage
  // ({prompt_tokens, completion_tokens}, from its TASK_SUCCEEDED event), or null.
  void RecordUsage(Task& t, const std::string& status, const nlohmann::json& tokens = nullptr);
  // Ends the PENDING dependents of a task that cannot complete, transitively.
  void Cascade(const Task& origin, state::TaskState to);
  void CancelRetry(Task& t);
  void ScheduleRetry(Task& t, const std::string& error);

  Deps d_;
  RetryPolicy retry_;
  std::function<void(const state::UsageRecord&)> usage_sink_;
};

}  // namespace flowmesh::scheduler
