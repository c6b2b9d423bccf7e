// SSH and serve routes of the published contract. Both need executors this server does not
// have yet (an ssh executor, a serve executor): the routes exist, check the caller and the
// task, and answer 501 {detail} saying so, rather than 404 for an unknown route.
#include "api/access.h"
#include "api/routes/common.h"
#include "api/service.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

constexpr const char* kNoSsh =
    "SSH sessions are not supported by this server yet: it has no ssh executor, so no task "
    "can publish an sshd to proxy to";
constexpr const char* kNoServe =
    "serve tasks are not supported by this server yet: it has no serve executor to proxy to";

}  // namespace

Response ApiService::NotYetForTask(Request& req, const char* why) {
  auto t = AccessibleTask(req, req.params["id"], auth::Kind::kTask, auth::Action::kWrite);
  if (!t.ok()) return StatusResponse(t.status());
  return Response::Error(501, why);
}

void ApiService::AddSshRoutes(http::Router& r) {
  std::string p = kPrefix;
  // No ssh executor, so no session is ever open: the list is truthfully empty.
  r.Add("GET", p + "/ssh/connections", [](Request&) { return JsonResponse(200, json::array()); });
  r.Add("GET", p + "/ssh/tasks/{id}/proxy",
        [this](Request& req) { return NotYetForTask(req, kNoSsh); });
  for (const char* method : {"GET", "POST", "PUT", "DELETE"}) {
    r.Add(method, p + "/serve/tasks/{id}/{path...}",
          [this](Request& req) { return NotYetForTask(req, kNoServe); });
  }
}

}  // namespace flowmesh::api
