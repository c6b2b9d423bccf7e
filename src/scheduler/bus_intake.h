// What arrives on the events stream, parsed and routed: task events (idempotent per
// attempt: anything about another attempt or from another worker is stale and dropped),
// worker up/down, the local supervisor's stack workers and command results. The "_" keys
// of task updates are for the fabric only: they go to InternalUpdates, never into the
// stored update or an event. Malformed
// messages are dropped with a warning; they never stop the loop. Loop-owned.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "common/clock.h"
#include "scheduler/counters.h"
#include "scheduler/internal_updates.h"
#include "scheduler/liveness.h"
#include "scheduler/node_commands.h"
#include "scheduler/outbox.h"
#include "scheduler/task_ends.h"
#include "scheduler/task_graph.h"

namespace flowmesh::scheduler {

class BusIntake {
 public:
  BusIntake(TaskGraph* graph, Liveness* liveness, TaskEnds* ends, NodeCommands* nodes,
            Outbox* outbox, InternalUpdates* internal, Counters* counters, const TimeSource* time)
      : graph_(graph), liveness_(liveness), ends_(ends), nodes_(nodes), outbox_(outbox),
        internal_(internal), counters_(counters), time_(time) {}

  // One message of the events stream (its payload).
  void Apply(const std::string& payload);

 private:
  void OnTaskEvent(const nlohmann::json& m);

  TaskGraph* graph_;
  Liveness* liveness_;
  TaskEnds* ends_;
  NodeCommands* nodes_;
  Outbox* outbox_;
  InternalUpdates* internal_;
  Counters* counters_;
  const TimeSource* time_;
};

}  // namespace flowmesh::scheduler
