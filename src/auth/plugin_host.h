// Loads the shared libraries named in FLOWMESH_PLUGINS and calls their hooks through the
// C ABI of include/flowmesh/plugin.h. The only class that touches dlopen/dlsym.
//
// Composition: identity providers are asked in load order and the first answer wins;
// permission checkers must all allow; submission guards must all accept; usage sinks
// all receive every row; the first supplier resolver that answers wins.
//
// Thread-safety: every method may be called from any thread. Usage rows are handed to
// the sinks on one dedicated thread, so a slow or failing sink never holds up (or fails)
// the scheduler.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::auth {

struct PluginPrincipal {
  std::string principal_id;
  std::string org_id;
  std::vector<std::string> scopes;
  std::string plugin;  // which plugin answered
};

class PluginHost {
 public:
  // `config_of(name)` gives the configuration string for a plugin (its library name without
  // "lib" and extension). Fails, naming the library, if any cannot be loaded, has the wrong
  // ABI version or refuses to start.
  static Result<std::unique_ptr<PluginHost>> Load(
      const std::vector<std::string>& paths,
      const std::function<std::string(const std::string& name)>& config_of);
  // Splits FLOWMESH_PLUGINS ("a.so:b.so" or "a.so,b.so").
  static std::vector<std::string> SplitList(const std::string& text);
  // A plugin's name: its file's stem without "lib" (libacme_auth.so -> acme_auth).
  static std::string NameOf(const std::string& path);
  // The environment variable holding a plugin's config: FLOWMESH_PLUGIN_CONFIG_<NAME>.
  static std::string ConfigVariable(const std::string& name);
  ~PluginHost();  // Delivers queued usage rows, then unloads.
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  bool empty() const;
  std::vector<std::string> names() const;

  // nullopt: no plugin claimed the token. An error: a plugin failed while answering.
  Result<std::optional<PluginPrincipal>> ResolveIdentity(const std::string& token) const;
  // PermissionDenied with the guard's reason when one refuses.
  Status CheckSubmission(const std::string& principal_id, const std::string& org_id,
                         const std::string& workflow_json) const;
  // Queued for the sinks; never blocks, never fails.
  void RecordUsage(nlohmann::json row);
  bool has_permission_checkers() const;
  // PermissionDenied unless every checker allows.
  Status Require(const std::string& principal_id, const std::string& org_id,
                 const std::string& kind, const std::string& action,
                 const std::string& resource_id) const;
  // nullopt: unrestricted; otherwise the ids every checker allows (intersection).
  std::optional<std::set<std::string>> Accessible(const std::string& principal_id,
                                                  const std::string& org_id,
                                                  const std::string& kind,
                                                  const std::string& action) const;
  void Register(const std::string& kind, const std::string& id, const std::string& org_id,
                const std::string& owner_id) const;
  void Deregister(const std::string& kind, const std::string& id) const;
  void Reconcile(const std::string& kind, const std::vector<std::string>& ids) const;
  // "" when no resolver answers.
  std::string ResolveSupplier(const std::string& worker_id, const std::string& info_json) const;

 private:
  PluginHost();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowmesh::auth
