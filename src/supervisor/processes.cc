// Native flowmesh-worker processes: spawning, stopping (SIGTERM, then SIGKILL), reaping
// and restarting with a crash budget.
#include <signal.h>
#include <sys/wait.h>

#include <fstream>

#include "common/ids.h"
#include "common/log.h"
#include "supervisor/supervisor_impl.h"

namespace flowmesh::supervisor {

Status Supervisor::Impl::SpawnLocked(ManagedWorker& w) {
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
  // Workers reach the gRPC server where it listens (loopback when it listens everywhere).
  std::string listen_host = config.grpc_address.substr(0, config.grpc_address.rfind(':'));
  bool wildcard = listen_host.empty() || listen_host == "0.0.0.0" || listen_host == "[::]";
  std::string address = (wildcard ? std::string("127.0.0.1") : listen_host) + ":" +
                        std::to_string(port);
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
  // One cache of collection blobs per node, shared by its workers.
  options.argv.insert(options.argv.end(),
                      {"--collection-cache-dir", config.state_dir + "/cache/collections"});
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

void Supervisor::Impl::BeginStopLocked(ManagedWorker& w, const std::string& reason) {
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

void Supervisor::Impl::MonitorOnceLocked() {
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

void Supervisor::Impl::MonitorLoop() {
  MutexLock lock(mu);
  while (!stopping) {
    MonitorOnceLocked();
    lock.WaitFor(cv, std::chrono::milliseconds(100),
                 [this]() FM_REQUIRES(mu) { return stopping; });
  }
}

}  // namespace flowmesh::supervisor
