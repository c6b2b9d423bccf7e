#include "supervisor/supervisor.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/process.h"
#include "common/thread_annotations.h"
#include "flowmesh/v1/worker.grpc.pb.h"
#include "http/http.h"
#include "supervisor/event_outbox.h"
#include "worker/host_info.h"
#include "worker/worker.h"

namespace flowmesh::supervisor {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using Stream = grpc::ServerReaderWriter<v1::SupervisorMessage, v1::WorkerMessage>;

namespace {

constexpr int kMaxRestartsPerMinute = 5;

// One connected worker stream. The handler thread owns the stream; other threads write
// through Write(), which fails once the handler has returned.
struct Connection {
  std::string worker_id;
  Mutex write_mu;
  bool open FM_GUARDED_BY(write_mu) = true;
  Stream* stream FM_GUARDED_BY(write_mu) = nullptr;  // valid while open

  bool Write(const v1::SupervisorMessage& message) {
    MutexLock lock(write_mu);
    return open && stream->Write(message);
  }
  void Close() {
    MutexLock lock(write_mu);
    open = false;
  }
};

// A worker that called Register (and, once connected, its stream).
struct RegisteredWorker {
  v1::WorkerInfo info;
  std::string token;  // what it registered with; its stream must present the same
  std::shared_ptr<Connection> connection;  // null until Hello
  std::map<std::string, std::pair<std::string, int>> running;  // "id#attempt" -> (id, attempt)
};

// A native worker process this supervisor manages, by name.
struct ManagedWorker {
  std::string name;
  json worker_config = json::object();
  std::string status = "STOPPED";  // STARTING, RUNNING, STOPPED, EXITED
  pid_t pid = 0;
  std::string worker_id;
  std::string token;  // per-process token for Register
  int restarts = 0;
  std::optional<int> exit_code;
  std::deque<Clock::time_point> restart_times;
  std::optional<Clock::time_point> restart_at;  // pending (re)start
  bool crash_restart = false;                   // restart_at was set because it crashed
  bool stopping = false;                        // a stop was requested; don't restart
  bool remove_after_stop = false;
  Clock::time_point kill_at;
  std::vector<std::string> pending_commands;  // command_result once the process is gone
};

std::string Key(const std::string& task_id, int attempt) {
  return task_id + "#" + std::to_string(attempt);
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return name != "." && name != "..";
}

json InfoToJson(const v1::WorkerInfo& info) {
  json gpus = json::array();
  for (const auto& g : info.gpus()) {
    gpus.push_back({{"index", g.index()}, {"name", g.name()}, {"memory_mb", g.memory_mb()}});
  }
  return {{"name", info.name()},
          {"alias", info.alias()},
          {"worker_type", info.worker_type()},
          {"task_types", std::vector<std::string>(info.task_types().begin(), info.task_types().end())},
          {"cpu_cores", info.cpu_cores()},
          {"memory_mb", info.memory_mb()},
          {"gpus", gpus},
          {"cost_per_hour", info.cost_per_hour()},
          {"speed", info.speed() > 0 ? info.speed() : 1.0},
          {"training_speed", info.training_speed() > 0 ? info.training_speed() : (info.speed() > 0 ? info.speed() : 1.0)},
          {"tags", std::vector<std::string>(info.tags().begin(), info.tags().end())},
          {"slots", info.slots()},
          {"pid", info.pid()},
          {"loaded_models",
           std::vector<std::string>(info.loaded_models().begin(), info.loaded_models().end())},
          {"free_sequence_slots", info.free_sequence_slots()}};
}

std::string JsonString(const json& object, const char* key, const std::string& fallback = "") {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

}  // namespace

struct Supervisor::Impl : public v1::WorkerSupervisor::Service {
  SupervisorConfig config;
  std::shared_ptr<bus::Bus> bus;
  EventOutbox outbox;
  worker::HostInfo host;

  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::unique_ptr<bus::StreamConsumer> consumer;
  std::thread monitor_thread;
  std::thread heartbeat_thread;

  mutable Mutex mu;
  std::condition_variable cv;                          // wakes the monitor and heartbeat loops
  std::string node_id FM_GUARDED_BY(mu);
  bool stopping FM_GUARDED_BY(mu) = false;
  bool started FM_GUARDED_BY(mu) = false;
  std::atomic<bool> shutdown_done{false};
  std::map<std::string, RegisteredWorker> workers FM_GUARDED_BY(mu);  // by worker id
  std::map<std::string, ManagedWorker> managed FM_GUARDED_BY(mu);     // by name
  std::set<std::string> seen_commands FM_GUARDED_BY(mu);
  std::vector<std::string> shutdown_commands FM_GUARDED_BY(mu);

  Impl(SupervisorConfig c, std::shared_ptr<bus::Bus> b)
      : config(std::move(c)), bus(std::move(b)), outbox(bus) {
    if (config.worker_binary.empty()) config.worker_binary = ExecutableDir() + "/flowmesh-worker";
    host = worker::DetectHost(true);
    if (config.node_alias.empty()) config.node_alias = host.hostname;
  }

  // ---- outbound messages (call with mu held where ordering with state matters) ----

  void EmitTaskEvent(const std::string& worker_id, const std::string& task_id, int attempt,
                     const std::string& type, const std::string& error, bool retryable,
                     json payload) {
    outbox.Emit({{"kind", "task_event"},
                 {"worker_id", worker_id},
                 {"task_id", task_id},
                 {"attempt", attempt},
                 {"type", type},
                 {"ts", WallSeconds()},
                 {"error", error},
                 {"retryable", retryable},
                 {"payload", std::move(payload)}});
  }

  void EmitWorkerDownLocked(const std::string& worker_id, const std::string& reason)
      FM_REQUIRES(mu) {
    outbox.Emit({{"kind", "worker_down"}, {"node_id", node_id}, {"worker_id", worker_id},
                 {"reason", reason}});
  }

  void EmitCommandResult(const std::string& command_id, bool ok, const std::string& detail) {
    if (command_id.empty()) return;
    outbox.Emit({{"kind", "command_result"}, {"command_id", command_id}, {"ok", ok},
                 {"detail", detail}});
  }

  void EmitSnapshotLocked() FM_REQUIRES(mu) {
    json list = json::array();
    for (const auto& [name, w] : managed) {
      list.push_back({{"name", name},
                      {"status", w.status},
                      {"pid", w.pid},
                      {"worker_id", w.worker_id},
                      {"worker_config", w.worker_config},
                      {"restarts", w.restarts},
                      {"exit_code", w.exit_code ? json(*w.exit_code) : json(nullptr)}});
    }
    outbox.Emit({{"kind", "stack_workers"}, {"node_id", node_id}, {"workers", std::move(list)}});
  }

  // Forgets a registered worker and reports it down (once). Caller holds mu.
  void DropWorkerLocked(const std::string& worker_id, const std::string& reason) FM_REQUIRES(mu) {
    auto it = workers.find(worker_id);
    if (it == workers.end()) return;
    bool was_up = it->second.connection != nullptr;
    if (it->second.connection) it->second.connection->Close();
    workers.erase(it);
    if (was_up) EmitWorkerDownLocked(worker_id, reason);
  }

  // ---- gRPC service ----

  // The worker token of a call: gRPC metadata (every call), else the Register field.
  static std::string TokenOf(const grpc::ServerContext* context, const std::string& fallback) {
    const auto& md = context->client_metadata();
    auto it = md.find(worker::kWorkerTokenMetadata);
    return it == md.end() ? fallback : std::string(it->second.data(), it->second.size());
  }

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                        v1::RegisterReply* reply) override {
    MutexLock lock(mu);
    if (stopping) return {grpc::StatusCode::UNAVAILABLE, "supervisor is stopping"};
    const std::string& name = request->info().name();
    const std::string token = TokenOf(context, request->token());
    auto m = managed.find(name);
    bool managed_with_token = m != managed.end() && !m->second.token.empty();
    if (!config.worker_token.empty() || managed_with_token) {
      // A worker this supervisor started presents its own per-process token; others the
      // node's worker token.
      bool ok = (!config.worker_token.empty() && token == config.worker_token) ||
                (managed_with_token && token == m->second.token);
      if (!ok) return {grpc::StatusCode::UNAUTHENTICATED, "invalid worker token"};
    }
    std::string worker_id = NewId("wkr");
    workers[worker_id].info = request->info();
    workers[worker_id].token = token;
    reply->set_worker_id(worker_id);
    reply->set_node_id(node_id);
    reply->set_root_url(config.root_url);
    reply->set_heartbeat_interval_ms(static_cast<int>(config.heartbeat_interval.count()));
    FM_LOG_INFO("worker {} registered as {} (pid {})", name, worker_id, request->info().pid());
    return grpc::Status::OK;
  }

  grpc::Status Connect(grpc::ServerContext* context, Stream* stream) override {
    v1::WorkerMessage message;
    if (!stream->Read(&message)) return grpc::Status::OK;
    if (!message.has_hello()) {
      return {grpc::StatusCode::FAILED_PRECONDITION, "the first message must be a Hello"};
    }
    const std::string worker_id = message.worker_id();
    auto connection = std::make_shared<Connection>();
    connection->worker_id = worker_id;
    {
      MutexLock write(connection->write_mu);  // not yet shared: taken for the analysis
      connection->stream = stream;
    }
    {
      MutexLock lock(mu);
      auto it = workers.find(worker_id);
      if (it == workers.end()) {
        return {grpc::StatusCode::UNAUTHENTICATED, "unknown worker id " + worker_id};
      }
      if (!it->second.token.empty() && TokenOf(context, "") != it->second.token) {
        return {grpc::StatusCode::UNAUTHENTICATED, "invalid worker token for " + worker_id};
      }
      if (it->second.connection) {
        return {grpc::StatusCode::ALREADY_EXISTS, "worker " + worker_id + " is already connected"};
      }
      if (stopping) return {grpc::StatusCode::UNAVAILABLE, "supervisor is stopping"};
      it->second.connection = connection;
      outbox.Emit({{"kind", "worker_up"},
                   {"node_id", node_id},
                   {"worker_id", worker_id},
                   {"info", InfoToJson(it->second.info)}});
      auto m = managed.find(it->second.info.name());
      if (m != managed.end() && m->second.pid == static_cast<pid_t>(it->second.info.pid())) {
        m->second.worker_id = worker_id;
        m->second.status = "RUNNING";
        EmitSnapshotLocked();
      }
    }
    FM_LOG_INFO("worker {} connected", worker_id);

    while (stream->Read(&message)) {
      switch (message.body_case()) {
        case v1::WorkerMessage::kEvent:
          HandleEvent(worker_id, message.event());
          break;
        case v1::WorkerMessage::kHeartbeat: {
          // Liveness is the open stream and running tasks are tracked here; the heartbeat
          // carries what the worker holds loaded, relayed in the node heartbeat.
          MutexLock lock(mu);
          auto it = workers.find(worker_id);
          if (it != workers.end()) {
            *it->second.info.mutable_loaded_models() = message.heartbeat().loaded_models();
            it->second.info.set_free_sequence_slots(message.heartbeat().free_sequence_slots());
          }
          break;
        }
        default:
          break;
      }
    }
    connection->Close();
    {
      MutexLock lock(mu);
      auto it = workers.find(worker_id);
      if (it != workers.end() && it->second.connection == connection) {
        DropWorkerLocked(worker_id, context->IsCancelled() ? "stream cancelled" : "stream closed");
      }
    }
    FM_LOG_INFO("worker {} disconnected", worker_id);
    return grpc::Status::OK;
  }

  void HandleEvent(const std::string& worker_id, const v1::TaskEvent& event) {
    json payload = json::parse(event.payload_json(), nullptr, false);
    if (payload.is_discarded() || !payload.is_object()) payload = json::object();
    const std::string& type = event.type();
    MutexLock lock(mu);
    if (type == "TASK_SUCCEEDED" || type == "TASK_FAILED" || type == "TASK_CANCELLED") {
      auto it = workers.find(worker_id);
      if (it != workers.end()) it->second.running.erase(Key(event.task_id(), event.attempt()));
    }
    EmitTaskEvent(worker_id, event.task_id(), event.attempt(), type, event.error(),
                  event.retryable(), std::move(payload));
  }

  // ---- bus commands ----

  void HandleBatch(const std::vector<bus::Message>& batch) {
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

  std::shared_ptr<Connection> ConnectionOf(const std::string& worker_id) {
    MutexLock lock(mu);
    auto it = workers.find(worker_id);
    return it == workers.end() ? nullptr : it->second.connection;
  }

  void Dispatch(const json& body) {
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

  void Interrupt(const json& body) {
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

  void Command(const std::string& kind, const json& body) {
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

  // ---- processes ----

  Status SpawnLocked(ManagedWorker& w) FM_REQUIRES(mu) {
    const json& c = w.worker_config;
    std::string type = JsonString(c, "worker_type", "cpu");
    std::string alias = JsonString(c, "worker_alias", w.name);
    std::string tags;
    if (c.contains("tags") && c["tags"].is_array()) {
      for (const auto& t : c["tags"]) {
        if (!tags.empty()) tags += ",";
        tags += t.is_string() ? t.get<std::string>() : t.dump();
      }
    } else {
      tags = JsonString(c, "tags");
    }
    std::string cuda = JsonString(c, "cuda_devices");
    std::string address = "127.0.0.1:" + std::to_string(port);
    SpawnOptions options;
    options.argv = {config.worker_binary, "--supervisor", address, "--name", w.name,
                    "--alias", alias, "--type", type == "gpu" ? "gpu" : "cpu",
                    "--cost-per-hour", JsonString(c, "worker_cost_per_hour", "0"),
                    "--slots", JsonString(c, "slots", "16"),
                    "--speed", JsonString(c, "worker_speed", "1")};
    if (std::string ts = JsonString(c, "worker_training_speed"); !ts.empty()) {
      options.argv.insert(options.argv.end(), {"--training-speed", ts});
    }
    if (!tags.empty()) options.argv.insert(options.argv.end(), {"--tags", tags});
    if (!cuda.empty()) {
      options.argv.insert(options.argv.end(), {"--cuda-devices", cuda});
      options.env["CUDA_VISIBLE_DEVICES"] = cuda;
    }
    w.token = RandomHex(16);
    options.env["FLOWMESH_WORKER_TOKEN"] = w.token;
    if (!config.api_token.empty()) options.env["FLOWMESH_WORKER_API_TOKEN"] = config.api_token;
    options.log_file = config.state_dir + "/logs/workers/" + w.name + ".log";
    auto pid = flowmesh::Spawn(options);
    w.worker_id.clear();
    w.restart_at.reset();
    w.stopping = false;
    w.remove_after_stop = false;
    if (!pid.ok()) {
      w.status = "EXITED";
      w.pid = 0;
      FM_LOG_ERROR("cannot start worker {}: {}", w.name, pid.status().ToString());
      return pid.status();
    }
    w.pid = *pid;
    w.status = "STARTING";
    w.exit_code.reset();
    FM_LOG_INFO("started worker {} (pid {})", w.name, w.pid);
    return Status::Ok();
  }

  void BeginStopLocked(ManagedWorker& w, const std::string& reason) FM_REQUIRES(mu) {
    w.restart_at.reset();
    if (w.pid <= 0) {
      if (w.status != "EXITED") w.status = "STOPPED";
      return;
    }
    if (w.stopping) return;
    w.stopping = true;
    w.kill_at = Clock::now() + config.worker_stop_grace;
    auto conn = workers.count(w.worker_id) ? workers[w.worker_id].connection : nullptr;
    if (conn) {
      v1::SupervisorMessage stop;
      stop.mutable_stop()->set_reason(reason);
      conn->Write(stop);
    }
    ::kill(w.pid, SIGTERM);
  }

  // Reaps exited workers, escalates stops, performs due restarts. Caller holds mu.
  void MonitorOnceLocked() FM_REQUIRES(mu) {
    auto now = Clock::now();
    bool changed = false;
    for (auto it = managed.begin(); it != managed.end();) {
      ManagedWorker& w = it->second;
      if (w.pid > 0) {
        int wait_status = 0;
        if (ReapIfExited(w.pid, &wait_status)) {
          changed = true;
          w.exit_code = ExitCodeOf(wait_status);
          FM_LOG_INFO("worker {} (pid {}) exited with code {}", w.name, w.pid, *w.exit_code);
          w.pid = 0;
          if (!w.worker_id.empty()) {
            DropWorkerLocked(w.worker_id,
                             "process exited with code " + std::to_string(*w.exit_code));
          }
          if (w.stopping) {
            w.status = "STOPPED";
            w.stopping = false;
            for (const auto& id : w.pending_commands) {
              EmitCommandResult(id, true, (w.remove_after_stop ? "removed " : "stopped ") + w.name);
            }
            w.pending_commands.clear();
            if (w.remove_after_stop) {
              it = managed.erase(it);
              continue;
            }
            if (w.restart_at) w.status = "EXITED";  // start_worker arrived while stopping
          } else {
            w.status = "EXITED";
            while (!w.restart_times.empty() && now - w.restart_times.front() > std::chrono::minutes(1)) {
              w.restart_times.pop_front();
            }
            if (static_cast<int>(w.restart_times.size()) < kMaxRestartsPerMinute) {
              auto backoff = std::chrono::milliseconds(200) * (1 << w.restart_times.size());
              w.restart_at = now + backoff;
              w.crash_restart = true;
            } else {
              FM_LOG_ERROR("worker {} crashed {} times within a minute; not restarting it",
                           w.name, kMaxRestartsPerMinute);
            }
          }
        } else if (w.stopping && now >= w.kill_at) {
          FM_LOG_WARN("worker {} (pid {}) ignored SIGTERM; killing it", w.name, w.pid);
          ::kill(w.pid, SIGKILL);
          w.kill_at = now + std::chrono::hours(24);
        }
      }
      if (w.pid == 0 && w.restart_at && now >= *w.restart_at && !stopping &&
          shutdown_commands.empty()) {
        w.restart_times.push_back(now);
        if (w.crash_restart) ++w.restarts;
        (void)SpawnLocked(w);
        changed = true;
      }
      ++it;
    }
    if (!shutdown_commands.empty() && !shutdown_done) {
      bool all_gone = true;
      for (const auto& [n, w] : managed) all_gone = all_gone && w.pid == 0;
      if (all_gone) {
        shutdown_done = true;  // before the result, so whoever sees it sees the flag
        for (const auto& id : shutdown_commands) EmitCommandResult(id, true, "node shut down");
        changed = true;
      }
    }
    if (changed) EmitSnapshotLocked();
  }

  void MonitorLoop() {
    MutexLock lock(mu);
    while (!stopping) {
      MonitorOnceLocked();
      lock.WaitFor(cv, std::chrono::milliseconds(100),
                   [this]() FM_REQUIRES(mu) { return stopping; });
    }
  }

  void HeartbeatLoop() {
    MutexLock lock(mu);
    while (!lock.WaitFor(cv, config.heartbeat_interval,
                         [this]() FM_REQUIRES(mu) { return stopping; })) {
      json list = json::array();
      for (const auto& [id, w] : workers) {
        if (!w.connection) continue;
        json running = json::array();
        for (const auto& [key, task] : w.running) {
          running.push_back({{"task_id", task.first}, {"attempt", task.second}});
        }
        list.push_back({{"worker_id", id},
                        {"running", std::move(running)},
                        {"loaded_models", std::vector<std::string>(w.info.loaded_models().begin(),
                                                                   w.info.loaded_models().end())},
                        {"free_sequence_slots", w.info.free_sequence_slots()}});
      }
      std::string payload =
          json{{"node_id", node_id}, {"ts", WallSeconds()}, {"workers", std::move(list)}}.dump();
      lock.Unlock();
      Status s = bus->Publish(bus::kHeartbeatChannel, payload);
      if (!s.ok()) FM_LOG_DEBUG("heartbeat not published: {}", s.ToString());
      lock.Lock();
    }
  }

  // ---- node registration ----

  Status RegisterNode(const std::atomic<bool>* cancel) {
    std::string id_file = config.state_dir + "/node_id";
    std::string previous;
    {
      std::ifstream in(id_file);
      std::getline(in, previous);
    }
    json body = {{"alias", config.node_alias},
                 {"hostname", host.hostname},
                 {"grpc_address", GrpcAdvertisedAddress()},
                 {"cpu_cores", host.cpu_cores},
                 {"memory_mb", host.memory_mb},
                 {"gpus", worker::GpusToJson(host.gpus)},
                 {"local", config.local}};
    if (!previous.empty()) body["node_id"] = previous;
    http::Headers headers;
    if (!config.api_token.empty()) headers["Authorization"] = "Bearer " + config.api_token;
    http::Client client(config.root_url, std::chrono::milliseconds(5000));
    auto backoff = std::chrono::milliseconds(100);
    for (;;) {
      auto reply = client.PostJson("/api/v1/nodes/register", body.dump(), headers);
      std::string problem;
      if (reply.ok() && (reply->status == 200 || reply->status == 201)) {
        json parsed = json::parse(reply->body, nullptr, false);
        std::string id = parsed.is_object() ? JsonString(parsed, "node_id") : "";
        if (!id.empty()) {
          std::ofstream(id_file, std::ios::trunc) << id << "\n";
          MutexLock lock(mu);
          node_id = id;
          return Status::Ok();
        }
        problem = "reply without node_id: " + reply->body.substr(0, 200);
      } else if (reply.ok()) {
        problem = "HTTP " + std::to_string(reply->status) + ": " + reply->body.substr(0, 200);
        if (reply->status >= 400 && reply->status < 500 && reply->status != 429 &&
            reply->status != 408) {
          return FailedPrecondition("node registration rejected by " + config.root_url + ": " +
                                    problem);
        }
      } else {
        problem = reply.status().message();
      }
      FM_LOG_WARN("node registration with {} failed ({}); retrying in {} ms", config.root_url,
                  problem, backoff.count());
      MutexLock lock(mu);
      if (lock.WaitFor(cv, backoff,
                       [&]() FM_REQUIRES(mu) { return stopping || (cancel && cancel->load()); })) {
        return Cancelled("stopped before the node was registered");
      }
      backoff = std::min(backoff * 2, config.register_retry_max);
    }
  }

  std::string GrpcAdvertisedAddress() const {
    std::string host_part = config.grpc_address.substr(0, config.grpc_address.rfind(':'));
    if (host_part == "0.0.0.0" || host_part == "[::]" || host_part.empty()) host_part = host.hostname;
    return host_part + ":" + std::to_string(port);
  }
};

Supervisor::Supervisor(SupervisorConfig config, std::shared_ptr<bus::Bus> bus)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(bus))) {}

Supervisor::~Supervisor() { Stop(); }

Status Supervisor::Start(const std::atomic<bool>* cancel) {
  Impl& s = *impl_;
  std::error_code ec;
  std::filesystem::create_directories(s.config.state_dir + "/logs/workers", ec);
  if (ec) return Internal("cannot create " + s.config.state_dir + ": " + ec.message());

  grpc::ServerBuilder builder;
  builder.AddListeningPort(s.config.grpc_address, grpc::InsecureServerCredentials(), &s.port);
  builder.RegisterService(&s);
  s.server = builder.BuildAndStart();
  if (!s.server || s.port == 0) {
    return Unavailable("cannot listen for workers on " + s.config.grpc_address);
  }
  FM_LOG_INFO("supervisor gRPC on port {}", s.port);
  s.outbox.Start();
  {
    MutexLock lock(s.mu);
    s.started = true;
  }
  FM_RETURN_IF_ERROR(s.RegisterNode(cancel));
  std::string node_id = this->node_id();
  FM_LOG_INFO("node {} registered as {}", s.config.node_alias, node_id);

  std::string stream = bus::NodeStream(node_id);
  Status group = s.bus->EnsureGroup(stream, "supervisor");
  if (!group.ok()) FM_LOG_WARN("cannot create group on {}: {}", stream, group.ToString());
  s.consumer = std::make_unique<bus::StreamConsumer>(
      s.bus, stream, "supervisor", node_id,
      [&s](const std::vector<bus::Message>& batch) { s.HandleBatch(batch); });
  s.consumer->Start();
  s.monitor_thread = std::thread([&s] { s.MonitorLoop(); });
  s.heartbeat_thread = std::thread([&s] { s.HeartbeatLoop(); });
  {
    MutexLock lock(s.mu);
    s.EmitSnapshotLocked();
  }
  return Status::Ok();
}

void Supervisor::Stop() {
  Impl& s = *impl_;
  {
    MutexLock lock(s.mu);
    if (s.stopping) return;
    s.stopping = true;
    if (!s.started) return;
  }
  s.cv.notify_all();
  if (s.consumer) s.consumer->Stop();
  if (s.monitor_thread.joinable()) s.monitor_thread.join();
  if (s.heartbeat_thread.joinable()) s.heartbeat_thread.join();

  // Stop every worker process: Stop message + SIGTERM, then SIGKILL after the grace.
  std::vector<pid_t> pids;
  {
    MutexLock lock(s.mu);
    for (auto& [name, w] : s.managed) {
      if (w.pid > 0) {
        s.BeginStopLocked(w, "supervisor stopping");
        pids.push_back(w.pid);
      }
    }
  }
  auto deadline = Clock::now() + s.config.worker_stop_grace;
  std::map<pid_t, int> exits;
  while (exits.size() < pids.size() && Clock::now() < deadline) {
    for (pid_t pid : pids) {
      int status = 0;
      if (!exits.count(pid) && ReapIfExited(pid, &status)) exits[pid] = ExitCodeOf(status);
    }
    if (exits.size() < pids.size()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (pid_t pid : pids) {
    if (exits.count(pid)) continue;
    FM_LOG_WARN("worker pid {} ignored SIGTERM; killing it", pid);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    exits[pid] = ExitCodeOf(status);
  }
  if (s.server) s.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  {
    MutexLock lock(s.mu);
    for (auto& [name, w] : s.managed) {
      if (w.pid > 0) {
        w.exit_code = exits[w.pid];
        w.pid = 0;
      }
      w.status = "STOPPED";
      for (const auto& id : w.pending_commands) s.EmitCommandResult(id, true, "stopped " + name);
      w.pending_commands.clear();
    }
    std::vector<std::string> ids;
    for (const auto& [id, w] : s.workers) ids.push_back(id);
    for (const auto& id : ids) s.DropWorkerLocked(id, "supervisor stopped");
    s.EmitSnapshotLocked();
  }
  if (s.server) s.server->Wait();
  s.outbox.Stop();
}

int Supervisor::grpc_port() const { return impl_->port; }

std::string Supervisor::node_id() const {
  MutexLock lock(impl_->mu);
  return impl_->node_id;
}

bool Supervisor::shutdown_requested() const { return impl_->shutdown_done.load(); }

int RunSupervisor(const SupervisorConfig& config, std::shared_ptr<bus::Bus> bus,
                  std::atomic<bool>* stop) {
  if (!bus) bus = bus::MakeRedisBus(config.redis);
  Supervisor supervisor(config, bus);
  Status started = supervisor.Start(stop);
  if (!started.ok()) {
    if (started.code() == StatusCode::kCancelled) return 0;
    FM_LOG_ERROR("supervisor failed to start: {}", started.ToString());
    return 1;
  }
  while (!(stop && stop->load()) && !supervisor.shutdown_requested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polls the caller's flag
  }
  supervisor.Stop();
  return 0;
}

}  // namespace flowmesh::supervisor
