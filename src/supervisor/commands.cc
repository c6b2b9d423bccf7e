// The node stream: dispatches and interrupts relayed to workers, and stack commands
// (start, stop, restart, remove workers; shutdown) carried out here.
#include <filesystem>

#include "common/ids.h"
#include "common/log.h"
#include "supervisor/supervisor_impl.h"

namespace flowmesh::supervisor {

void Supervisor::Impl::HandleBatch(const std::vector<bus::Message>& batch) {
  for (const auto& message : batch) {
    json body = json::parse(message.payload, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      FM_LOG_WARN("ignoring malformed node-stream entry {}", message.id);
      continue;
    }
    std::string kind = JsonString(body, "kind");
    if (kind == "dispatch") {
      Dispatch(body);
    } else if (kind == "interrupt") {
      Interrupt(body);
    } else if (kind == "start_worker" || kind == "stop_worker" || kind == "remove_worker" ||
               kind == "shutdown") {
      Command(kind, body);
    } else {
      FM_LOG_WARN("ignoring node-stream entry {} of kind '{}'", message.id, kind);
    }
  }
}

std::shared_ptr<Connection> Supervisor::Impl::ConnectionOf(const std::string& worker_id) {
  MutexLock lock(mu);
  auto it = workers.find(worker_id);
  return it == workers.end() ? nullptr : it->second.connection;
}

void Supervisor::Impl::Dispatch(const json& body) {
  std::string worker_id = JsonString(body, "worker_id");
  std::string task_id = JsonString(body, "task_id");
  int attempt = body.value("attempt", 1);
  v1::SupervisorMessage message;
  v1::TaskAssignment* task = message.mutable_task();
  task->set_task_id(task_id);
  task->set_workflow_id(JsonString(body, "workflow_id"));
  task->set_attempt(attempt);
  task->set_task_type(JsonString(body, "task_type"));
  json spec = body.contains("spec") && body["spec"].is_object() ? body["spec"] : json::object();
  task->set_spec_json(spec.dump(-1, ' ', false, json::error_handler_t::replace));
  if (body.contains("spec_version") && body["spec_version"].is_number_integer()) {
    task->set_spec_version(body["spec_version"].get<int32_t>());
  }
  if (body.contains("timeout_s") && body["timeout_s"].is_number()) {
    task->set_timeout_s(body["timeout_s"].get<double>());
  }
  auto connection = ConnectionOf(worker_id);
  {
    // Track before writing so a fast terminal event cannot precede the bookkeeping.
    MutexLock lock(mu);
    auto it = workers.find(worker_id);
    if (it != workers.end()) it->second.running[Key(task_id, attempt)] = {task_id, attempt};
  }
  if (connection && connection->Write(message)) return;
  MutexLock lock(mu);
  auto it = workers.find(worker_id);
  if (it != workers.end()) it->second.running.erase(Key(task_id, attempt));
  EmitTaskEvent(worker_id, task_id, attempt, "TASK_FAILED",
                "worker " + worker_id + " is not connected on node " + config.node_alias, true,
                json::object());
}

void Supervisor::Impl::Interrupt(const json& body) {
  std::string worker_id = JsonString(body, "worker_id");
  std::string task_id = JsonString(body, "task_id");
  int attempt = body.value("attempt", 1);
  v1::SupervisorMessage message;
  message.mutable_interrupt()->set_task_id(task_id);
  message.mutable_interrupt()->set_attempt(attempt);
  auto connection = ConnectionOf(worker_id);
  if (connection && connection->Write(message)) return;
  // The attempt cannot be running there: confirm the cancellation so it does not hang.
  MutexLock lock(mu);
  EmitTaskEvent(worker_id, task_id, attempt, "TASK_CANCELLED",
                "worker " + worker_id + " is not connected on node " + config.node_alias, false,
                json::object());
}

void Supervisor::Impl::Command(const std::string& kind, const json& body) {
  std::string command_id = JsonString(body, "command_id");
  MutexLock lock(mu);
  if (!command_id.empty() && !seen_commands.insert(command_id).second) return;  // redelivery
  std::string name = JsonString(body, "name");
  if (kind == "shutdown") {
    shutdown_commands.push_back(command_id);
    for (auto& [n, w] : managed) BeginStopLocked(w, "supervisor shutdown");
    EmitSnapshotLocked();
    cv.notify_all();
    return;
  }
  if (!ValidName(name)) {
    EmitCommandResult(command_id, false, "invalid worker name '" + name + "'");
    return;
  }
  auto it = managed.find(name);
  if (kind == "start_worker") {
    if (it == managed.end()) {
      it = managed.emplace(name, ManagedWorker{}).first;
      it->second.name = name;
    }
    ManagedWorker& w = it->second;
    if (body.contains("worker_config") && body["worker_config"].is_object()) {
      w.worker_config = body["worker_config"];
    }
    if (w.pid > 0 && !w.stopping) {
      EmitCommandResult(command_id, true, "worker " + name + " is already running");
      return;
    }
    if (w.pid > 0) {
      // Still shutting down from an earlier stop: start it again once it is gone.
      w.remove_after_stop = false;
      w.stopping = false;
      w.restart_at = Clock::now();
      w.crash_restart = false;
      w.restart_times.clear();
      EmitCommandResult(command_id, true, "worker " + name + " will restart");
      return;
    }
    w.restart_times.clear();
    w.restarts = 0;
    Status s = SpawnLocked(w);
    EmitSnapshotLocked();
    EmitCommandResult(command_id, s.ok(), s.ok() ? "started " + name + " (pid " +
                                                       std::to_string(w.pid) + ")"
                                                 : s.message());
    return;
  }
  if (it == managed.end()) {
    EmitCommandResult(command_id, false, "no worker named " + name);
    return;
  }
  ManagedWorker& w = it->second;
  bool remove = kind == "remove_worker";
  if (w.pid <= 0) {
    w.restart_at.reset();
    w.status = w.status == "EXITED" && !remove ? "EXITED" : "STOPPED";
    if (remove) managed.erase(it);
    EmitSnapshotLocked();
    EmitCommandResult(command_id, true, (remove ? "removed " : "stopped ") + name);
    return;
  }
  w.remove_after_stop = remove;
  w.pending_commands.push_back(command_id);
  BeginStopLocked(w, remove ? "removed" : "stopped");
  EmitSnapshotLocked();
}

}  // namespace flowmesh::supervisor
