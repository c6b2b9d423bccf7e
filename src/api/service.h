// The REST API of /api/v1 (see shared/API.md): builds the router whose handlers read
// the store and the CAS directly and send every state change to the scheduler.
// Handlers run on HTTP io threads and never block on the scheduler: changes use async
// responders completed from the scheduler or the store's writer thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/traces.h"
#include "auth/authenticator.h"
#include "api/routes/secrets.h"
#include "auth/secret_store.h"
#include "cas/content_store.h"
#include "http/http.h"
#include "scheduler/event_hub.h"
#include "scheduler/scheduler.h"
#include "state/store.h"

namespace flowmesh::api {

class ServeProxy;   // routes/serve.cc
class CollectionService;  // collections.h
struct ServeTarget;

struct ApiConfig {
  std::string version = "0.1.0";
  size_t body_limit = 16 << 20;
};

// What the API reads and drives, all given at construction (nothing to set later, so no
// order to get wrong). Pointers are borrowed and outlive the service.
struct ApiDeps {
  state::Store* store = nullptr;
  cas::ContentStore* blobs = nullptr;
  scheduler::Scheduler* scheduler = nullptr;
  scheduler::EventHub* hub = nullptr;
  // Authentication, per-organisation isolation, quotas and the admin routes. Null: every
  // caller acts as the default organisation's admin (single-user development only).
  auth::Authenticator* authenticator = nullptr;
  // Server-level gauges added to /metrics; may be empty.
  std::function<nlohmann::json()> extra_metrics;
  // POST /api/v1/system/gc: one storage maintenance pass (grace in seconds); may be empty.
  std::function<nlohmann::json(double)> maintenance;
  // Per-organisation credentials (/api/v1/secrets); null: the routes are not served.
  auth::SecretStore* secrets = nullptr;
  std::string api_default_url;         // see ServerAppConfig
  std::string api_default_credential;
};

class ApiService {
 public:
  ApiService(ApiConfig config, ApiDeps deps);

  std::shared_ptr<http::Router> MakeRouter();

 private:
  // One file per resource under src/api/routes/; each Add*Routes registers named handlers.
  void AddWorkflowRoutes(http::Router& r);                      // routes/workflows.cc
  void AddLogRoutes(http::Router& r, const std::string& kind);  // routes/logs.cc
  void AddTaskRoutes(http::Router& r);                          // routes/tasks.cc
  void AddResultRoutes(http::Router& r);                        // routes/results.cc
  void AddWorkerRoutes(http::Router& r);                        // routes/workers.cc
  void AddNodeRoutes(http::Router& r);                          // routes/nodes.cc
  void AddStackRoutes(http::Router& r);                         // routes/nodes.cc
  void AddSystemRoutes(http::Router& r);                        // routes/system.cc
  void AddTraceRoutes(http::Router& r);                         // routes/traces.cc
  void AddSshRoutes(http::Router& r);                           // routes/ssh.cc
  void AddServeRoutes(http::Router& r);                         // routes/serve.cc
  void AddAdminRoutes(http::Router& r);  // admin_routes.cc: orgs, keys, usage

  // Workflows.
  void SubmitWorkflow(http::Request& req, std::shared_ptr<http::Responder> resp);
  // The one submission path (quotas, plugins, the scheduler) for parsed workflows: the
  // route above and the collection builds and queries. `refused` gets a quota refusal.
  void SubmitDef(http::Request& req, spec::WorkflowDef def, std::string text,
                 const std::string& format, scheduler::SubmitCallback done,
                 std::function<void(http::Response)> refused);
  http::Response ValidateWorkflow(http::Request& req);
  http::Response ListWorkflows(http::Request& req);
  http::Response GetWorkflow(http::Request& req);
  void CancelWorkflow(http::Request& req, std::shared_ptr<http::Responder> resp);
  Result<nlohmann::json> WorkflowRecordJson(const state::WorkflowRecord& w,
                                            const std::string& view) const;
  // Logs of a workflow or a task.
  Status CheckLogOwner(const http::Request& req, bool is_task, const std::string& id) const;
  http::Response QueryLogs(http::Request& req, bool is_task);
  void StreamLogs(http::Request& req, std::shared_ptr<http::SseStream> stream, bool is_task);
  // Tasks.
  http::Response ListTasks(http::Request& req);
  http::Response GetTask(http::Request& req);
  void StopTask(http::Request& req, std::shared_ptr<http::Responder> resp);
  // Results.
  void PostResult(http::Request& req, std::shared_ptr<http::Responder> resp);
  http::Response GetResult(http::Request& req);
  void PostResultFiles(http::Request& req, std::shared_ptr<http::Responder> resp);
  http::Response GetResultFile(http::Request& req);
  http::Response GetResultLogs(http::Request& req);
  http::Response GetResultBundle(http::Request& req);
  Result<std::string> TaskLogLines(const std::string& task_id) const;
  Result<nlohmann::json> ResultEnvelope(const std::string& task_id) const;
  // Workers and nodes.
  std::map<std::string, std::string> NodeAliases() const;  // node id → alias
  std::vector<nlohmann::json> WorkerRecords() const;       // published WorkerInfo shape
  http::Response ListWorkers(http::Request& req);
  http::Response GetWorker(http::Request& req);
  http::Response ListCordons(http::Request& req);
  void SetCordon(const std::string& worker_id, const std::string& node_alias,
                 const std::string& alias, bool cordon, std::shared_ptr<http::Responder> resp);
  http::Response ListNodes(http::Request& req);
  http::Response GetNode(http::Request& req);
  http::Response ListNodeWorkers(http::Request& req, const std::string& node_id);
  void RegisterNode(http::Request& req, std::shared_ptr<http::Responder> resp);
  void RegisterNodeWorker(http::Request& req, std::shared_ptr<http::Responder> resp);
  void NodeWorkerCommand(http::Request& req, std::shared_ptr<http::Responder> resp, bool start);
  void StartStackWorker(http::Request& req, std::shared_ptr<http::Responder> resp);
  void StackWorkerVerb(http::Request& req, std::shared_ptr<http::Responder> resp,
                       const std::string& kind);
  // Traces, ssh/serve.
  Result<WorkflowTrace> TraceOf(const http::Request& req, const std::string& id) const;
  http::Response NotYetForTask(http::Request& req, const char* why);
  // Where a serve proxy request goes, or why it cannot (404 / 409).
  Result<ServeTarget> ServeTargetOf(const http::Request& req) const;

  // NotFound (worded as for a missing record) unless the caller may see a record of
  // `org_id`; then PermissionDenied unless every plugin permission checker allows.
  Status CheckAccess(const http::Request& req, const std::string& org_id, auth::Kind kind,
                     auth::Action action, const std::string& what, const std::string& id) const;
  // The task `id` when the caller may `action` on its `kind` (task or result; as
  // CheckAccess), else the error.
  Result<state::TaskRecord> AccessibleTask(const http::Request& req, const std::string& id,
                                           auth::Kind kind, auth::Action action) const;
  // Quota and submission-guard checks before a submission; the refusal to send, if any.
  std::optional<http::Response> CheckSubmission(const http::Request& req,
                                                const spec::WorkflowDef& def) const;

  nlohmann::json MetricsJson() const;

  ApiConfig config_;
  state::Store* const store_;
  cas::ContentStore* const blobs_;
  scheduler::Scheduler* const scheduler_;
  scheduler::EventHub* const hub_;
  auth::Authenticator* const auth_;
  const std::function<nlohmann::json()> extra_metrics_;
  const std::function<nlohmann::json(double)> maintenance_;
  SecretRouteDeps secret_routes_;  // routes/secrets.cc
  std::shared_ptr<ServeProxy> serve_proxy_;  // set by AddServeRoutes
  std::shared_ptr<CollectionService> collections_;
};

}  // namespace flowmesh::api
