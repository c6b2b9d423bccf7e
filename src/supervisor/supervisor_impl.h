// Private to the supervisor's files: Supervisor::Impl and the records it keeps.
//   supervisor.cc   start/stop, node registration, heartbeats, RunSupervisor
//   worker_link.cc  the WorkerSupervisor gRPC service: Register, Connect, worker events
//   commands.cc     the node stream: dispatches, interrupts and stack commands
//   processes.cc    native worker processes: spawn, stop, reap, restart
// Threads and locking as in supervisor.h: shared state behind `mu`.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/process.h"
#include "common/thread_annotations.h"
#include "flowmesh/v1/worker.grpc.pb.h"
#include "supervisor/event_outbox.h"
#include "supervisor/supervisor.h"
#include "worker/host_info.h"

namespace flowmesh::supervisor {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using Stream = grpc::ServerReaderWriter<v1::SupervisorMessage, v1::WorkerMessage>;

namespace supervisor_detail {

inline constexpr int kMaxRestartsPerMinute = 5;

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

std::string Key(const std::string& task_id, int attempt);
bool ValidName(const std::string& name);
json InfoToJson(const v1::WorkerInfo& info);
std::string JsonString(const json& object, const char* key, const std::string& fallback = "");
int ExitCodeOf(int wait_status);

}  // namespace supervisor_detail

using namespace supervisor_detail;  // NOLINT: Impl's own records, private to these files

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
  static std::string TokenOf(const grpc::ServerContext* context, const std::string& fallback);

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                        v1::RegisterReply* reply) override;

  grpc::Status Connect(grpc::ServerContext* context, Stream* stream) override;

  void HandleEvent(const std::string& worker_id, const v1::TaskEvent& event);

  // ---- bus commands ----

  void HandleBatch(const std::vector<bus::Message>& batch);

  std::shared_ptr<Connection> ConnectionOf(const std::string& worker_id);

  void Dispatch(const json& body);

  void Interrupt(const json& body);

  void Command(const std::string& kind, const json& body);

  // ---- processes ----

  Status SpawnLocked(ManagedWorker& w) FM_REQUIRES(mu);

  void BeginStopLocked(ManagedWorker& w, const std::string& reason) FM_REQUIRES(mu);

  // Reaps exited workers, escalates stops, performs due restarts. Caller holds mu.
  void MonitorOnceLocked() FM_REQUIRES(mu);

  void MonitorLoop();

  void HeartbeatLoop();

  // ---- node registration ----

  Status RegisterNode(const std::atomic<bool>* cancel);

  std::string GrpcAdvertisedAddress() const;
};

}  // namespace flowmesh::supervisor
