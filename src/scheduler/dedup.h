// De-duplication of deterministic operators: operator fingerprints, stored results, and
// single flight.
//
// Once a task's inputs are resolved it gets its fingerprint (the operator and its
// resolved inputs, by digest) and a lineage row. A deterministic task, with dedup on, then
// either completes at once from a stored result of the same fingerprint in its scope
// (tenant: within its organisation; global: any), joins a running twin (single flight:
// it waits, and completes with the twin's result), or runs as the leader of the twins
// that arrive while it runs. A leader that ends without a result (failed, cancelled)
// releases its joiners to run on their own. Loop-owned.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/event_loop.h"
#include "scheduler/counters.h"
#include "scheduler/outbox.h"
#include "scheduler/task_graph.h"
#include "state/store.h"

namespace flowmesh::scheduler {

class Dedup {
 public:
  // scope: "off", "tenant" or "global".
  Dedup(std::string scope, TaskGraph* graph, Outbox* outbox, state::Store* store,
        EventLoop* loop, Counters* counters, const TimeSource* time)
      : scope_(std::move(scope)), graph_(graph), outbox_(outbox), store_(store), loop_(loop),
        counters_(counters), time_(time) {}

  // A prepared task (dispatch_spec set): fingerprints it, writes its lineage, and decides.
  // False when it is not to be dispatched now (completed from a stored result, which may
  // drop its workflow, or joined a running twin).
  bool Consider(Task& t);
  // After a restart, a deterministic task still running leads its flight again, so twins
  // that arrive meanwhile join it instead of running.
  void Restore(Task& t);
  // The leader succeeded (its result digest set): store the result under its key and
  // complete the joiners with it.
  void FinishFlight(Task& t);
  // The leader ended without a result: its joiners run on their own.
  void ReleaseFlight(Task& t);

  // Flights in the air (for tests and metrics).
  size_t flights() const { return flights_.size(); }

 private:
  struct Flight {
    std::string leader;
    std::vector<std::string> joiners;
  };
  struct Reusable {
    std::string digest;
    int64_t size = 0;
    nlohmann::json result;       // the result itself while its blob may be uncommitted
    std::string source_task_id;  // internal only: never shown to the reuser
  };

  std::string KeyOf(const Task& t) const;
  nlohmann::json UpstreamInputs(const Task& t) const;
  void WriteLineage(const Task& t, const nlohmann::json& inputs, bool reused);
  std::optional<Reusable> FindReusable(const std::string& key);
  void CompleteReused(Task& t, const Reusable& r);
  void Join(Task& t, const Flight& flight);
  void ReleaseJoiners(const std::vector<std::string>& joiners);

  std::string scope_;
  TaskGraph* graph_;
  Outbox* outbox_;
  state::Store* store_;
  EventLoop* loop_;
  Counters* counters_;
  const TimeSource* time_;
  std::unordered_map<std::string, Flight> flights_;
  // Results whose operator_results row is still in the group commit (a lookup in the store
  // could miss them).
  std::unordered_map<std::string, Reusable> committing_;
};

}  // namespace flowmesh::scheduler
