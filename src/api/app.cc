#include "api/app.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "api/service.h"
#include "auth/authenticator.h"
#include "auth/plugin_host.h"
#include "cas/cas.h"
#include "cas/content_store.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/process.h"
#include "http/http.h"
#include "scheduler/event_hub.h"
#include "state/store.h"
#include "common/thread_annotations.h"

namespace flowmesh::api {

namespace fs = std::filesystem;

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A live process whose command line is a flowmesh supervisor.
bool IsSupervisorProcess(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::string cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  return cmdline.find("--role") != std::string::npos;
}

// The fleet's tokens (service token, worker token) survive a server restart: a supervisor
// adopted from the previous server process, and its workers, keep the ones they were
// started with. Kept in a 0600 file in the state directory.
Status LoadOrCreateFleetTokens(const std::string& path, std::string* service, std::string* worker) {
  {
    std::ifstream in(path);
    if (in && std::getline(in, *service) && std::getline(in, *worker) && service->size() == 64 &&
        worker->size() == 64) {
      return Status::Ok();
    }
  }
  *service = RandomHex(32);
  *worker = RandomHex(32);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot write " + path + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  std::string text = *service + "\n" + *worker + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok ? Status::Ok() : Internal("cannot write " + path);
}

}  // namespace

struct ServerApp::Impl {
  ServerAppConfig config;
  std::unique_ptr<state::Store> store;
  std::unique_ptr<cas::BlobStore> blobs;
  std::unique_ptr<cas::ContentStore> content;
  std::shared_ptr<bus::Bus> bus;
  scheduler::EventHub hub;
  std::unique_ptr<scheduler::Scheduler> sched;
  std::unique_ptr<auth::PluginHost> plugins;
  std::unique_ptr<auth::Authenticator> authn;
  std::string service_token;  // the local supervisor's and its workers' API token
  std::string worker_token;   // workers not started by the supervisor present this
  std::unique_ptr<auth::SecretStore> secrets;  // before api, which borrows it
  std::unique_ptr<ApiService> api;
  std::unique_ptr<http::Server> http;
  std::unique_ptr<bus::StreamConsumer> events;
  std::unique_ptr<bus::Subscriber> heartbeats;

  std::thread maintenance;
  Mutex maintenance_mu;  // one pass at a time (timer or POST /system/gc)

  // Supervisor child.
  std::thread monitor;
  Mutex mu;
  std::condition_variable cv;
  bool stopping FM_GUARDED_BY(mu) = false;
  pid_t supervisor_pid FM_GUARDED_BY(mu) = -1;

  std::string pid_file() const { return config.state_dir + "/supervisor.pid"; }
  // The server as its own node reaches it: the listen address (loopback for a wildcard).
  std::string LocalUrl() const {
    bool wildcard = config.host.empty() || config.host == "0.0.0.0" || config.host == "::";
    return "http://" + (wildcard ? std::string("127.0.0.1") : config.host) + ":" +
           std::to_string(http->port());
  }

  Status SpawnSupervisor() {
    SpawnOptions opts;
    opts.argv = {config.supervisor_binary,
                 "--role", "worker",
                 "--root-url", LocalUrl(),
                 "--redis-host", config.redis.host,
                 "--redis-port", std::to_string(config.redis.port),
                 "--state-dir", config.state_dir + "/supervisor",
                 "--node-alias", "local",
                 "--local",
                 "--log-level", config.log_level};
    if (!config.redis.password.empty()) {
      opts.env["FLOWMESH_REDIS_PASSWORD"] = config.redis.password;
    }
    // Secrets travel in the environment, never on the command line (visible in ps).
    if (!service_token.empty()) opts.env["FLOWMESH_API_TOKEN"] = service_token;
    if (!worker_token.empty()) opts.env["FLOWMESH_WORKER_TOKEN"] = worker_token;
    opts.log_file = config.log_dir + "/supervisor.log";
    auto pid = Spawn(opts);
    if (!pid.ok()) return pid.status();
    {
      MutexLock lock(mu);
      supervisor_pid = *pid;
    }
    std::ofstream(pid_file()) << *pid << "\n";
    FM_LOG_INFO("started supervisor (pid {})", *pid);
    return Status::Ok();
  }

  // One storage maintenance pass: retention purge, then garbage collection.
  nlohmann::json MaintenancePass(double grace_s) {
    MutexLock pass(maintenance_mu);
    int64_t purged = 0;
    if (config.retention_days > 0) {
      double cutoff = WallSeconds() - config.retention_days * 86400.0;
      auto expired = store->ExpiredWorkflows(cutoff, 1000);
      if (expired.ok()) {
        for (const auto& id : *expired) {
          std::vector<std::string> task_ids;
          if (auto w = store->GetWorkflow(id); w.ok()) task_ids = w->task_ids;
          Status st = store->WriteSync([id](state::WriteTxn& txn) { return txn.PurgeWorkflow(id); });
          if (!st.ok()) {
            FM_LOG_WARN("purging workflow {} failed: {}", id, st.ToString());
            continue;
          }
          ++purged;
          if (plugins) {  // resource registrars forget what no longer exists
            for (const auto& t : task_ids) plugins->Deregister("task", t);
            plugins->Deregister("workflow", id);
          }
        }
      }
    }
    state::GcStats stats;
    Status gc = cas::CollectGarbage(blobs.get(), store.get(), grace_s, &stats);
    if (!gc.ok()) FM_LOG_WARN("garbage collection failed: {}", gc.ToString());
    nlohmann::json out = {{"ok", gc.ok()},
                          {"workflows_purged", purged},
                          {"blobs_removed", stats.blobs_removed},
                          {"bytes_removed", stats.bytes_removed},
                          {"orphan_files_removed", stats.orphan_files_removed},
                          {"temp_files_removed", stats.temp_files_removed}};
    if (purged > 0 || stats.blobs_removed > 0 || stats.orphan_files_removed > 0) {
      FM_LOG_INFO("maintenance: {}", out.dump());
    }
    return out;
  }

  void MaintenanceLoop() {
    MutexLock lock(mu);
    while (!stopping) {
      lock.WaitFor(cv, std::chrono::duration<double>(config.gc_interval_s));
      if (stopping) break;
      lock.Unlock();
      MaintenancePass(config.gc_grace_s);
      lock.Lock();
    }
  }

  void Monitor() {
    MutexLock lock(mu);
    while (!stopping) {
      lock.WaitFor(cv, std::chrono::seconds(1));
      if (stopping) break;
      pid_t pid = supervisor_pid;
      lock.Unlock();
      int status = 0;
      bool gone = ReapIfExited(pid, &status) || !ProcessAlive(pid);
      if (gone) {
        FM_LOG_WARN("supervisor (pid {}) exited; restarting it", pid);
        Status s = SpawnSupervisor();
        if (!s.ok()) FM_LOG_ERROR("cannot restart the supervisor: {}", s.ToString());
      }
      lock.Lock();
    }
  }

  // Plugins hear of usage and resolve suppliers through the scheduler, and registrars learn
  // what exists now.
  void ConnectPlugins() {
    auth::PluginHost* host = plugins.get();
    sched->SetUsageSink([host](const state::UsageRecord& u) {
      host->RecordUsage({{"task_id", u.task_id}, {"workflow_id", u.workflow_id},
                            {"org_id", u.org_id}, {"principal_id", u.principal_id},
                            {"supplier_id", u.supplier_id}, {"worker_id", u.worker_id},
                            {"attempt", u.attempt}, {"started_at", u.started_at},
                            {"finished_at", u.finished_at}, {"runtime_sec", u.runtime_sec},
                            {"hardware", u.hardware}, {"cost_per_hour", u.cost_per_hour},
                            {"cost", u.cost}, {"status", u.status}});
    });
    sched->SetSupplierResolver([host](const std::string& worker_id, const std::string& info) {
      return host->ResolveSupplier(worker_id, info);
    });
    // Registrars learn what exists now (they may have missed changes while we were down).
    state::WorkflowFilter wf;
    auto workflows = store->ListWorkflows(wf);
    if (workflows.ok()) {
      std::vector<std::string> ids;
      for (const auto& w : *workflows) ids.push_back(w.workflow_id);
      host->Reconcile("workflow", ids);
    }
    auto nodes = store->ListNodes();
    if (nodes.ok()) {
      std::vector<std::string> ids;
      for (const auto& n : *nodes) ids.push_back(n.node_id);
      host->Reconcile("node", ids);
    }
  }
};

ServerApp::ServerApp(ServerAppConfig config) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
}

ServerApp::~ServerApp() { Stop(); }

Result<std::unique_ptr<ServerApp>> ServerApp::Create(ServerAppConfig config) {
  if (config.state_dir.empty()) return InvalidArgument("state directory is required");
  std::error_code ec;
  fs::create_directories(config.state_dir, ec);
  if (ec) return Internal("cannot create state directory " + config.state_dir + ": " + ec.message());
  if (config.log_dir.empty()) config.log_dir = config.state_dir;
  fs::create_directories(config.log_dir, ec);
  return std::unique_ptr<ServerApp>(new ServerApp(std::move(config)));
}

Status ServerApp::Start() {
  Impl& s = *impl_;
  state::StoreConfig sc;
  sc.path = s.config.state_dir + "/flowmesh.db";
  sc.synchronous_full = s.config.synchronous_full;
  FM_ASSIGN_OR_RETURN(s.store, state::Store::Open(sc));
  s.blobs = std::make_unique<cas::BlobStore>(s.config.state_dir + "/cas");
  FM_RETURN_IF_ERROR(s.blobs->Init());
  s.content = std::make_unique<cas::ContentStore>(s.blobs.get(), s.store.get());
  s.bus = s.config.in_process_bus ? bus::MakeInProcessBus() : bus::MakeRedisBus(s.config.redis);

  if (!s.config.plugins.empty()) {
    auto config_of = [&s](const std::string& name) {
      auto it = s.config.plugin_configs.find(name);
      return it == s.config.plugin_configs.end() ? std::string() : it->second;
    };
    FM_ASSIGN_OR_RETURN(s.plugins, auth::PluginHost::Load(s.config.plugins, config_of));
  }
  if (s.config.auth) {
    FM_RETURN_IF_ERROR(LoadOrCreateFleetTokens(s.config.state_dir + "/fleet.tokens",
                                               &s.service_token, &s.worker_token));
    auth::AuthenticatorConfig authc;
    authc.bootstrap_key_sha256 = s.config.bootstrap_key_sha256;
    authc.service_token = s.service_token;
    FM_ASSIGN_OR_RETURN(s.authn,
                        auth::Authenticator::Create(authc, s.store.get(), s.plugins.get()));
  } else {
    FM_LOG_WARN("authentication is OFF: every caller acts as the default organisation's admin");
  }

  s.sched = std::make_unique<scheduler::Scheduler>(s.config.scheduler, s.store.get(), s.bus, &s.hub,
                                                   s.content.get());
  FM_RETURN_IF_ERROR(s.sched->Recover());
  if (s.plugins) s.ConnectPlugins();
  if (s.authn) {
    // Weights and running/GPU quotas of every organisation, now and on each change.
    scheduler::Scheduler* sched = s.sched.get();
    s.authn->OnPolicyChange([sched](const std::string& org, const auth::OrgPolicy& p) {
      sched->SetOrgPolicy(org, p.weight, static_cast<int>(p.max_running_tasks),
                          static_cast<int>(p.max_gpus));
    });
  }
  s.sched->Start();

  ApiConfig ac;
  ac.body_limit = s.config.body_limit;
  ApiDeps deps;
  deps.store = s.store.get();
  deps.blobs = s.content.get();
  deps.scheduler = s.sched.get();
  deps.hub = &s.hub;
  deps.authenticator = s.authn.get();
  // Called by handlers only, so once the server below exists.
  deps.extra_metrics = [&s] {
    return nlohmann::json{{"http_open_connections", s.http ? s.http->open_connections() : 0}};
  };
  deps.maintenance = [&s](double grace_s) { return s.MaintenancePass(grace_s); };
  FM_ASSIGN_OR_RETURN(s.secrets, auth::SecretStore::Open(s.config.state_dir + "/secrets"));
  deps.secrets = s.secrets.get();
  deps.api_default_url = s.config.api_default_url;
  deps.api_default_credential = s.config.api_default_credential;
  s.api = std::make_unique<ApiService>(ac, std::move(deps));
  http::ServerConfig hc;
  hc.address = s.config.host;
  hc.port = s.config.port;
  hc.threads = s.config.http_threads;
  hc.body_limit = s.config.body_limit;
  s.http = std::make_unique<http::Server>(hc, s.api->MakeRouter());
  FM_RETURN_IF_ERROR(s.http->Start());
  if (s.config.gc_interval_s > 0) s.maintenance = std::thread([&s] { s.MaintenanceLoop(); });

  scheduler::Scheduler* sched = s.sched.get();
  s.events = std::make_unique<bus::StreamConsumer>(
      s.bus, bus::kEventsStream, "server", "server",
      bus::StreamConsumer::DeferredHandler(
          [sched](const std::vector<bus::Message>& batch, std::function<void()> acknowledge) {
            sched->ApplyBusMessagesAsync(batch, std::move(acknowledge));
          }));
  s.events->Start();
  auto on_heartbeat = [sched](const std::string&, const std::string& payload) {
    sched->ApplyHeartbeat(payload);
  };
  s.heartbeats = s.config.in_process_bus
                     ? bus::SubscribeInProcess(s.bus, {bus::kHeartbeatChannel}, on_heartbeat)
                     : bus::SubscribeRedis(s.config.redis, {bus::kHeartbeatChannel}, on_heartbeat);
  FM_LOG_INFO("flowmesh-server listening on http://{}:{}", s.config.host, s.http->port());

  if (s.config.start_supervisor) {
    pid_t previous = -1;
    std::string text = ReadFile(s.pid_file());
    if (!text.empty()) previous = static_cast<pid_t>(std::atol(text.c_str()));
    if (IsSupervisorProcess(previous)) {
      FM_LOG_INFO("adopting the running supervisor (pid {})", previous);
      MutexLock lock(s.mu);
      s.supervisor_pid = previous;
    } else {
      FM_RETURN_IF_ERROR(s.SpawnSupervisor());
    }
    s.monitor = std::thread([&s] { s.Monitor(); });
  }
  return Status::Ok();
}

void ServerApp::Stop() {
  Impl& s = *impl_;
  {
    MutexLock lock(s.mu);
    if (s.stopping) return;
    s.stopping = true;
  }
  s.cv.notify_all();
  if (s.monitor.joinable()) s.monitor.join();
  if (s.maintenance.joinable()) s.maintenance.join();
  pid_t supervisor = -1;
  {
    // Read after the monitor has stopped: it may have just restarted the supervisor.
    MutexLock lock(s.mu);
    supervisor = s.supervisor_pid;
  }
  if (supervisor > 0) {
    // The supervisor stops its workers on SIGTERM; give it time to do so.
    TerminateProcess(supervisor, std::chrono::seconds(10));
    std::error_code ec;
    fs::remove(s.pid_file(), ec);
  }
  if (s.events) s.events->Stop();
  if (s.heartbeats) s.heartbeats->Stop();
  if (s.http) s.http->Stop();
  if (s.sched) s.sched->Stop();
  if (s.store) s.store->Flush();
}

int ServerApp::port() const { return impl_->http ? impl_->http->port() : 0; }

}  // namespace flowmesh::api
