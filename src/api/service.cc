#include "api/service.h"

#include "api/collections.h"

#include "api/access.h"
#include "ui/routes.h"

namespace flowmesh::api {

ApiService::ApiService(ApiConfig config, ApiDeps deps)
    : config_(std::move(config)),
      store_(deps.store),
      blobs_(deps.blobs),
      scheduler_(deps.scheduler),
      hub_(deps.hub),
      auth_(deps.authenticator),
      extra_metrics_(std::move(deps.extra_metrics)),
      maintenance_(std::move(deps.maintenance)),
      secret_routes_{deps.secrets, deps.store, deps.authenticator != nullptr,
                     {deps.api_default_url, deps.api_default_credential}} {}

Result<state::TaskRecord> ApiService::AccessibleTask(const http::Request& req,
                                                     const std::string& id, auth::Kind kind,
                                                     auth::Action action) const {
  auto task = store_->GetTask(id);
  if (!task.ok()) return task.status();
  FM_RETURN_IF_ERROR(CheckAccess(req, task->org_id, kind, action, "task", id));
  return task;
}

std::shared_ptr<http::Router> ApiService::MakeRouter() {
  auto r = std::make_shared<http::Router>();
  AddSystemRoutes(*r);
  AddWorkflowRoutes(*r);
  AddTaskRoutes(*r);
  AddResultRoutes(*r);
  AddWorkerRoutes(*r);
  AddNodeRoutes(*r);
  AddStackRoutes(*r);
  AddTraceRoutes(*r);
  AddSshRoutes(*r);
  if (secret_routes_.secrets) AddSecretRoutes(*r, secret_routes_);
  AddServeRoutes(*r);
  ui::AddUiRoutes(*r);  // the dashboard: public files; its data comes from the routes above
  CollectionDeps collections;
  collections.store = store_;
  collections.blobs = blobs_;
  collections.hub = hub_;
  collections.auth = auth_;
  collections.submit = [this](http::Request& req, spec::WorkflowDef def, std::string text,
                              CollectionDeps::SubmitDone done, CollectionDeps::Refused refused) {
    SubmitDef(req, std::move(def), std::move(text), "native", std::move(done), std::move(refused));
  };
  collections_ = std::make_shared<CollectionService>(std::move(collections));
  collections_->AddRoutes(*r);
  if (!auth_) return r;
  AddAdminRoutes(*r);
  return GuardRouter(*r, auth_);
}

}  // namespace flowmesh::api
