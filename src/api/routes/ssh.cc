// SSH routes of the published contract. They need an executor this server does not have
// yet (an ssh executor): the routes exist, check the caller and the task, and answer 501
// {detail} saying so, rather than 404 for an unknown route. (The serve proxy: serve.cc.)
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
}

}  // namespace flowmesh::api
