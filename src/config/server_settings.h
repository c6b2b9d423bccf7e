// Every setting of flowmesh-server, declared once (flag, FLOWMESH_* variable, default, doc)
// in server_settings.cc, and the checks that turn them into the typed configs of the server
// (api::ServerAppConfig) and of the supervisor role (supervisor::SupervisorConfig).
#pragma once

#include <string>

#include "api/app.h"
#include "common/status.h"
#include "config/settings.h"
#include "supervisor/supervisor.h"

namespace flowmesh::config {

struct ServerSettings {
  std::string role = "server";  // server | worker (a supervisor alone)
  std::string home;             // FLOWMESH_HOME; default $HOME/.flowmesh
  api::ServerAppConfig app;     // host, port, state_dir, redis, gc, retention, scheduler, …
  std::string log_level = "info";
  std::string log_file;
  std::string log_dir;
  size_t body_limit_mb = 16;
  std::string utility;
  bool no_supervisor = false;
  std::string sqlite_synchronous = "full";
  std::string auth = "on";
  std::string plugins;
  // Supervisor role.
  std::string root_url;
  std::string node_alias;
  std::string grpc_address = "127.0.0.1:0";
  std::string worker_token;
  std::string api_token;
  bool local = false;
};

// Declares every setting on `table` bound to `*s`, with `home_default` as the default of
// --home ($HOME/.flowmesh, resolved by main()).
void DeclareServerSettings(SettingsTable& table, ServerSettings* s, const std::string& home_default);

// After parsing: the server's config (InvalidArgument naming the setting when a value is bad).
Result<api::ServerAppConfig> ToServerAppConfig(const ServerSettings& s,
                                               const std::string& executable_dir);
// After parsing, for --role worker.
Result<supervisor::SupervisorConfig> ToSupervisorConfig(const ServerSettings& s,
                                                        const std::string& executable_dir);

}  // namespace flowmesh::config
