#include "scheduler/dispatcher.h"

#include <algorithm>
#include <deque>
#include <vector>

#include "bus/bus.h"

namespace flowmesh::scheduler {

using nlohmann::json;
using state::TaskState;

void Dispatcher::Pass() {
  std::deque<std::string>& ready = d_.graph->ready();
  std::deque<std::string> waiting;
  while (!ready.empty()) {
    std::string id = std::move(ready.front());
    ready.pop_front();
    if (!Admit(id)) waiting.push_back(std::move(id));
  }
  // Tasks that cannot go yet keep their place for the next pass.
  while (!waiting.empty()) {
    ready.push_front(std::move(waiting.back()));
    waiting.pop_back();
  }
  int64_t pass_start = MonoMicros();  // the decision's own cost: real time, not the clock's
  std::vector<PlacementQueue::Decision> decisions = d_.queue->Schedule();
  d_.metrics->placement_pass.Observe(static_cast<double>(MonoMicros() - pass_start) / 1e6);
  for (auto& decision : decisions) {
    // One batch: its dispatch messages go to the node stream in one append.
    for (Task* t : decision.tasks) Assign(*t, *decision.worker);
  }
}

bool Dispatcher::Admit(const std::string& id) {
  Task* found = d_.graph->Find(id);
  if (found == nullptr || found->rec.status != TaskState::kPending || found->retry_timer != 0 ||
      found->unmet > 0 || found->handle != 0 || found->dedup_joined) {
    return true;  // not for the queue (now): drop the entry
  }
  Task& t = *found;
  if (!d_.graph->EpochAllows(t)) return false;
  if (!t.prepared) {
    if (t.preparing) return false;
    if (NeedsOffLoopPreparation(t)) {
      StartPreparation(t);  // may end the task (condition)
      Task* again = d_.graph->Find(id);
      return !(again != nullptr && again->preparing);
    }
    if (!Prepare(t)) return true;  // ended (skipped or failed)
  }
  d_.queue->Enqueue(t);
  return true;
}

void Dispatcher::Assign(Task& t, Worker& w) {
  d_.graph->SetState(t, TaskState::kDispatched);
  t.rec.attempts += 1;
  t.rec.assigned_worker = w.id;
  if (supplier_resolver_) t.rec.supplier_id = supplier_resolver_(w.id, w.info.dump());
  t.rec.dispatched_ts = d_.time->WallSeconds();
  t.rec.started_ts = 0;
  t.missed_heartbeats = 0;
  if (t.in_epoch_order) d_.graph->RequestDispatch();  // the next one in its epoch may go now
  d_.workers->Hold(w, t.rec.task_id, t.spec.demand);
  d_.counters->dispatched++;
  if (t.admitted_mono > 0) {
    d_.metrics->placement_latency.Observe(std::max(0.0, d_.time->MonoSeconds() - t.admitted_mono));
    t.admitted_mono = 0;
  }
  d_.outbox->PutTask(t.rec);
  d_.outbox->Emit("TASK_DISPATCHED", t.rec, "", false, json{{"attempt", t.rec.attempts}});
  d_.outbox->Send(bus::NodeStream(w.node_id), json{{"kind", "dispatch"},
                                                   {"worker_id", w.id},
                                                   {"task_id", t.rec.task_id},
                                                   {"workflow_id", t.rec.workflow_id},
                                                   {"attempt", t.rec.attempts},
                                                   {"task_type", t.rec.task_type},
                                                   {"spec", t.dispatch_spec},
                                                   {"spec_version", spec::kTaskSpecVersion},
                                                   {"timeout_s", t.spec.timeout_seconds}});
  d_.graph->RefreshWorkflow(t.rec.workflow_id);
}

// The results of a task's dependencies by node name; a skipped one reads {"skipped": true}.
dataflow::Upstream Dispatcher::UpstreamOf(const Task& t) {
  dataflow::Upstream up;
  for (const auto& dep_id : t.rec.depends_on) {
    const Task* d = d_.graph->Find(dep_id);
    if (d == nullptr) continue;
    json result = json::object();
    if (!d->result.is_null()) {
      result = d->result;
    } else if (!d->rec.result_digest.empty()) {
      if (auto blob = d_.content->Get(d->rec.result_digest); blob.ok()) {
        result = json::parse(*blob, nullptr, false);
        if (result.is_discarded()) result = json::object();
      }
    }
    up[d->rec.graph_node_name] = std::move(result);
  }
  return up;
}

bool Dispatcher::Prepare(Task& t) {
  dataflow::Upstream up = UpstreamOf(t);
  if (!ConditionAllows(t, up)) return false;
  dataflow::DataOptions opts;
  opts.data_dir = data_dir_;
  opts.retrieval_source = t.spec.task_type == "data_retrieval";
  return FinishPreparation(t, dataflow::PrepareTaskSpec(t.spec.body, up, opts));
}

// Datasets are read from files or fetched over the network: prepare those on the
// preparation thread. The task keeps its place in the ready queue meanwhile.
bool Dispatcher::NeedsOffLoopPreparation(const Task& t) { return t.spec.reads_dataset; }

void Dispatcher::StartPreparation(Task& t) {
  dataflow::Upstream up = UpstreamOf(t);
  if (!ConditionAllows(t, up)) return;
  t.preparing = true;
  dataflow::DataOptions opts;
  opts.data_dir = data_dir_;
  opts.retrieval_source = t.spec.task_type == "data_retrieval";
  d_.prepare_loop->Post([this, id = t.rec.task_id, spec = t.spec.body, up = std::move(up), opts] {
    auto prepared = dataflow::PrepareTaskSpec(spec, up, opts);
    d_.loop->Post([this, id, prepared = std::move(prepared)]() mutable {
      Task* task = d_.graph->Find(id);
      if (task == nullptr || task->rec.status != TaskState::kPending) return;
      task->preparing = false;
      if (FinishPreparation(*task, std::move(prepared))) d_.graph->RequestDispatch();
    });
  });
}

bool Dispatcher::FinishPreparation(Task& t, Result<json> prepared) {
  if (!prepared.ok()) {
    d_.ends->FailBeforeDispatch(t, prepared.status().message());
    return false;
  }
  t.dispatch_spec = std::move(prepared).value();
  t.prepared = true;
  return d_.dedup->Consider(t);
}

bool Dispatcher::ConditionAllows(Task& t, const dataflow::Upstream& up) {
  if (!t.spec.condition_error.empty()) {
    d_.ends->FailBeforeDispatch(t, "condition: " + t.spec.condition_error);
    return false;
  }
  if (!t.spec.condition) return true;
  auto met = dataflow::ConditionMet(*t.spec.condition, up);
  if (!met.ok()) {
    d_.ends->FailBeforeDispatch(t, "condition: " + met.status().message());
    return false;
  }
  if (!*met) {
    d_.ends->Skip(t);
    return false;
  }
  return true;
}

}  // namespace flowmesh::scheduler
