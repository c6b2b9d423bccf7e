#include "auth/authenticator.h"

#include <mutex>

#include "auth/credentials.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"

namespace flowmesh::auth {

using nlohmann::json;

namespace {

Status Unauthenticated(std::string message) {
  return Status(StatusCode::kUnauthenticated, std::move(message));
}

bool ValidOrgName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

}  // namespace

json OrgPolicy::ToJson() const {
  return {{"max_queued_tasks", max_queued_tasks},
          {"max_running_tasks", max_running_tasks},
          {"max_gpus", max_gpus},
          {"max_request_bytes", max_request_bytes},
          {"max_collection_bytes", max_collection_bytes},
          {"weight", weight}};
}

Result<OrgPolicy> OrgPolicy::FromJson(const json& j) { return FromJson(j, OrgPolicy{}); }

Result<OrgPolicy> OrgPolicy::FromJson(const json& j, const OrgPolicy& base) {
  if (!j.is_object()) return InvalidArgument("organisation policy must be a JSON object");
  OrgPolicy p = base;
  for (const auto& [key, value] : j.items()) {
    int64_t* field = key == "max_queued_tasks"    ? &p.max_queued_tasks
                     : key == "max_running_tasks" ? &p.max_running_tasks
                     : key == "max_gpus"          ? &p.max_gpus
                     : key == "max_request_bytes" ? &p.max_request_bytes
                     : key == "max_collection_bytes" ? &p.max_collection_bytes
                                                  : nullptr;
    if (field) {
      if (!value.is_number_integer() || value.get<int64_t>() < 0) {
        return InvalidArgument("policy field '" + key + "' must be a non-negative integer (0: no limit)");
      }
      *field = value.get<int64_t>();
    } else if (key == "weight") {
      if (!value.is_number() || value.get<double>() <= 0) {
        return InvalidArgument("policy field 'weight' must be a positive number");
      }
      p.weight = value.get<double>();
    } else {
      return InvalidArgument("unknown policy field '" + key +
                             "' (expected max_queued_tasks, max_running_tasks, max_gpus, "
                             "max_request_bytes, max_collection_bytes, weight)");
    }
  }
  return p;
}

Authenticator::Authenticator(AuthenticatorConfig config, state::Store* store, PluginHost* plugins)
    : config_(std::move(config)), store_(store), plugins_(plugins) {
  if (!config_.service_token.empty()) service_hash_ = HashApiKey(config_.service_token);
}

Result<std::unique_ptr<Authenticator>> Authenticator::Create(AuthenticatorConfig config,
                                                             state::Store* store,
                                                             PluginHost* plugins) {
  std::unique_ptr<Authenticator> a(new Authenticator(std::move(config), store, plugins));
  FM_RETURN_IF_ERROR(a->Load());
  return a;
}

Status Authenticator::Load() {
  FM_ASSIGN_OR_RETURN(auto orgs, store_->ListOrgs());
  FM_ASSIGN_OR_RETURN(auto keys, store_->ListApiKeys());
  const std::string& boot = config_.bootstrap_key_sha256;
  bool have_boot = boot.empty();
  WriterLock lock(mu_);
  for (auto& o : orgs) {
    json j = json::parse(o.policy_json, nullptr, false);
    auto policy = OrgPolicy::FromJson(j.is_object() ? j : json::object());
    policies_[o.org_id] = policy.ok() ? *policy : OrgPolicy{};
    orgs_[o.org_id] = std::move(o);
  }
  for (auto& k : keys) {
    if (!have_boot && k.key_hash == boot && k.revoked_at == 0) have_boot = true;
    auto scopes = ScopeSet::Parse(k.scopes);
    if (!scopes.ok()) {
      FM_LOG_WARN("API key {} has unreadable scopes ({}); it is disabled", k.key_id,
                  scopes.status().message());
    } else if (k.revoked_at == 0) {
      active_by_hash_[k.key_hash] = KeyEntry{k, *scopes};
    }
    keys_by_id_[k.key_id] = std::move(k);
  }
  if (!have_boot) {
    if (boot.size() != 64) return InvalidArgument("bootstrap key hash must be 64 hex digits");
    state::ApiKeyRecord k;
    k.key_id = NewId("key");
    k.org_id = state::kDefaultOrg;
    k.principal_id = state::kDefaultOwner;
    k.name = "bootstrap admin";
    k.scopes = {"*"};
    k.key_hash = boot;
    k.prefix = "fmk_";
    k.created_at = WallSeconds();
    lock.Unlock();
    FM_RETURN_IF_ERROR(store_->WriteSync([k](state::WriteTxn& txn) { return txn.PutApiKey(k); }));
    lock.Lock();
    active_by_hash_[k.key_hash] = KeyEntry{k, ScopeSet::All()};
    keys_by_id_[k.key_id] = k;
    FM_LOG_INFO("created the bootstrap admin key {}", k.key_id);
  }
  FM_LOG_INFO("authentication on: {} organisation(s), {} active key(s)", orgs_.size(),
              active_by_hash_.size());
  return Status::Ok();
}

Result<Principal> Authenticator::Authenticate(std::string_view authorization) const {
  if (authorization.empty()) {
    return Unauthenticated("missing Authorization header (expected 'Bearer <API key>')");
  }
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), authorization.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    return Unauthenticated("Authorization header must be 'Bearer <API key>'");
  }
  std::string_view token = authorization.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return AuthenticateToken(token);
}

Result<Principal> Authenticator::AuthenticateToken(std::string_view token) const {
  if (token.empty()) return Unauthenticated("empty bearer token");
  std::string hash = HashApiKey(token);
  if (!service_hash_.empty() && ConstantTimeEquals(hash, service_hash_)) {
    Principal p;
    p.principal_id = "svc-fleet";
    p.org_id = state::kDefaultOrg;
    p.via = "service";
    p.all_orgs = true;
    for (Kind k : {Kind::kNode, Kind::kWorker}) {
      p.scopes.Grant(k, Action::kRead);
      p.scopes.Grant(k, Action::kWrite);
    }
    p.scopes.Grant(Kind::kResult, Action::kWrite);
    p.scopes.Grant(Kind::kResult, Action::kRead);
    p.scopes.Grant(Kind::kTask, Action::kRead);
    return p;
  }
  {
    ReaderLock lock(mu_);
    auto it = active_by_hash_.find(hash);
    // The map lookup compares hashes, not keys: timing reveals nothing about a key.
    if (it != active_by_hash_.end() && ConstantTimeEquals(it->second.record.key_hash, hash)) {
      Principal p;
      p.principal_id = it->second.record.principal_id;
      p.org_id = it->second.record.org_id;
      p.key_id = it->second.record.key_id;
      p.via = "key";
      p.scopes = it->second.scopes;
      return p;
    }
  }
  if (plugins_) {
    FM_ASSIGN_OR_RETURN(auto answer, plugins_->ResolveIdentity(std::string(token)));
    if (answer) {
      auto scopes = ScopeSet::Parse(answer->scopes);
      if (!scopes.ok()) {
        return Unauthenticated("identity provider " + answer->plugin +
                               " returned bad scopes: " + scopes.status().message());
      }
      Principal p;
      p.principal_id = answer->principal_id;
      p.org_id = answer->org_id;
      p.via = answer->plugin;
      p.scopes = *scopes;
      return p;
    }
  }
  return Unauthenticated("invalid or revoked API key");
}

Status Authenticator::Require(const Principal& p, Kind kind, Action action,
                              const std::string& resource_id) const {
  if (!p.Allows(kind, action)) {
    return Status(StatusCode::kPermissionDenied,
                  "this key lacks the permission " + std::string(KindName(kind)) + ":" +
                      std::string(ActionName(action)));
  }
  if (plugins_ && !p.all_orgs && !resource_id.empty()) {
    return plugins_->Require(p.principal_id, p.org_id, std::string(KindName(kind)),
                             std::string(ActionName(action)), resource_id);
  }
  return Status::Ok();
}

std::optional<std::set<std::string>> Authenticator::Accessible(const Principal& p, Kind kind,
                                                               Action action) const {
  if (!plugins_ || p.all_orgs) return std::nullopt;
  return plugins_->Accessible(p.principal_id, p.org_id, std::string(KindName(kind)),
                              std::string(ActionName(action)));
}

Result<state::OrgRecord> Authenticator::CreateOrg(const std::string& name, const OrgPolicy& policy) {
  if (!ValidOrgName(name)) {
    return InvalidArgument("organisation name '" + name +
                           "' must be 1-64 letters, digits, '-', '_' or '.'");
  }
  if (FindOrg(name)) return AlreadyExists("organisation '" + name + "' already exists");
  state::OrgRecord o;
  o.org_id = NewId("org");
  o.name = name;
  o.created_at = WallSeconds();
  o.policy_json = policy.ToJson().dump();
  FM_RETURN_IF_ERROR(store_->WriteSync([o](state::WriteTxn& txn) { return txn.PutOrg(o); }));
  std::vector<std::function<void(const std::string&, const OrgPolicy&)>> observers;
  {
    WriterLock lock(mu_);
    orgs_[o.org_id] = o;
    policies_[o.org_id] = policy;
    observers = policy_observers_;
  }
  for (const auto& cb : observers) cb(o.org_id, policy);
  return o;
}

Result<state::OrgRecord> Authenticator::UpdateOrgPolicy(const std::string& org,
                                                        const json& changes) {
  auto found = FindOrg(org);
  if (!found) return NotFound("organisation " + org + " not found");
  FM_ASSIGN_OR_RETURN(OrgPolicy policy, OrgPolicy::FromJson(changes, PolicyOf(found->org_id)));
  found->policy_json = policy.ToJson().dump();
  state::OrgRecord o = *found;
  FM_RETURN_IF_ERROR(store_->WriteSync([o](state::WriteTxn& txn) { return txn.PutOrg(o); }));
  std::vector<std::function<void(const std::string&, const OrgPolicy&)>> observers;
  {
    WriterLock lock(mu_);
    orgs_[o.org_id] = o;
    policies_[o.org_id] = policy;
    observers = policy_observers_;
  }
  for (const auto& cb : observers) cb(o.org_id, policy);
  return o;
}

std::vector<state::OrgRecord> Authenticator::ListOrgs() const {
  ReaderLock lock(mu_);
  std::vector<state::OrgRecord> out;
  for (const auto& [id, o] : orgs_) out.push_back(o);
  return out;
}

std::optional<state::OrgRecord> Authenticator::FindOrg(const std::string& id_or_name) const {
  ReaderLock lock(mu_);
  if (auto it = orgs_.find(id_or_name); it != orgs_.end()) return it->second;
  for (const auto& [id, o] : orgs_) {
    if (o.name == id_or_name) return o;
  }
  return std::nullopt;
}

OrgPolicy Authenticator::PolicyOf(const std::string& org_id) const {
  ReaderLock lock(mu_);
  auto it = policies_.find(org_id);
  return it == policies_.end() ? OrgPolicy{} : it->second;
}

void Authenticator::OnPolicyChange(
    std::function<void(const std::string& org_id, const OrgPolicy&)> cb) {
  std::map<std::string, OrgPolicy> now;
  {
    WriterLock lock(mu_);
    policy_observers_.push_back(cb);
    now = policies_;
  }
  for (const auto& [org, policy] : now) cb(org, policy);
}

Result<CreatedKey> Authenticator::CreateKey(const Principal& creator, const std::string& org,
                                            const std::string& principal_id,
                                            const std::string& name,
                                            const std::vector<std::string>& scopes) {
  auto found = FindOrg(org.empty() ? creator.org_id : org);
  if (!found) return NotFound("organisation " + org + " not found");
  if (scopes.empty()) return InvalidArgument("a key needs at least one scope (e.g. workflow:read)");
  FM_ASSIGN_OR_RETURN(ScopeSet set, ScopeSet::Parse(scopes));
  if (!creator.scopes.Covers(set)) {
    return Status(StatusCode::kPermissionDenied,
                  "a key can only grant scopes its creator holds");
  }
  CreatedKey out;
  out.key = GenerateApiKey();
  auto& k = out.record;
  k.key_id = NewId("key");
  k.org_id = found->org_id;
  k.principal_id = principal_id.empty() ? NewId("usr") : principal_id;
  k.name = name;
  k.scopes = scopes;
  k.key_hash = HashApiKey(out.key);
  k.prefix = KeyDisplayPrefix(out.key);
  k.created_at = WallSeconds();
  FM_RETURN_IF_ERROR(store_->WriteSync([k](state::WriteTxn& txn) { return txn.PutApiKey(k); }));
  WriterLock lock(mu_);
  active_by_hash_[k.key_hash] = KeyEntry{k, set};
  keys_by_id_[k.key_id] = k;
  return out;
}

Status Authenticator::RevokeKey(const std::string& key_id) {
  state::ApiKeyRecord k;
  {
    WriterLock lock(mu_);
    auto it = keys_by_id_.find(key_id);
    if (it == keys_by_id_.end()) return NotFound("API key " + key_id + " not found");
    // Refused from now on, before the revocation is even durable.
    active_by_hash_.erase(it->second.key_hash);
    if (it->second.revoked_at == 0) it->second.revoked_at = WallSeconds();
    k = it->second;
  }
  return store_->WriteSync([k](state::WriteTxn& txn) { return txn.PutApiKey(k); });
}

std::vector<state::ApiKeyRecord> Authenticator::ListKeys(const std::string& org_id) const {
  ReaderLock lock(mu_);
  std::vector<state::ApiKeyRecord> out;
  for (const auto& [id, k] : keys_by_id_) {
    if (org_id.empty() || k.org_id == org_id) out.push_back(k);
  }
  return out;
}

}  // namespace flowmesh::auth
