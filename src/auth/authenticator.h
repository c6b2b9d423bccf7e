// Who is calling, and what may they do: resolves bearer tokens to principals (built-in
// API keys first, then identity-provider plugins), manages organisations, API keys and
// per-organisation policy, and answers permission checks (scopes, then plugin checkers).
//
// Keys and organisations are read from the store once at start-up and kept in memory;
// every change is written through synchronously and applied to the in-memory copy at
// once, so a revoked key is refused by the very next request. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/plugin_host.h"
#include "auth/scopes.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "state/records.h"
#include "state/store.h"

namespace flowmesh::auth {

struct Principal {
  std::string principal_id;
  std::string org_id;
  std::string key_id;  // built-in keys only
  std::string via;     // "key", "service" or the identity plugin's name
  ScopeSet scopes;
  // The server's own service principal (supervisors and workers uploading results for
  // every organisation). No API key has it.
  bool all_orgs = false;

  bool Allows(Kind kind, Action action) const { return scopes.Allows(kind, action); }
  bool CanSee(const std::string& org_id_of_resource) const {
    return all_orgs || org_id_of_resource == org_id;
  }
};

// Quotas and scheduling weight of one organisation; 0 means no limit.
struct OrgPolicy {
  int64_t max_queued_tasks = 0;
  int64_t max_running_tasks = 0;
  int64_t max_gpus = 0;
  int64_t max_request_bytes = 0;
  int64_t max_collection_bytes = 0;  // bytes of the organisation's ready collection versions
  double weight = 1.0;

  nlohmann::json ToJson() const;
  // Fields absent from `j` keep their values in `base`.
  static Result<OrgPolicy> FromJson(const nlohmann::json& j, const OrgPolicy& base);
  static Result<OrgPolicy> FromJson(const nlohmann::json& j);
};

struct CreatedKey {
  std::string key;  // shown once
  state::ApiKeyRecord record;
};

struct AuthenticatorConfig {
  // SHA-256 of an admin key to ensure exists (org-default, scopes "*"); set by `stack up`.
  std::string bootstrap_key_sha256;
  // Token of the service principal handed to the local supervisor and its workers.
  std::string service_token;
};

class Authenticator {
 public:
  // `plugins` may be null. Reads orgs and keys from the store.
  static Result<std::unique_ptr<Authenticator>> Create(AuthenticatorConfig config,
                                                       state::Store* store,
                                                       PluginHost* plugins);

  // From an Authorization header value ("Bearer <token>"). Unauthenticated when missing,
  // unknown or revoked (the message never contains the token).
  Result<Principal> Authenticate(std::string_view authorization) const;
  Result<Principal> AuthenticateToken(std::string_view token) const;

  // Scope check, then every plugin permission checker for a single resource.
  // PermissionDenied naming the missing permission.
  Status Require(const Principal& p, Kind kind, Action action,
                 const std::string& resource_id = "") const;
  // nullopt: every resource of the principal's organisation is visible.
  std::optional<std::set<std::string>> Accessible(const Principal& p, Kind kind,
                                                  Action action) const;

  // Organisations.
  Result<state::OrgRecord> CreateOrg(const std::string& name, const OrgPolicy& policy);
  Result<state::OrgRecord> UpdateOrgPolicy(const std::string& org, const nlohmann::json& changes);
  std::vector<state::OrgRecord> ListOrgs() const;
  std::optional<state::OrgRecord> FindOrg(const std::string& id_or_name) const;
  OrgPolicy PolicyOf(const std::string& org_id) const;
  // Called with every organisation's policy whenever one changes (and once at start-up).
  void OnPolicyChange(std::function<void(const std::string& org_id, const OrgPolicy&)> cb);

  // Keys. `creator` may only hand out scopes it holds.
  Result<CreatedKey> CreateKey(const Principal& creator, const std::string& org,
                               const std::string& principal_id, const std::string& name,
                               const std::vector<std::string>& scopes);
  Status RevokeKey(const std::string& key_id);
  std::vector<state::ApiKeyRecord> ListKeys(const std::string& org_id) const;  // "" = all

  PluginHost* plugins() const { return plugins_; }

 private:
  Authenticator(AuthenticatorConfig config, state::Store* store, PluginHost* plugins);
  Status Load();

  struct KeyEntry {
    state::ApiKeyRecord record;
    ScopeSet scopes;
  };

  AuthenticatorConfig config_;
  state::Store* store_;
  PluginHost* plugins_;
  std::string service_hash_;

  mutable SharedMutex mu_;
  std::unordered_map<std::string, KeyEntry> active_by_hash_ FM_GUARDED_BY(mu_);
  std::map<std::string, state::ApiKeyRecord> keys_by_id_ FM_GUARDED_BY(mu_);  // all, revoked too
  std::map<std::string, state::OrgRecord> orgs_ FM_GUARDED_BY(mu_);
  std::map<std::string, OrgPolicy> policies_ FM_GUARDED_BY(mu_);
  std::vector<std::function<void(const std::string&, const OrgPolicy&)>> policy_observers_
      FM_GUARDED_BY(mu_);
};

}  // namespace flowmesh::auth
