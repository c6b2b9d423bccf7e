#include "api/service.h"

#include "api/access.h"

namespace flowmesh::api {

ApiService::ApiService(ApiConfig config, state::Store* store, cas::ContentStore* blobs,
                       scheduler::Scheduler* scheduler, scheduler::EventHub* hub)
    : config_(std::move(config)), store_(store), blobs_(blobs), scheduler_(scheduler), hub_(hub) {}

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
  if (!auth_) return r;
  AddAdminRoutes(*r);
  return GuardRouter(*r, auth_);
}

}  // namespace flowmesh::api
