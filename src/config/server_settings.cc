#include "config/server_settings.h"

#include <cstdlib>
#include <filesystem>

#include "auth/plugin_host.h"
#include "placement/placement.h"

namespace flowmesh::config {

void DeclareServerSettings(SettingsTable& t, ServerSettings* s, const std::string& home_default) {
  s->home = home_default;
  auto& a = s->app;
  auto& sched = a.scheduler;
  t.Add("--role", "", &s->role, "server | worker (a supervisor for this node)")
      ->check(CLI::IsMember({"server", "worker"}));
  t.Add("--home", "FLOWMESH_HOME", &s->home, "FlowMesh home; the state directory defaults to HOME/state");
  t.Add("--host", "FLOWMESH_HOST", &a.host, "address to listen on");
  t.Add("--port", "FLOWMESH_PORT", &a.port, "HTTP port, 0 for any free one")->check(CLI::Range(0, 65535));
  t.Add("--state-dir", "FLOWMESH_STATE_DIR", &a.state_dir, "state directory (default: HOME/state)");
  t.Add("--redis-host", "FLOWMESH_REDIS_HOST", &a.redis.host, "Redis host");
  t.Add("--redis-port", "FLOWMESH_REDIS_PORT", &a.redis.port, "Redis port")->check(CLI::Range(1, 65535));
  t.Add("--redis-password", "FLOWMESH_REDIS_PASSWORD", &a.redis.password, "Redis password");
  t.Add("--log-level", "FLOWMESH_LOG_LEVEL", &s->log_level, "trace | debug | info | warn | error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  t.Add("--log-file", "FLOWMESH_LOG_FILE", &s->log_file, "append logs here instead of stderr");
  t.Add("--log-dir", "FLOWMESH_LOG_DIR", &s->log_dir,
        "where the supervisor's log goes (default: the log file's folder)");
  t.Add("--http-threads", "FLOWMESH_HTTP_THREADS", &a.http_threads, "HTTP io threads")
      ->check(CLI::Range(1, 256));
  t.Add("--body-limit-mb", "FLOWMESH_BODY_LIMIT_MB", &s->body_limit_mb, "largest accepted request body, MiB")
      ->check(CLI::Range(1, 4096));
  t.Add("--worker-grace", "FLOWMESH_WORKER_GRACE_S", &sched.worker_grace_s,
        "seconds of silence before a worker is declared dead")->check(CLI::PositiveNumber);
  t.AddFlag("--no-supervisor", &s->no_supervisor, "do not start the local supervisor");
  t.Add("--unplaceable-grace", "FLOWMESH_UNPLACEABLE_GRACE_S", &sched.unplaceable_grace_s,
        "seconds before a task no worker can ever run fails; 0: never")->check(CLI::NonNegativeNumber);
  t.Add("--elastic-max-workers", "FLOWMESH_ELASTIC_MAX_WORKERS", &sched.elasticity.max_workers,
        "elasticity: start native CPU workers on the local node while the queue outgrows "
        "capacity, up to this many workers; 0: off")->check(CLI::NonNegativeNumber);
  t.Add("--elastic-min-workers", "FLOWMESH_ELASTIC_MIN_WORKERS", &sched.elasticity.min_workers,
        "elasticity: never retire below this many")->check(CLI::NonNegativeNumber);
  t.Add("--elastic-idle", "FLOWMESH_ELASTIC_IDLE_S", &sched.elasticity.idle_timeout_s,
        "elasticity: retire a worker it started after this many idle seconds")->check(CLI::NonNegativeNumber);
  t.Add("--utility", "FLOWMESH_UTILITY", &s->utility,
        "placement weights and bounds, key=value,… (lambda_inference 0.4, lambda_training 0.8, "
        "lambda_other 0.5, alpha_locality 0.5, beta_age 0.1, fairness_weight 1, defer_gain 0.8, "
        "candidate_batches 3, candidates_per_index 4, scan_limit 64)");
  t.Add("--sqlite-synchronous", "FLOWMESH_SQLITE_SYNCHRONOUS", &s->sqlite_synchronous,
        "full: every commit is fsynced (survives power loss); normal: survives a process crash only")
      ->check(CLI::IsMember({"full", "normal"}));
  t.Add("--dedup-scope", "FLOWMESH_DEDUP_SCOPE", &sched.dedup_scope,
        "reuse results of deterministic operators: off | tenant (within an organisation) | global")
      ->check(CLI::IsMember({"off", "tenant", "global"}));
  t.Add("--gc-interval", "FLOWMESH_GC_INTERVAL_S", &a.gc_interval_s,
        "seconds between storage maintenance passes (0: never)")->check(CLI::NonNegativeNumber);
  t.Add("--gc-grace", "FLOWMESH_GC_GRACE_S", &a.gc_grace_s,
        "unreferenced blobs are removed once untouched this many seconds")->check(CLI::NonNegativeNumber);
  t.Add("--retention-days", "FLOWMESH_RETENTION_DAYS", &a.retention_days,
        "purge workflows terminal for longer than this (0: keep forever)")->check(CLI::NonNegativeNumber);
  t.Add("--auth", "FLOWMESH_AUTH", &s->auth,
        "on: API keys, organisations and quotas; off: every caller is admin")
      ->check(CLI::IsMember({"on", "off"}));
  t.Add("--admin-key-sha256", "FLOWMESH_ADMIN_KEY_SHA256", &a.bootstrap_key_sha256,
        "SHA-256 of an admin key to ensure exists (set by `flowmesh stack up`)");
  t.Add("--api-default-url", "FLOWMESH_API_DEFAULT_URL", &a.api_default_url,
        "api tasks without api.url call this OpenAI-compatible base URL (+/v1/chat/completions)");
  t.Add("--api-default-credential", "FLOWMESH_API_DEFAULT_CREDENTIAL", &a.api_default_credential,
        "name of the secret sent as a Bearer token to --api-default-url (the task's "
        "organisation's, else the default organisation's)");
  t.Add("--plugins", "FLOWMESH_PLUGINS", &s->plugins, "plugin shared libraries, ':'-separated");
  t.Add("--root-url", "FLOWMESH_ROOT_URL", &s->root_url, "[worker role] the root server's URL");
  t.Add("--node-alias", "FLOWMESH_NODE_ALIAS", &s->node_alias, "[worker role] this node's alias");
  t.Add("--grpc-address", "FLOWMESH_GRPC_ADDRESS", &s->grpc_address,
        "[worker role] gRPC listen address for workers");
  t.Add("--worker-token", "FLOWMESH_WORKER_TOKEN", &s->worker_token,
        "[worker role] token workers must present");
  t.Add("--api-token", "FLOWMESH_API_TOKEN", &s->api_token,
        "[worker role] Bearer token for calls to the root server");
  t.AddFlag("--local", &s->local, "[worker role] this is the root node's own supervisor");
}

Result<api::ServerAppConfig> ToServerAppConfig(const ServerSettings& s,
                                               const std::string& executable_dir) {
  api::ServerAppConfig cfg = s.app;
  if (cfg.state_dir.empty()) cfg.state_dir = s.home + "/state";
  cfg.auth = s.auth == "on";
  cfg.plugins = auth::PluginHost::SplitList(s.plugins);
  // Plugin configs are named after each plugin, so they are read here, once, at start.
  for (const auto& path : cfg.plugins) {
    std::string name = auth::PluginHost::NameOf(path);
    if (const char* v = std::getenv(auth::PluginHost::ConfigVariable(name).c_str())) {
      cfg.plugin_configs[name] = v;
    }
  }
  cfg.log_level = s.log_level;
  cfg.body_limit = s.body_limit_mb << 20;
  if (std::string e = placement::ParsePlacementOptions(cfg.scheduler.placement, s.utility); !e.empty()) {
    return InvalidArgument("--utility: " + e);
  }
  auto& elastic = cfg.scheduler.elasticity;
  if (elastic.min_workers > elastic.max_workers && elastic.max_workers > 0) {
    return InvalidArgument("--elastic-min-workers exceeds --elastic-max-workers");
  }
  elastic.enabled = elastic.max_workers > 0;
  cfg.scheduler.elastic_worker_config = {{"worker_type", "cpu"}};
  cfg.start_supervisor = !s.no_supervisor;
  cfg.synchronous_full = s.sqlite_synchronous == "full";
  cfg.supervisor_binary = executable_dir + "/flowmesh-server";
  cfg.log_dir = s.log_dir;
  if (cfg.log_dir.empty() && !s.log_file.empty()) {
    cfg.log_dir = std::filesystem::path(s.log_file).parent_path().string();
  }
  return cfg;
}

Result<supervisor::SupervisorConfig> ToSupervisorConfig(const ServerSettings& s,
                                                        const std::string& executable_dir) {
  if (s.root_url.empty()) {
    return InvalidArgument("--role worker needs --root-url (the root server's URL)");
  }
  supervisor::SupervisorConfig sc;
  sc.root_url = s.root_url;
  sc.redis = s.app.redis;
  sc.node_alias = s.node_alias.empty() ? "node" : s.node_alias;
  sc.local = s.local;
  sc.grpc_address = s.grpc_address;
  sc.state_dir = s.app.state_dir.empty() ? s.home + "/state" : s.app.state_dir;
  sc.worker_binary = executable_dir + "/flowmesh-worker";
  sc.worker_token = s.worker_token;
  sc.api_token = s.api_token;
  return sc;
}

}  // namespace flowmesh::config
