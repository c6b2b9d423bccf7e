#include "scheduler/node_commands.h"

#include "bus/bus.h"
#include "common/ids.h"
#include "common/json_util.h"
#include "common/log.h"

namespace flowmesh::scheduler {

using nlohmann::json;

Status NodeCommands::Recover() {
  FM_ASSIGN_OR_RETURN(auto nodes, d_.store->ListNodes());
  for (auto& n : nodes) {
    Node node;
    node.rec = n;
    json info = json::parse(n.info_json, nullptr, false);
    node.local = info.is_object() && JsonOr(info, "local", false);
    if (node.local &&
        (local_node_.empty() || n.registered_at >= nodes_[local_node_].rec.registered_at)) {
      local_node_ = n.node_id;
    }
    nodes_[n.node_id] = std::move(node);
  }
  RefreshNodesSnapshot();  // every node DOWN until it heartbeats (or registers) again
  MutexLock lock(snap_mu_);
  local_node_snapshot_ = local_node_;
  return Status::Ok();
}

void NodeCommands::Register(const json& body, JsonCallback done) {
  std::string id = JsonOr(body, "node_id", "");
  if (id.rfind("nod-", 0) != 0) id = NewId("nod");
  Node& node = nodes_[id];
  node.local = JsonOr(body, "local", false);
  node.rec.node_id = id;
  node.rec.alias = JsonOr(body, "alias", id);
  node.rec.info_json = body.dump();
  if (node.rec.registered_at == 0) node.rec.registered_at = d_.time->WallSeconds();
  node.rec.last_seen = d_.time->WallSeconds();
  node.heard_mono = d_.time->MonoMicros();
  // Our supervisors say where their workers connect; the published route's nodes do not.
  node.supervised = node.supervised || body.contains("grpc_address");
  if (!node.up) FM_LOG_INFO("node {} ({}) is UP", id, node.rec.alias);
  node.up = true;
  RefreshNodesSnapshot();
  state::NodeRecord rec = node.rec;
  bool local = node.local;
  d_.store->Write([rec](state::WriteTxn& txn) { return txn.PutNode(rec); },
                  [this, id, local, done](const Status& st) {
                    d_.loop->Post([this, id, local, st, done] {
                      if (!st.ok()) {
                        done(st);
                        return;
                      }
                      if (local) BecomeLocal(id);
                      FM_LOG_INFO("node {} registered{}", id, local ? " (local)" : "");
                      done(json{{"node_id", id}});
                    });
                  });
}

void NodeCommands::Seen(const std::string& node_id) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return;
  Node& node = it->second;
  node.supervised = true;
  node.heard_mono = d_.time->MonoMicros();
  node.rec.last_seen = d_.time->WallSeconds();
  if (!node.up) {
    FM_LOG_INFO("node {} ({}) is heartbeating again: UP", node_id, node.rec.alias);
    SetUp(node, true);
  }
}

void NodeCommands::CheckSilent() {
  int64_t now = d_.time->MonoMicros();
  auto grace = static_cast<int64_t>(config_.node_grace_s * 1e6);
  for (auto& [id, node] : nodes_) {
    if (node.up && now - node.heard_mono > grace) {
      FM_LOG_WARN("node {} ({}) DOWN: no heartbeat for {} s", id, node.rec.alias,
                  config_.node_grace_s);
      SetUp(node, false);
    }
  }
  RefreshNodesSnapshot();  // (last_seen moves with every heartbeat)
}

void NodeCommands::SetUp(Node& node, bool up) {
  node.up = up;
  state::NodeRecord rec = node.rec;  // last_seen persisted on each change of status
  d_.store->Write([rec](state::WriteTxn& txn) { return txn.PutNode(rec); });
  RefreshNodesSnapshot();
}

void NodeCommands::RefreshNodesSnapshot() {
  json out = json::object();
  for (const auto& [id, node] : nodes_) {
    json info = json::parse(node.rec.info_json, nullptr, false);
    std::string address = info.is_object() ? JsonOr(info, "address", "") : "";
    out[id] = {{"alias", node.rec.alias},
               {"status", node.up ? "UP" : "DOWN"},
               {"last_seen", node.rec.last_seen},
               {"address", address},
               {"local", node.local}};
  }
  MutexLock lock(snap_mu_);
  nodes_snapshot_ = std::move(out);
}

json NodeCommands::NodesSnapshot() const {
  MutexLock lock(snap_mu_);
  return nodes_snapshot_;
}

void NodeCommands::NodeWorkerCommand(const std::string& node_id, const std::string& kind,
                                     const std::string& name, JsonCallback done) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || !it->second.supervised) {
    done(NotFound("node " + node_id + (it == nodes_.end() ? " not found"
                                                          : " is not managed by a supervisor")));
    return;
  }
  if (!it->second.up) {
    done(Unavailable("node " + node_id + " (" + it->second.rec.alias + ") is DOWN"));
    return;
  }
  SendCommand(node_id, kind, name, json::object(), std::move(done));
}

void NodeCommands::BecomeLocal(const std::string& node_id) {
  local_node_ = node_id;
  {
    MutexLock lock(snap_mu_);
    local_node_snapshot_ = node_id;
  }
  auto waiting = std::move(waiting_for_local_node_);
  waiting_for_local_node_.clear();
  for (auto& fn : waiting) fn();
}

void NodeCommands::StackWorkerCommand(const std::string& kind, const std::string& name, json body,
                                      JsonCallback done) {
  std::string target = name;
  if (kind == "start_worker" && target.empty()) {
    target = NextWorkerName(JsonOr(JsonOr(body, "worker_config", json::object()), "worker_type", "cpu"));
  }
  SendLocalCommand(kind, target, std::move(body), std::move(done));
}

void NodeCommands::SendLocalCommand(const std::string& kind, const std::string& name, json body,
                                    JsonCallback done) {
  if (local_node_.empty()) {
    waiting_for_local_node_.push_back(
        [this, kind, name, body, done] { SendLocalCommand(kind, name, body, done); });
    return;
  }
  SendCommand(local_node_, kind, name, std::move(body), std::move(done));
}

void NodeCommands::SendCommand(const std::string& node_id, const std::string& kind,
                               const std::string& name, json body, JsonCallback done) {
  std::string command_id = NewId("cmd");
  json msg = {{"kind", kind}, {"command_id", command_id}, {"name", name}};
  if (kind == "start_worker") msg["worker_config"] = JsonOr(body, "worker_config", json::object());
  PendingCommand cmd;
  cmd.done = std::move(done);
  cmd.kind = kind;
  cmd.name = name;
  cmd.node_id = node_id;
  cmd.timer = d_.deadlines->After(config_.command_timeout_s, [this, command_id] {
    auto it = commands_.find(command_id);
    if (it == commands_.end()) return;
    auto cb = std::move(it->second.done);
    commands_.erase(it);
    cb(DeadlineExceeded("the node did not answer in time"));
  });
  commands_.emplace(command_id, std::move(cmd));
  d_.outbox->Send(bus::NodeStream(node_id), msg);
}

std::string NodeCommands::NextWorkerName(const std::string& type) {
  std::set<std::string> taken;
  auto nit = nodes_.find(local_node_);
  if (nit != nodes_.end()) {
    for (const auto& w : nit->second.stack_workers) taken.insert(JsonOr(w, "name", ""));
  }
  for (const auto& [id, c] : commands_) taken.insert(c.name);
  for (int i = 1;; ++i) {
    std::string n = type + "-" + std::to_string(i);
    if (!taken.count(n)) return n;
  }
}

void NodeCommands::OnStackWorkers(const json& m) {
  std::string node_id = JsonOr(m, "node_id", "");
  auto nit = nodes_.find(node_id);
  if (nit == nodes_.end()) return;
  nit->second.stack_workers = JsonOr(m, "workers", json::array());
  if (node_id == local_node_) {
    MutexLock lock(snap_mu_);
    stack_snapshot_ = nit->second.stack_workers;
  }
}

void NodeCommands::OnCommandResult(const json& m) {
  std::string id = JsonOr(m, "command_id", "");
  auto it = commands_.find(id);
  if (it == commands_.end()) return;
  PendingCommand cmd = std::move(it->second);
  commands_.erase(it);
  d_.deadlines->Cancel(cmd.timer);
  if (!JsonOr(m, "ok", false)) {
    cmd.done(Status(StatusCode::kFailedPrecondition, JsonOr(m, "detail", std::string("command failed"))));
    return;
  }
  json record = json{{"name", cmd.name}};
  auto nit = nodes_.find(cmd.node_id);
  if (nit != nodes_.end()) {
    for (const auto& w : nit->second.stack_workers) {
      if (JsonOr(w, "name", "") == cmd.name) record = w;
    }
  }
  if (cmd.kind == "remove_worker") record["status"] = "REMOVED";
  cmd.done(record);
}

// Elasticity (off unless configured): ask the local supervisor for one more native worker
// while the queue outgrows free capacity, up to max_workers; remove workers the
// elasticity started once they have been idle past the timeout, down to min_workers.
void NodeCommands::Elasticity() {
  if (!config_.elasticity.enabled || local_node_.empty()) return;
  placement::ElasticityAdvice advice = d_.placer->Advise(config_.elasticity, d_.time->MonoSeconds());
  if (advice.start > 0 && elastic_starting_ == 0) {
    std::string name = NextWorkerName("elastic");
    ++elastic_starting_;
    elastic_names_.insert(name);
    FM_LOG_INFO("elasticity: {} task(s) queued beyond free capacity; starting worker {}",
                d_.placer->queued(), name);
    SendLocalCommand("start_worker", name, json{{"worker_config", config_.elastic_worker_config}},
                     [this, name](Result<json> r) {
                       d_.loop->Post([this, name, ok = r.ok()] {
                         --elastic_starting_;
                         if (!ok) elastic_names_.erase(name);
                       });
                     });
  }
  for (const auto& id : advice.retire) {
    const Worker* w = d_.workers->Find(id);
    if (w == nullptr || w->node_id != local_node_) continue;
    const std::string name = w->name;
    if (!elastic_names_.count(name)) continue;  // only what elasticity started
    elastic_names_.erase(name);
    FM_LOG_INFO("elasticity: worker {} ({}) idle for {} s; removing it", id, name,
                config_.elasticity.idle_timeout_s);
    SendLocalCommand("remove_worker", name, json::object(), [](Result<json>) {});
  }
}

json NodeCommands::StackSnapshot() const {
  MutexLock lock(snap_mu_);
  return stack_snapshot_;
}

std::string NodeCommands::LocalNodeSnapshot() const {
  MutexLock lock(snap_mu_);
  return local_node_snapshot_;
}

}  // namespace flowmesh::scheduler
