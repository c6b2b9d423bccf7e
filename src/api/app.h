// The root-node server process: wires the store, CAS, bus, scheduler, API and HTTP server
// together, consumes the events stream and heartbeats, and keeps the local supervisor
// child process running (adopting a live one left by a previous server process).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "common/status.h"
#include "scheduler/scheduler.h"

namespace flowmesh::api {

struct ServerAppConfig {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string state_dir;            // database, CAS, supervisor state
  std::string log_dir;              // supervisor.log goes here
  int http_threads = 2;
  size_t body_limit = 16 << 20;
  bus::RedisConfig redis;
  bool in_process_bus = false;      // single-process tests
  bool start_supervisor = true;
  std::string supervisor_binary;    // flowmesh-server path (runs --role worker)
  std::string log_level = "info";
  bool synchronous_full = true;     // fsync every commit (else only at WAL checkpoints)
  scheduler::SchedulerConfig scheduler;
  // Storage maintenance: every `gc_interval_s`, workflows terminal for longer than
  // `retention_days` (0: kept forever) are purged, then blobs nothing refers to and
  // untouched for `gc_grace_s` are removed.
  double gc_interval_s = 600;
  double gc_grace_s = 3600;
  double retention_days = 0;
  // Authentication and tenancy (see docs/security.md). Off: every caller is the default
  // organisation's admin (single-user development only).
  bool auth = true;
  std::string bootstrap_key_sha256;   // admin key to ensure exists (set by `stack up`)
  std::vector<std::string> plugins;   // shared libraries (FLOWMESH_PLUGINS)
  // Each plugin's config string by plugin name (FLOWMESH_PLUGIN_CONFIG_<NAME>, read at start).
  std::map<std::string, std::string> plugin_configs;
  // The api executor's default endpoint, for tasks whose api.url is omitted (base URL;
  // "/v1/chat/completions" is appended) and the secret sent to it as a Bearer token.
  std::string api_default_url;
  std::string api_default_credential;
};

class ServerApp {
 public:
  static Result<std::unique_ptr<ServerApp>> Create(ServerAppConfig config);
  ~ServerApp();
  ServerApp(const ServerApp&) = delete;
  ServerApp& operator=(const ServerApp&) = delete;

  Status Start();
  void Stop();
  int port() const;

 private:
  explicit ServerApp(ServerAppConfig config);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowmesh::api
