#include "auth/plugin_host.h"

#include <dlfcn.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "common/thread_annotations.h"
#include "flowmesh/plugin.h"

struct FlowmeshPrincipal {
  flowmesh::auth::PluginPrincipal value;
  bool set = false;
};

struct FlowmeshIdList {
  std::set<std::string> ids;
};

namespace flowmesh::auth {
namespace {

void HostPrincipalSet(FlowmeshPrincipal* out, const char* principal_id, const char* org_id,
                      const char* scopes);
void HostIdListAdd(FlowmeshIdList* out, const char* id) {
  if (out && id) out->ids.insert(id);
}
void HostLog(int level, const char* message) {
  const char* m = message ? message : "";
  switch (level) {
    case 0: FM_LOG_DEBUG("plugin: {}", m); break;
    case 1: FM_LOG_INFO("plugin: {}", m); break;
    case 2: FM_LOG_WARN("plugin: {}", m); break;
    default: FM_LOG_ERROR("plugin: {}", m); break;
  }
}

const FlowmeshHostApi kHostApi = {sizeof(FlowmeshHostApi), &HostPrincipalSet, &HostIdListAdd,
                                  &HostLog};

using AbiVersionFn = void (*)(uint32_t*, uint32_t*);
using CreateFn = int (*)(const FlowmeshHostApi*, const char*, FlowmeshPlugin**, char*, size_t);
using DestroyFn = void (*)(FlowmeshPlugin*);
using IdentityFn = int (*)(FlowmeshPlugin*, const char*, FlowmeshPrincipal*);
using GuardFn = int (*)(FlowmeshPlugin*, const char*, const char*, const char*, char*, size_t);
using UsageFn = int (*)(FlowmeshPlugin*, const char*, char*, size_t);
using AccessibleFn = int (*)(FlowmeshPlugin*, const char*, const char*, const char*, const char*,
                             FlowmeshIdList*);
using RequireFn = int (*)(FlowmeshPlugin*, const char*, const char*, const char*, const char*,
                          const char*, char*, size_t);
using RegisterFn = int (*)(FlowmeshPlugin*, const char*, const char*, const char*, const char*);
using DeregisterFn = int (*)(FlowmeshPlugin*, const char*, const char*);
using ReconcileFn = int (*)(FlowmeshPlugin*, const char*, const char*);
using SupplierFn = int (*)(FlowmeshPlugin*, const char*, const char*, char*, size_t);

constexpr size_t kReasonCap = 512;

struct Loaded {
  std::string name;
  std::string path;
  void* handle = nullptr;
  FlowmeshPlugin* plugin = nullptr;
  DestroyFn destroy = nullptr;
  IdentityFn identity = nullptr;
  GuardFn guard = nullptr;
  UsageFn usage = nullptr;
  AccessibleFn accessible = nullptr;
  RequireFn require = nullptr;
  RegisterFn reg = nullptr;
  DeregisterFn dereg = nullptr;
  ReconcileFn reconcile = nullptr;
  SupplierFn supplier = nullptr;
};

std::string ReasonOr(const char* buf, const std::string& fallback) {
  return buf[0] ? std::string(buf) : fallback;
}

template <typename T>
T Sym(void* handle, const char* name) {
  return reinterpret_cast<T>(::dlsym(handle, name));
}


void HostPrincipalSet(FlowmeshPrincipal* out, const char* principal_id, const char* org_id,
                      const char* scopes) {
  if (!out) return;
  out->value.principal_id = principal_id ? principal_id : "";
  out->value.org_id = org_id ? org_id : "";
  out->value.scopes.clear();
  std::string cur;
  for (const char* p = scopes ? scopes : ""; ; ++p) {
    if (*p == ' ' || *p == ',' || *p == '\0') {
      if (!cur.empty()) out->value.scopes.push_back(std::move(cur));
      cur.clear();
      if (*p == '\0') break;
    } else {
      cur += *p;
    }
  }
  out->set = true;
}

}  // namespace

struct PluginHost::Impl {
  std::vector<Loaded> plugins;

  // Usage rows go to the sinks on this thread.
  Mutex mu;
  std::condition_variable cv;
  std::deque<nlohmann::json> rows FM_GUARDED_BY(mu);
  bool stopping FM_GUARDED_BY(mu) = false;
  std::thread sink_thread;

  void SinkLoop() {
    MutexLock lock(mu);
    for (;;) {
      lock.Wait(cv, [this]() FM_REQUIRES(mu) { return stopping || !rows.empty(); });
      if (rows.empty()) return;  // stopping and drained
      nlohmann::json row = std::move(rows.front());
      rows.pop_front();
      lock.Unlock();
      std::string text = row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      for (const auto& p : plugins) {
        if (!p.usage) continue;
        char reason[kReasonCap] = {0};
        int rc = p.usage(p.plugin, text.c_str(), reason, sizeof(reason));
        if (rc != FM_PLUGIN_OK) {
          FM_LOG_WARN("usage sink {} failed for task {}: {}", p.name, row.value("task_id", ""),
                      ReasonOr(reason, "no reason given"));
        }
      }
      lock.Lock();
    }
  }
};

PluginHost::PluginHost() : impl_(std::make_unique<Impl>()) {}

PluginHost::~PluginHost() {
  {
    MutexLock lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->sink_thread.joinable()) impl_->sink_thread.join();
  for (auto it = impl_->plugins.rbegin(); it != impl_->plugins.rend(); ++it) {
    if (it->destroy && it->plugin) it->destroy(it->plugin);
    if (it->handle) ::dlclose(it->handle);
  }
}

std::string PluginHost::NameOf(const std::string& path) {
  std::string stem = std::filesystem::path(path).stem().string();
  if (stem.rfind("lib", 0) == 0) stem = stem.substr(3);
  return stem;
}

std::string PluginHost::ConfigVariable(const std::string& name) {
  std::string var = "FLOWMESH_PLUGIN_CONFIG_";
  for (char c : name) {
    var += std::isalnum(static_cast<unsigned char>(c))
               ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
               : '_';
  }
  return var;
}

std::vector<std::string> PluginHost::SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == ':' || c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

Result<std::unique_ptr<PluginHost>> PluginHost::Load(
    const std::vector<std::string>& paths,
    const std::function<std::string(const std::string& name)>& config_of) {
  std::unique_ptr<PluginHost> host(new PluginHost());
  for (const auto& path : paths) {
    Loaded p;
    p.path = path;
    p.name = NameOf(path);
    auto fail = [&](const std::string& why) {
      if (p.handle) ::dlclose(p.handle);
      return FailedPrecondition("plugin " + path + ": " + why);
    };
    p.handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!p.handle) {
      const char* e = ::dlerror();
      return fail(std::string("cannot load: ") + (e ? e : "unknown dlopen error"));
    }
    auto version = Sym<AbiVersionFn>(p.handle, "flowmesh_plugin_abi_version");
    auto create = Sym<CreateFn>(p.handle, "flowmesh_plugin_create");
    p.destroy = Sym<DestroyFn>(p.handle, "flowmesh_plugin_destroy");
    if (!version || !create || !p.destroy) {
      return fail(
          "not a FlowMesh plugin (missing flowmesh_plugin_abi_version, flowmesh_plugin_create "
          "or flowmesh_plugin_destroy)");
    }
    uint32_t major = 0, minor = 0;
    version(&major, &minor);
    if (major != FLOWMESH_PLUGIN_ABI_MAJOR || minor > FLOWMESH_PLUGIN_ABI_MINOR) {
      return fail("plugin ABI version " + std::to_string(major) + "." + std::to_string(minor) +
                  " is not supported by this server (ABI " +
                  std::to_string(FLOWMESH_PLUGIN_ABI_MAJOR) + "." +
                  std::to_string(FLOWMESH_PLUGIN_ABI_MINOR) + ")");
    }
    std::string config = config_of ? config_of(p.name) : "";
    char reason[kReasonCap] = {0};
    int rc = create(&kHostApi, config.c_str(), &p.plugin, reason, sizeof(reason));
    if (rc != FM_PLUGIN_OK) return fail("failed to start: " + ReasonOr(reason, "no reason given"));
    p.identity = Sym<IdentityFn>(p.handle, "flowmesh_identity_resolve");
    p.guard = Sym<GuardFn>(p.handle, "flowmesh_submission_check");
    p.usage = Sym<UsageFn>(p.handle, "flowmesh_usage_record");
    p.accessible = Sym<AccessibleFn>(p.handle, "flowmesh_permission_accessible");
    p.require = Sym<RequireFn>(p.handle, "flowmesh_permission_require");
    p.reg = Sym<RegisterFn>(p.handle, "flowmesh_resource_register");
    p.dereg = Sym<DeregisterFn>(p.handle, "flowmesh_resource_deregister");
    p.reconcile = Sym<ReconcileFn>(p.handle, "flowmesh_resource_reconcile");
    p.supplier = Sym<SupplierFn>(p.handle, "flowmesh_supplier_resolve");
    FM_LOG_INFO("loaded plugin {} ({}, ABI {}.{})", p.name, path, major, minor);
    host->impl_->plugins.push_back(std::move(p));
  }
  Impl* impl = host->impl_.get();
  impl->sink_thread = std::thread([impl] { impl->SinkLoop(); });
  return host;
}

bool PluginHost::empty() const { return impl_->plugins.empty(); }

std::vector<std::string> PluginHost::names() const {
  std::vector<std::string> out;
  for (const auto& p : impl_->plugins) out.push_back(p.name);
  return out;
}

Result<std::optional<PluginPrincipal>> PluginHost::ResolveIdentity(const std::string& token) const {
  for (const auto& p : impl_->plugins) {
    if (!p.identity) continue;
    FlowmeshPrincipal out;
    int rc = p.identity(p.plugin, token.c_str(), &out);
    if (rc == FM_PLUGIN_NOT_MINE) continue;
    if (rc != FM_PLUGIN_OK || !out.set || out.value.org_id.empty()) {
      return Unavailable("identity provider " + p.name + " failed to resolve a token");
    }
    out.value.plugin = p.name;
    return std::optional<PluginPrincipal>(std::move(out.value));
  }
  return std::optional<PluginPrincipal>();
}

Status PluginHost::CheckSubmission(const std::string& principal_id, const std::string& org_id,
                                   const std::string& workflow_json) const {
  for (const auto& p : impl_->plugins) {
    if (!p.guard) continue;
    char reason[kReasonCap] = {0};
    int rc = p.guard(p.plugin, principal_id.c_str(), org_id.c_str(), workflow_json.c_str(), reason,
                     sizeof(reason));
    if (rc == FM_PLUGIN_OK) continue;
    return Status(StatusCode::kPermissionDenied,
                  "submission refused by " + p.name + ": " + ReasonOr(reason, "no reason given"));
  }
  return Status::Ok();
}

void PluginHost::RecordUsage(nlohmann::json row) {
  bool any = false;
  for (const auto& p : impl_->plugins) any |= p.usage != nullptr;
  if (!any) return;
  {
    MutexLock lock(impl_->mu);
    impl_->rows.push_back(std::move(row));
  }
  impl_->cv.notify_one();
}

bool PluginHost::has_permission_checkers() const {
  for (const auto& p : impl_->plugins) {
    if (p.require || p.accessible) return true;
  }
  return false;
}

Status PluginHost::Require(const std::string& principal_id, const std::string& org_id,
                           const std::string& kind, const std::string& action,
                           const std::string& resource_id) const {
  for (const auto& p : impl_->plugins) {
    if (!p.require) continue;
    char reason[kReasonCap] = {0};
    int rc = p.require(p.plugin, principal_id.c_str(), org_id.c_str(), kind.c_str(),
                       action.c_str(), resource_id.c_str(), reason, sizeof(reason));
    if (rc == FM_PLUGIN_OK || rc == FM_PLUGIN_ALL) continue;
    return Status(StatusCode::kPermissionDenied,
                  "permission " + kind + ":" + action + " on " + resource_id + " denied by " +
                      p.name + ": " + ReasonOr(reason, "no reason given"));
  }
  return Status::Ok();
}

std::optional<std::set<std::string>> PluginHost::Accessible(const std::string& principal_id,
                                                            const std::string& org_id,
                                                            const std::string& kind,
                                                            const std::string& action) const {
  std::optional<std::set<std::string>> out;
  for (const auto& p : impl_->plugins) {
    if (!p.accessible) continue;
    FlowmeshIdList list;
    int rc = p.accessible(p.plugin, principal_id.c_str(), org_id.c_str(), kind.c_str(),
                          action.c_str(), &list);
    if (rc == FM_PLUGIN_ALL) continue;
    if (rc != FM_PLUGIN_OK) list.ids.clear();  // a failing checker allows nothing
    if (!out) {
      out = std::move(list.ids);
    } else {
      std::set<std::string> both;
      for (const auto& id : *out) {
        if (list.ids.count(id)) both.insert(id);
      }
      out = std::move(both);
    }
  }
  return out;
}

void PluginHost::Register(const std::string& kind, const std::string& id,
                          const std::string& org_id, const std::string& owner_id) const {
  for (const auto& p : impl_->plugins) {
    if (!p.reg) continue;
    if (p.reg(p.plugin, kind.c_str(), id.c_str(), org_id.c_str(), owner_id.c_str()) !=
        FM_PLUGIN_OK) {
      FM_LOG_WARN("resource registrar {} failed to register {} {}", p.name, kind, id);
    }
  }
}

void PluginHost::Deregister(const std::string& kind, const std::string& id) const {
  for (const auto& p : impl_->plugins) {
    if (p.dereg && p.dereg(p.plugin, kind.c_str(), id.c_str()) != FM_PLUGIN_OK) {
      FM_LOG_WARN("resource registrar {} failed to deregister {} {}", p.name, kind, id);
    }
  }
}

void PluginHost::Reconcile(const std::string& kind, const std::vector<std::string>& ids) const {
  std::string text = nlohmann::json(ids).dump();
  for (const auto& p : impl_->plugins) {
    if (p.reconcile && p.reconcile(p.plugin, kind.c_str(), text.c_str()) != FM_PLUGIN_OK) {
      FM_LOG_WARN("resource registrar {} failed to reconcile {}s", p.name, kind);
    }
  }
}

std::string PluginHost::ResolveSupplier(const std::string& worker_id,
                                        const std::string& info_json) const {
  for (const auto& p : impl_->plugins) {
    if (!p.supplier) continue;
    char out[256] = {0};
    int rc = p.supplier(p.plugin, worker_id.c_str(), info_json.c_str(), out, sizeof(out));
    if (rc == FM_PLUGIN_OK && out[0]) return std::string(out);
  }
  return "";
}

}  // namespace flowmesh::auth
