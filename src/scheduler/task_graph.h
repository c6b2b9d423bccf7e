// The workflow graph: every active workflow and its tasks, their states, dependency
// counts, epoch gates (node_execution_order) and the ready queue. Loop-owned.
//
// Task states and the transitions the scheduler makes (every change goes through
// SetState, which keeps each workflow's per-state counts exact):
//
//                      submit / recover
//                             |
//                             v
//            +----------> PENDING ---- condition unmet, reused result, twin's result --> DONE
//            |             |  |  |
//  retryable |      placed |  |  +---- unresolvable, unplaceable, dependency failed ---> FAILED
//  failure,  |    (Assign) |  +------- workflow cancelled, dependency cancelled -------> CANCELLED
//  worker    |             v
//  lost      +-------- DISPATCHED ---- succeeded ------------------------------------> DONE
//  (backoff)               |    \----- final failure (not retryable, out of attempts) -> FAILED
//                          | stop task / cancel workflow
//                          v
//                      CANCELLING ---- the worker cancelled it, failed it or was lost -> CANCELLED
//
// DONE, FAILED and CANCELLED are terminal. A FAILED or CANCELLED task ends its PENDING
// dependents the same way (Cascade, in TaskEnds). A workflow's status is derived from its
// counts (any FAILED: FAILED; any DISPATCHED/CANCELLING: DISPATCHED; any PENDING: PENDING;
// any CANCELLED: CANCELLED; else DONE); once all its tasks are terminal it is closed
// (LOG_STREAM_CLOSED) and dropped from memory.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "placement/placement.h"
#include "scheduler/deadlines.h"
#include "scheduler/outbox.h"
#include "scheduler/scheduler_metrics.h"
#include "spec/task_spec.h"
#include "state/records.h"

namespace flowmesh::scheduler {

struct Workflow;

struct Task {
  state::TaskRecord rec;
  Workflow* wf = nullptr;     // owning workflow (node-based map: the pointer is stable)
  int missed_heartbeats = 0;  // heartbeats of its worker that did not list this attempt
  spec::TaskSpec spec;           // rec.spec_json, parsed once (the JSON is spec.body)
  nlohmann::json dispatch_spec;  // spec with references resolved and data materialised
  // The result when it arrived inside the event: dependents read it from here, since its
  // write may still be in the group commit when they are prepared.
  nlohmann::json result;
  bool prepared = false;   // dispatch_spec is set
  bool preparing = false;  // its data is being prepared on the preparation thread
  // Schedule hints, kept in rec.schedule_json (beside the spec) so they survive restarts.
  int epoch = -1;  // node_execution_order epoch; -1: unordered
  int epoch_pos = 0;
  bool in_epoch_order = false;
  std::vector<std::string> pinned;  // selected_worker: ids or aliases; empty: any
  int unmet = 0;  // dependencies not yet DONE
  Deadlines::Id retry_timer = 0;
  // De-duplication (see dedup.h).
  int64_t result_size = 0;
  std::string dedup_key;
  bool deterministic = false;
  bool dedup_leader = false;  // runs for the twins that joined it
  bool dedup_joined = false;  // waits for its running twin
  bool dedup_bypass = false;  // its twin failed: runs on its own
  // Placement (see placement_queue.h).
  uint64_t handle = 0;  // its id in the placer while queued or placed there; 0: none
  double admitted_mono = 0;  // when it entered the placer's queue (monotonic s; 0: not there)
  std::string batch_key;
  placement::Category category = placement::Category::kOther;
};

struct Workflow {
  state::WorkflowRecord rec;
  bool durable = false;
  std::array<int, 6> counts{};  // tasks per TaskState, kept as states change
  std::vector<int> epoch_open;  // unfinished tasks per epoch
  // The first epoch with unfinished tasks; tasks of later epochs wait.
  int current_epoch() const;
};

class TaskGraph {
 public:
  // Called by SetState: a task leaves PENDING (so it leaves the placer's queue), and a
  // de-duplication leader ends without a result (its joiners run on their own).
  struct Hooks {
    std::function<void(Task&)> left_pending;
    std::function<void(Task&)> leader_ended_without_result;
  };

  TaskGraph(Outbox* outbox, const TimeSource* time) : outbox_(outbox), time_(time) {}
  void SetHooks(Hooks hooks) { hooks_ = std::move(hooks); }
  // Counts each task that reaches a terminal state (null: none). Set before use.
  void SetMetrics(SchedulerMetrics* metrics) { metrics_ = metrics; }

  Task* Find(const std::string& task_id);
  const Task* Find(const std::string& task_id) const;
  Workflow* FindWorkflow(const std::string& workflow_id);
  // Adds a workflow and its tasks (counts, epochs and unmet dependencies set from the
  // tasks' records). Tasks with all dependencies DONE and PENDING are not queued: the
  // caller decides when (after the submission is durable).
  Workflow& Add(Workflow wf, std::vector<Task> tasks);
  // Drops a workflow and its tasks from memory.
  void Drop(const std::string& workflow_id);
  size_t workflows() const { return workflows_.size(); }
  // Tasks in memory in a state (terminal ones only until their workflow is dropped).
  int64_t count(state::TaskState s) const { return live_[static_cast<int>(s)]; }
  std::vector<std::string> WorkflowIds() const;

  // The one place task states change.
  void SetState(Task& t, state::TaskState to);
  // Re-derives the workflow's status; persists it when it changed; closes and drops the
  // workflow when every task is terminal (the task references then dangle).
  void RefreshWorkflow(const std::string& workflow_id);
  // A DONE task: dependents whose dependencies are all DONE become ready.
  void ReleaseDependents(const Task& t);

  // Whether epoch order lets the task go now.
  bool EpochAllows(const Task& t) const;
  // Reads the schedule hints of a task's record (rec.schedule_json).
  static void LoadHints(Task& t);
  static std::string WorkflowStatus(const std::array<int, 6>& counts);

  // The ready queue: tasks whose dependencies are met, not yet in the placer.
  void MarkReady(const std::string& task_id);
  std::deque<std::string>& ready() { return ready_; }
  // Set when something may now be dispatched; the loop runs dispatch until it is clear.
  void RequestDispatch() { dispatch_needed_ = true; }
  bool TakeDispatchRequest() {
    bool was = dispatch_needed_;
    dispatch_needed_ = false;
    return was;
  }

 private:
  static void CountEpoch(Workflow& wf, const Task& t);

  Outbox* outbox_;
  const TimeSource* time_;
  Hooks hooks_;
  SchedulerMetrics* metrics_ = nullptr;
  std::array<int64_t, 6> live_{};  // tasks in memory per TaskState
  std::unordered_map<std::string, Task> tasks_;
  std::unordered_map<std::string, Workflow> workflows_;
  std::deque<std::string> ready_;
  bool dispatch_needed_ = false;
};

}  // namespace flowmesh::scheduler
