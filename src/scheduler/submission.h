// Submissions: a parsed workflow becomes records (workflow, tasks with their dependency
// edges and schedule hints, TASK_SUBMITTED events) committed in one transaction; the
// reply (a typed SubmitReply; the API renders it) is sent and the workflow's first tasks
// made ready only once that commit is durable. Loop-owned.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/event_loop.h"
#include "common/status.h"
#include "scheduler/counters.h"
#include "scheduler/event_hub.h"
#include "scheduler/outbox.h"
#include "scheduler/task_graph.h"
#include "spec/workflow.h"
#include "state/store.h"

namespace flowmesh::scheduler {

struct SubmitRequest {
  spec::WorkflowDef def;
  std::string source_text;
  std::string format = "native";
  std::string org_id = state::kDefaultOrg;
  std::string owner_id = state::kDefaultOwner;
};

// One task of an accepted workflow, as it stood when the workflow became durable.
struct SubmittedTask {
  std::string task_id;
  state::TaskState status = state::TaskState::kPending;
  std::string assigned_worker;  // empty: none
  std::vector<std::string> waiting_on;  // dependencies not yet DONE
  std::vector<std::string> depends_on;
  int attempts = 0;
  int max_attempts = 0;
  std::string graph_node_name;
};

struct SubmitReply {
  std::string workflow_id;
  std::vector<SubmittedTask> tasks;
};

using SubmitCallback = std::function<void(Result<SubmitReply>)>;

class Submission {
 public:
  Submission(TaskGraph* graph, Outbox* outbox, state::Store* store, EventHub* hub,
             EventLoop* loop, Counters* counters, const TimeSource* time)
      : graph_(graph), outbox_(outbox), store_(store), hub_(hub), loop_(loop),
        counters_(counters), time_(time) {}

  void Submit(SubmitRequest req, SubmitCallback done);

 private:
  std::vector<state::TaskRecord> TaskRecords(const SubmitRequest& req, const state::WorkflowRecord& wf);
  void OnDurable(const std::string& wf_id, const Status& s, const SubmitCallback& done);
  SubmittedTask Summary(const Task& t) const;

  TaskGraph* graph_;
  Outbox* outbox_;
  state::Store* store_;
  EventHub* hub_;
  EventLoop* loop_;
  Counters* counters_;
  const TimeSource* time_;
};

}  // namespace flowmesh::scheduler
