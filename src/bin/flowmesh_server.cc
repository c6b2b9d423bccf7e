// flowmesh-server: the root-node server (API, scheduler, state), or with --role worker
// a supervisor alone for another node.
#include <signal.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <filesystem>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "api/app.h"
#include "auth/plugin_host.h"
#include "common/log.h"
#include "common/process.h"
#include "placement/placement.h"
#include "supervisor/supervisor.h"

namespace {

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

double EnvDouble(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atof(v) : fallback;
}

// Blocks SIGTERM/SIGINT in every thread and returns once one arrives.
int WaitForSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace

int main(int argc, char** argv) {
  // Block termination signals before any thread starts so only WaitForSignal sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  CLI::App app{"flowmesh-server: the FlowMesh API server and scheduler"};
  std::string role = "server";
  std::string home = Env("FLOWMESH_HOME", Env("HOME", "/root") + "/.flowmesh");
  flowmesh::api::ServerAppConfig cfg;
  cfg.host = Env("FLOWMESH_HOST", "127.0.0.1");
  cfg.port = EnvInt("FLOWMESH_PORT", 8000);
  cfg.state_dir = Env("FLOWMESH_STATE_DIR", home + "/state");
  cfg.redis.host = Env("FLOWMESH_REDIS_HOST", "127.0.0.1");
  cfg.redis.port = EnvInt("FLOWMESH_REDIS_PORT", 6379);
  cfg.redis.password = Env("FLOWMESH_REDIS_PASSWORD", "");
  std::string log_level = Env("FLOWMESH_LOG_LEVEL", "info");
  std::string log_file = Env("FLOWMESH_LOG_FILE", "");
  double grace = cfg.scheduler.worker_grace_s;
  double unplaceable_grace = EnvDouble("FLOWMESH_UNPLACEABLE_GRACE_S", cfg.scheduler.unplaceable_grace_s);
  int elastic_max = EnvInt("FLOWMESH_ELASTIC_MAX_WORKERS", 0);
  int elastic_min = EnvInt("FLOWMESH_ELASTIC_MIN_WORKERS", 0);
  double elastic_idle = EnvDouble("FLOWMESH_ELASTIC_IDLE_S", cfg.scheduler.elasticity.idle_timeout_s);
  size_t body_limit_mb = 16;
  std::string utility = Env("FLOWMESH_UTILITY", "");
  bool no_supervisor = false;
  std::string sqlite_sync = Env("FLOWMESH_SQLITE_SYNCHRONOUS", "full");
  std::string dedup_scope = Env("FLOWMESH_DEDUP_SCOPE", "tenant");
  cfg.retention_days = std::atof(Env("FLOWMESH_RETENTION_DAYS", "0").c_str());
  // Supervisor role.
  std::string root_url = Env("FLOWMESH_ROOT_URL", "");
  std::string node_alias = Env("FLOWMESH_NODE_ALIAS", "");
  std::string grpc_address = Env("FLOWMESH_GRPC_ADDRESS", "127.0.0.1:0");
  std::string worker_token = Env("FLOWMESH_WORKER_TOKEN", "");
  bool local = false;
  std::string api_token = Env("FLOWMESH_API_TOKEN", "");
  std::string auth_mode = Env("FLOWMESH_AUTH", "on");
  cfg.bootstrap_key_sha256 = Env("FLOWMESH_ADMIN_KEY_SHA256", "");
  std::string plugins = Env("FLOWMESH_PLUGINS", "");

  app.add_option("--role", role, "server | worker (a supervisor for this node)")
      ->check(CLI::IsMember({"server", "worker"}));
  app.add_option("--host", cfg.host, "address to listen on (FLOWMESH_HOST)");
  app.add_option("--port", cfg.port, "HTTP port, 0 for any free one (FLOWMESH_PORT)");
  app.add_option("--state-dir", cfg.state_dir, "state directory (FLOWMESH_STATE_DIR)");
  app.add_option("--redis-host", cfg.redis.host, "Redis host (FLOWMESH_REDIS_HOST)");
  app.add_option("--redis-port", cfg.redis.port, "Redis port (FLOWMESH_REDIS_PORT)");
  app.add_option("--redis-password", cfg.redis.password, "Redis password (FLOWMESH_REDIS_PASSWORD)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error (FLOWMESH_LOG_LEVEL)");
  app.add_option("--log-file", log_file, "append logs here instead of stderr (FLOWMESH_LOG_FILE)");
  app.add_option("--http-threads", cfg.http_threads, "HTTP io threads");
  app.add_option("--body-limit-mb", body_limit_mb, "largest accepted request body, MiB");
  app.add_option("--worker-grace", grace, "seconds of silence before a worker is declared dead");
  app.add_flag("--no-supervisor", no_supervisor, "do not start the local supervisor");
  app.add_option("--unplaceable-grace", unplaceable_grace,
                 "seconds before a task no worker can ever run fails; 0: never (FLOWMESH_UNPLACEABLE_GRACE_S)");
  app.add_option("--elastic-max-workers", elastic_max,
                 "elasticity: start native CPU workers on the local node while the queue outgrows "
                 "capacity, up to this many workers; 0: off (FLOWMESH_ELASTIC_MAX_WORKERS)");
  app.add_option("--elastic-min-workers", elastic_min, "elasticity: never retire below this many (FLOWMESH_ELASTIC_MIN_WORKERS)");
  app.add_option("--elastic-idle", elastic_idle, "elasticity: retire a worker it started after this many idle seconds (FLOWMESH_ELASTIC_IDLE_S)");
  app.add_option("--utility", utility,
                 "placement weights and bounds, key=value,… (lambda_inference 0.4, lambda_training 0.8, "
                 "lambda_other 0.5, alpha_locality 0.5, beta_age 0.1, fairness_weight 1, defer_gain 0.8, "
                 "candidate_batches 3, candidates_per_index 4, scan_limit 64) (FLOWMESH_UTILITY)");
  app.add_option("--sqlite-synchronous", sqlite_sync,
                 "full: every commit is fsynced (survives power loss); normal: survives a "
                 "process crash only (FLOWMESH_SQLITE_SYNCHRONOUS)")
      ->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--dedup-scope", dedup_scope,
                 "reuse results of deterministic operators: off | tenant (within an "
                 "organisation) | global (FLOWMESH_DEDUP_SCOPE)")
      ->check(CLI::IsMember({"off", "tenant", "global"}));
  app.add_option("--gc-interval", cfg.gc_interval_s,
                 "seconds between storage maintenance passes (0: never)");
  app.add_option("--gc-grace", cfg.gc_grace_s,
                 "unreferenced blobs are removed once untouched this many seconds");
  app.add_option("--retention-days", cfg.retention_days,
                 "purge workflows terminal for longer than this (0: keep forever; "
                 "FLOWMESH_RETENTION_DAYS)");
  app.add_option("--root-url", root_url, "[worker role] the root server's URL (FLOWMESH_ROOT_URL)");
  app.add_option("--node-alias", node_alias, "[worker role] this node's alias");
  app.add_option("--grpc-address", grpc_address, "[worker role] gRPC listen address for workers");
  app.add_option("--worker-token", worker_token, "[worker role] token workers must present");
  app.add_option("--auth", auth_mode,
                 "on: API keys, organisations and quotas; off: every caller is admin (FLOWMESH_AUTH)")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--plugins", plugins,
                 "plugin shared libraries, ':'-separated (FLOWMESH_PLUGINS)");
  app.add_flag("--local", local, "[worker role] this is the root node's own supervisor");
  CLI11_PARSE(app, argc, argv);

  flowmesh::InitLogging(role == "server" ? "server" : "supervisor", log_level, log_file);

  if (role == "worker") {
    if (root_url.empty()) {
      std::cerr << "flowmesh-server --role worker needs --root-url (the root server's URL)\n";
      return 2;
    }
    flowmesh::supervisor::SupervisorConfig sc;
    sc.root_url = root_url;
    sc.redis = cfg.redis;
    sc.node_alias = node_alias.empty() ? "node" : node_alias;
    sc.local = local;
    sc.grpc_address = grpc_address;
    sc.state_dir = cfg.state_dir;
    sc.worker_binary = flowmesh::ExecutableDir() + "/flowmesh-worker";
    sc.worker_token = worker_token;
    sc.api_token = api_token;
    std::atomic<bool> stop{false};
    std::thread waiter([&stop] {
      WaitForSignal();
      stop = true;
    });
    waiter.detach();
    return flowmesh::supervisor::RunSupervisor(sc, nullptr, &stop);
  }

  cfg.auth = auth_mode == "on";
  cfg.plugins = flowmesh::auth::PluginHost::SplitList(plugins);
  cfg.log_level = log_level;
  cfg.body_limit = body_limit_mb << 20;
  cfg.scheduler.worker_grace_s = grace;
  cfg.scheduler.dedup_scope = dedup_scope;
  cfg.scheduler.unplaceable_grace_s = unplaceable_grace;
  if (std::string e = flowmesh::placement::ParsePlacementOptions(cfg.scheduler.placement, utility); !e.empty()) {
    std::cerr << "flowmesh-server: --utility: " << e << "\n";
    return 2;
  }
  cfg.scheduler.elasticity.enabled = elastic_max > 0;
  cfg.scheduler.elasticity.max_workers = elastic_max;
  cfg.scheduler.elasticity.min_workers = elastic_min;
  cfg.scheduler.elasticity.idle_timeout_s = elastic_idle;
  cfg.scheduler.elastic_worker_config = {{"worker_type", "cpu"}};
  cfg.start_supervisor = !no_supervisor;
  cfg.synchronous_full = sqlite_sync == "full";
  cfg.supervisor_binary = flowmesh::ExecutableDir() + "/flowmesh-server";
  cfg.log_dir = Env("FLOWMESH_LOG_DIR", "");
  if (cfg.log_dir.empty() && !log_file.empty()) {
    cfg.log_dir = std::filesystem::path(log_file).parent_path().string();
  }
  auto server = flowmesh::api::ServerApp::Create(cfg);
  if (!server.ok()) {
    std::cerr << "flowmesh-server: " << server.status().message() << "\n";
    return 1;
  }
  flowmesh::Status s = (*server)->Start();
  if (!s.ok()) {
    FM_LOG_ERROR("cannot start: {}", s.ToString());
    std::cerr << "flowmesh-server: cannot start: " << s.message() << "\n";
    return 1;
  }
  int sig = WaitForSignal();
  FM_LOG_INFO("signal {} received; shutting down", sig);
  (*server)->Stop();
  return 0;
}
