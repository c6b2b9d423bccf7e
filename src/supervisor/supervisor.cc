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
#include "supervisor/supervisor_impl.h"
#include "worker/host_info.h"
#include "worker/worker.h"

namespace flowmesh::supervisor {
namespace supervisor_detail {

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

std::string JsonString(const json& object, const char* key, const std::string& fallback) {
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

}  // namespace supervisor_detail

void Supervisor::Impl::HeartbeatLoop() {
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

Status Supervisor::Impl::RegisterNode(const std::atomic<bool>* cancel) {
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

std::string Supervisor::Impl::GrpcAdvertisedAddress() const {
  std::string host_part = config.grpc_address.substr(0, config.grpc_address.rfind(':'));
  if (host_part == "0.0.0.0" || host_part == "[::]" || host_part.empty()) host_part = host.hostname;
  return host_part + ":" + std::to_string(port);
}

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
