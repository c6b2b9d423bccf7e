// Dispatch: takes ready tasks off the graph's ready queue, prepares each once (resolves
// references to upstream results, evaluates its condition, materialises its data — dataset
// reads and fetches on the preparation thread so the loop never blocks on I/O — and asks
// Dedup whether it needs to run at all), admits it into the placer once its epoch allows,
// and carries out the placer's placements: DISPATCHED, capacity held on the worker, one
// dispatch message per task to the worker's node stream. Loop-owned.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

#include "cas/content_store.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "common/status.h"
#include "dataflow/dataflow.h"
#include "scheduler/counters.h"
#include "scheduler/dedup.h"
#include "scheduler/outbox.h"
#include "scheduler/placement_queue.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/task_ends.h"
#include "scheduler/task_graph.h"
#include "scheduler/worker_registry.h"

namespace flowmesh::scheduler {

class Dispatcher {
 public:
  struct Deps {
    TaskGraph* graph;
    PlacementQueue* queue;
    WorkerRegistry* workers;
    TaskEnds* ends;
    Dedup* dedup;
    Outbox* outbox;
    cas::ContentStore* content;  // upstream results not kept in memory
    EventLoop* loop;          // the scheduler loop
    EventLoop* prepare_loop;  // dataset reads and fetches
    Counters* counters;
    const TimeSource* time;
    SchedulerMetrics* metrics;
  };
  Dispatcher(Deps deps, std::string data_dir) : d_(deps), data_dir_(std::move(data_dir)) {}

  // Names the supplier of a worker at dispatch ("" none); set before the loop starts.
  void SetSupplierResolver(std::function<std::string(const std::string&, const std::string&)> r) {
    supplier_resolver_ = std::move(r);
  }

  // One pass: admits what is ready into the placer and carries out its placements.
  void Pass();

 private:
  // Admits one ready task (prepares it first). False when it must wait in the queue.
  bool Admit(const std::string& task_id);
  void Assign(Task& t, Worker& w);
  dataflow::Upstream UpstreamOf(const Task& t);
  // Evaluates the task's condition; when it is unmet (skipped) or broken (failed) the
  // task ends here and false is returned.
  bool ConditionAllows(Task& t, const dataflow::Upstream& up);
  // Prepares on the loop; false when the task ended (it may have been dropped).
  bool Prepare(Task& t);
  static bool NeedsOffLoopPreparation(const Task& t);
  void StartPreparation(Task& t);
  bool FinishPreparation(Task& t, Result<nlohmann::json> prepared);

  Deps d_;
  std::string data_dir_;
  std::function<std::string(const std::string&, const std::string&)> supplier_resolver_;
};

}  // namespace flowmesh::scheduler
