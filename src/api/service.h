// The REST API of /api/v1 (see shared/API.md): builds the router whose handlers read
// the store and the CAS directly and send every state change to the scheduler.
// Handlers run on HTTP io threads and never block on the scheduler: changes use async
// responders completed from the scheduler or the store's writer thread.
#pragma once

#include <memory>
#include <string>

#include "auth/authenticator.h"
#include "cas/content_store.h"
#include "http/http.h"
#include "scheduler/event_hub.h"
#include "scheduler/scheduler.h"
#include "state/store.h"

namespace flowmesh::api {

struct ApiConfig {
  std::string version = "0.1.0";
  size_t body_limit = 16 << 20;
};

class ApiService {
 public:
  ApiService(ApiConfig config, state::Store* store, cas::ContentStore* blobs,
             scheduler::Scheduler* scheduler, scheduler::EventHub* hub);

  std::shared_ptr<http::Router> MakeRouter();

  // Turns authentication, per-organisation isolation, quotas and the admin routes on.
  // Call before MakeRouter. Without it every caller acts as the default organisation's admin.
  void SetAuthenticator(auth::Authenticator* authenticator) { auth_ = authenticator; }

  // Counters shown by /metrics; the app adds server-level gauges.
  void SetExtraMetrics(std::function<nlohmann::json()> extra) { extra_metrics_ = std::move(extra); }
  // POST /api/v1/system/gc runs one storage maintenance pass (grace in seconds).
  void SetMaintenance(std::function<nlohmann::json(double)> pass) { maintenance_ = std::move(pass); }

 private:
  void AddWorkflowRoutes(http::Router& r);
  void AddTaskRoutes(http::Router& r);
  void AddResultRoutes(http::Router& r);
  void AddWorkerRoutes(http::Router& r);
  void AddSystemRoutes(http::Router& r);
  void AddTraceRoutes(http::Router& r);
  void AddAdminRoutes(http::Router& r);  // admin_routes.cc: orgs, keys, usage
  // NotFound (worded as for a missing record) unless the caller may see a record of
  // `org_id`; then PermissionDenied unless every plugin permission checker allows.
  Status CheckAccess(const http::Request& req, const std::string& org_id, auth::Kind kind,
                     auth::Action action, const std::string& what, const std::string& id) const;
  // Quota and submission-guard checks before a submission; the refusal to send, if any.
  std::optional<http::Response> CheckSubmission(const http::Request& req,
                                                const spec::WorkflowDef& def) const;
  void AddLogRoutes(http::Router& r, const std::string& kind);

  nlohmann::json MetricsJson() const;

  ApiConfig config_;
  state::Store* store_;
  cas::ContentStore* blobs_;
  scheduler::Scheduler* scheduler_;
  scheduler::EventHub* hub_;
  auth::Authenticator* auth_ = nullptr;
  std::function<nlohmann::json()> extra_metrics_;
  std::function<nlohmann::json(double)> maintenance_;
};

}  // namespace flowmesh::api
