// Nodes and supervisor commands: the registered nodes (which one is local), the worker
// processes the local supervisor reports (stack workers), and commands to it (start,
// stop, remove a worker), each answered by a command_result on the bus or failed after
// the command timeout. Also the elasticity of native workers on the local node, which
// works through those commands. Loop-owned, except the snapshots (thread-safe copies).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/event_loop.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "placement/placement.h"
#include "scheduler/deadlines.h"
#include "scheduler/outbox.h"
#include "scheduler/worker_registry.h"
#include "state/store.h"

namespace flowmesh::scheduler {

using JsonCallback = std::function<void(Result<nlohmann::json>)>;

class NodeCommands {
 public:
  struct Deps {
    state::Store* store;
    Outbox* outbox;
    Deadlines* deadlines;
    EventLoop* loop;
    WorkerRegistry* workers;
    placement::Placer* placer;
    const TimeSource* time;
  };
  struct Config {
    double command_timeout_s = 15.0;
    placement::ElasticityConfig elasticity;
    nlohmann::json elastic_worker_config = nlohmann::json::object();
    double node_grace_s = 5.0;  // a node silent this long (no heartbeat) is DOWN
  };
  NodeCommands(Deps deps, Config config) : d_(deps), config_(std::move(config)) {}

  // Loads the registered nodes (the newest local one is the local node).
  Status Recover();
  // Registers (or refreshes) a node; answers once it is durable.
  void Register(const nlohmann::json& body, JsonCallback done);
  // A heartbeat of the node's supervisor: it is UP.
  void Seen(const std::string& node_id);
  // Marks DOWN every UP node silent past the grace period. Run by the watchdog.
  void CheckSilent();
  // kind: start_worker | stop_worker, to the supervisor of any registered node; answers
  // NotFound for a node no supervisor of ours runs (never registered, or registered through
  // the published route alone: no grpc_address, no heartbeat), Unavailable for a DOWN one.
  void NodeWorkerCommand(const std::string& node_id, const std::string& kind,
                         const std::string& name, JsonCallback done);
  // kind: start_worker | start | stop | remove_worker, to the local node's supervisor. Waits
  // for the local node to register when none has yet. An empty name for start_worker
  // picks the next free "<worker_type>-N".
  void StackWorkerCommand(const std::string& kind, const std::string& name, nlohmann::json body,
                          JsonCallback done);
  // Bus messages: the local supervisor's worker processes, and a command's outcome.
  void OnStackWorkers(const nlohmann::json& m);
  void OnCommandResult(const nlohmann::json& m);
  // Asks for one more worker while the queue outgrows free capacity; removes idle ones it
  // started. Run by the watchdog.
  void Elasticity();

  const std::string& local_node() const { return local_node_; }
  nlohmann::json StackSnapshot() const;
  std::string LocalNodeSnapshot() const;
  // {node_id: {alias, status: UP|DOWN, last_seen (epoch s), address}} of every registered node.
  nlohmann::json NodesSnapshot() const;

 private:
  struct Node {
    state::NodeRecord rec;
    bool local = false;
    nlohmann::json stack_workers = nlohmann::json::array();
    bool up = false;          // heard from within the grace period
    bool supervised = false;  // a supervisor of ours runs it (and takes commands)
    int64_t heard_mono = 0;   // last registration or heartbeat (monotonic us)
  };
  struct PendingCommand {
    JsonCallback done;
    Deadlines::Id timer = 0;
    std::string kind, name, node_id;
  };

  void SendLocalCommand(const std::string& kind, const std::string& name, nlohmann::json body,
                        JsonCallback done);
  void SendCommand(const std::string& node_id, const std::string& kind, const std::string& name,
                   nlohmann::json body, JsonCallback done);
  void SetUp(Node& node, bool up);
  void RefreshNodesSnapshot();
  std::string NextWorkerName(const std::string& type);
  void BecomeLocal(const std::string& node_id);

  Deps d_;
  Config config_;
  std::map<std::string, Node> nodes_;
  std::string local_node_;
  std::map<std::string, PendingCommand> commands_;
  std::vector<std::function<void()>> waiting_for_local_node_;
  int elastic_starting_ = 0;             // start_worker commands in flight
  std::set<std::string> elastic_names_;  // stack workers the elasticity started
  mutable Mutex snap_mu_;
  nlohmann::json stack_snapshot_ FM_GUARDED_BY(snap_mu_) = nlohmann::json::array();
  std::string local_node_snapshot_ FM_GUARDED_BY(snap_mu_);
  nlohmann::json nodes_snapshot_ FM_GUARDED_BY(snap_mu_) = nlohmann::json::object();
};

}  // namespace flowmesh::scheduler
