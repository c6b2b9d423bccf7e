// The CLI's local settings: where FLOWMESH_HOME is, what config.json holds (server URL,
// API key) and how --url / --api-key / environment / config file combine. Pure functions
// over explicit inputs (no getenv here) so tests can drive them.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"

namespace flowmesh::cli {

inline constexpr const char* kDefaultUrl = "http://127.0.0.1:8000";

// Contents of a config file: $FLOWMESH_HOME/config.json ({"url", "api_key"}; "base_url" is
// read too) or the published CLI's TOML file (~/.flowmesh/config.toml: base_url = "…",
// api_key = "…").
struct CliConfig {
  std::string url;
  std::string api_key;
};

// The directory layout under FLOWMESH_HOME.
struct HomeLayout {
  std::string home;
  std::string ConfigFile() const { return home + "/config.json"; }
  // The published CLI's file (its default ~/.flowmesh/config.toml when FLOWMESH_HOME is unset);
  // read when config.json is absent.
  std::string TomlConfigFile() const { return home + "/config.toml"; }
  std::string RunDir() const { return home + "/run"; }
  std::string LogDir() const { return home + "/logs"; }
  std::string StateDir() const { return home + "/state"; }
  std::string RedisDir() const { return home + "/redis"; }
  std::string PidFile(const std::string& name) const { return RunDir() + "/" + name + ".pid"; }
  std::string LogFile(const std::string& name) const { return LogDir() + "/" + name + ".log"; }
  // Written by `stack up`: the URL of the locally started server.
  std::string ServerUrlFile() const { return RunDir() + "/server.url"; }
};

// FLOWMESH_HOME if set (non-empty), else $HOME/.flowmesh.
std::string ResolveHome(const char* flowmesh_home_env, const char* home_env);

// A missing file is an empty config, not an error; a malformed one is. A path ending in
// ".toml" is read as the published CLI's TOML file, anything else as JSON.
Result<CliConfig> LoadConfig(const std::string& path);
// The `key = "value"` lines of the published CLI's config.toml (comments and tables ignored).
Result<CliConfig> ParseTomlConfig(const std::string& text);
// Writes atomically with mode 0600 (the file holds a secret); creates the parent directory.
// A ".toml" path is written in the published CLI's format.
Status SaveConfig(const std::string& path, const CliConfig& config);

// The published CLI's masking: the first and last 4 characters, '*' for the rest; keys of
// 8 characters or fewer are fully masked.
std::string MaskApiKey(const std::string& key);

// Where the server URL and API key come from, first non-empty wins:
// flag, environment, config.json, the running local stack's URL file, the default.
struct Endpoint {
  std::string url;
  std::string api_key;
  std::string url_source;      // "flag", "env", "config", "stack", "default"
  std::string api_key_source;  // "flag", "env", "config", "" (none)
};
Endpoint ResolveEndpoint(const std::string& flag_url, const std::string& flag_key,
                         const char* env_url, const char* env_key, const CliConfig& file,
                         const std::string& stack_url);

// Strips trailing slashes; adds "http://" when no scheme is given.
std::string NormalizeUrl(std::string url);

}  // namespace flowmesh::cli
