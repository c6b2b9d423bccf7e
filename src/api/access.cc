#include "api/access.h"

#include <utility>
#include <vector>

namespace flowmesh::api {

using auth::Action;
using auth::Kind;

namespace {

struct Entry {
  const char* method;  // "*" any
  const char* pattern;
  RoutePermission permission;
};

constexpr RoutePermission Public() { return {true, true, Kind::kSystem, Action::kRead}; }
constexpr RoutePermission Need(Kind k, Action a) { return {false, true, k, a}; }

// Exact patterns first; entries ending in "*" match any pattern with that prefix.
const std::vector<Entry>& Table() {
  static const std::vector<Entry> table = {
      {"GET", "/healthz", Public()},
      {"GET", "/api/v1/system/version", Public()},
      // The dashboard's static files; every call it makes carries the user's key.
      {"GET", "/ui*", Public()},
      {"GET", "/api/v1/system/metrics", Need(Kind::kSystem, Action::kAdmin)},
      {"POST", "/api/v1/system/gc", Need(Kind::kSystem, Action::kAdmin)},
      {"GET", "/metrics", Need(Kind::kSystem, Action::kAdmin)},
      {"GET", "/api/v1/schema/workflow", Need(Kind::kWorkflow, Action::kRead)},
      {"POST", "/api/v1/workflows", Need(Kind::kWorkflow, Action::kWrite)},
      {"POST", "/api/v1/workflows/validate", Need(Kind::kWorkflow, Action::kRead)},
      {"POST", "/api/v1/workflows/{id}/cancel", Need(Kind::kWorkflow, Action::kCancel)},
      {"GET", "/api/v1/workflows*", Need(Kind::kWorkflow, Action::kRead)},
      {"POST", "/api/v1/tasks/{id}/stop", Need(Kind::kTask, Action::kCancel)},
      {"GET", "/api/v1/tasks*", Need(Kind::kTask, Action::kRead)},
      {"POST", "/api/v1/results*", Need(Kind::kResult, Action::kWrite)},
      {"GET", "/api/v1/results*", Need(Kind::kResult, Action::kRead)},
      {"GET", "/api/v1/traces/*", Need(Kind::kWorkflow, Action::kRead)},
      {"GET", "/api/v1/workers*", Need(Kind::kWorker, Action::kRead)},
      {"*", "/api/v1/workers*", Need(Kind::kWorker, Action::kAdmin)},
      {"POST", "/api/v1/nodes/register", Need(Kind::kNode, Action::kWrite)},
      {"POST", "/api/v1/nodes/{id}/workers/register", Need(Kind::kNode, Action::kWrite)},
      {"GET", "/api/v1/nodes*", Need(Kind::kNode, Action::kRead)},
      {"*", "/api/v1/nodes*", Need(Kind::kNode, Action::kAdmin)},
      {"GET", "/api/v1/stack/*", Need(Kind::kWorker, Action::kRead)},
      {"*", "/api/v1/stack/*", Need(Kind::kWorker, Action::kAdmin)},
      {"GET", "/api/v1/ssh/connections", Need(Kind::kSystem, Action::kAdmin)},
      {"*", "/api/v1/ssh/*", Need(Kind::kTask, Action::kWrite)},
      // Calling a served model is reading the task (the published server's scope).
      {"*", "/api/v1/serve/*", Need(Kind::kTask, Action::kRead)},
      {"GET", "/api/v1/usage", Need(Kind::kSystem, Action::kRead)},
      // Resolve also requires the service principal (it holds result:write to upload).
      {"POST", "/api/v1/secrets/resolve", Need(Kind::kResult, Action::kWrite)},
      // Collections: the fleet's resolve and blob fetch; a query runs a workflow.
      {"POST", "/api/v1/collections/resolve", Need(Kind::kResult, Action::kWrite)},
      {"GET", "/api/v1/collections/blobs/{digest}", Need(Kind::kResult, Action::kWrite)},
      {"POST", "/api/v1/collections*", Need(Kind::kWorkflow, Action::kWrite)},
      {"DELETE", "/api/v1/collections/{name}", Need(Kind::kWorkflow, Action::kWrite)},
      {"GET", "/api/v1/collections*", Need(Kind::kWorkflow, Action::kRead)},
      {"*", "/api/v1/secrets*", Need(Kind::kWorkflow, Action::kWrite)},
      {"*", "/api/v1/admin/*", Need(Kind::kSystem, Action::kAdmin)},
  };
  return table;
}

bool PatternMatches(const std::string& entry, const std::string& pattern) {
  if (!entry.empty() && entry.back() == '*') {
    return pattern.compare(0, entry.size() - 1, entry, 0, entry.size() - 1) == 0;
  }
  return entry == pattern;
}

std::string PatternOf(const http::Router::Route& route) {
  std::string out;
  for (const auto& seg : route.segments) out += "/" + seg;
  return out.empty() ? "/" : out;
}

// Authenticates and authorises; on success stores the principal in req.context.
std::optional<http::Response> Check(const auth::Authenticator* authn, const RoutePermission& perm,
                                    http::Request& req) {
  if (perm.public_route) return std::nullopt;
  std::string header = req.Header("Authorization");
  // Browsers cannot set headers on EventSource / WebSocket: accept ?token= there.
  Result<auth::Principal> principal =
      header.empty() && !req.Query("token").empty() ? authn->AuthenticateToken(req.Query("token"))
                                                    : authn->Authenticate(header);
  if (!principal.ok()) {
    http::Response r = http::Response::Error(principal.status());
    r.headers["WWW-Authenticate"] = "Bearer";
    return r;
  }
  Status s = authn->Require(*principal, perm.kind, perm.action);
  if (!s.ok()) return http::Response::Error(s);
  req.context = std::move(principal).value();
  return std::nullopt;
}

}  // namespace

RoutePermission PermissionFor(const std::string& method, const std::string& pattern) {
  for (const auto& e : Table()) {
    if ((std::string(e.method) == "*" || e.method == method) && PatternMatches(e.pattern, pattern)) {
      return e.permission;
    }
  }
  return {false, false, Kind::kSystem, Action::kAdmin};
}

const auth::Principal* Caller(const http::Request& req) {
  return std::any_cast<auth::Principal>(&req.context);
}

std::shared_ptr<http::Router> GuardRouter(const http::Router& routes,
                                          const auth::Authenticator* authn) {
  auto out = std::make_shared<http::Router>();
  for (const auto& route : routes.routes()) {
    std::string pattern = PatternOf(*route);
    RoutePermission perm = PermissionFor(route->method, pattern);
    switch (route->kind) {
      case http::Router::Route::Kind::kSync:
        out->Add(route->method, pattern, [authn, perm, h = route->sync](http::Request& req) {
          if (auto refused = Check(authn, perm, req)) return std::move(*refused);
          return h(req);
        });
        break;
      case http::Router::Route::Kind::kAsync: {
        auto guarded = [authn, perm, h = route->async](http::Request& req,
                                                       std::shared_ptr<http::Responder> resp) {
          if (auto refused = Check(authn, perm, req)) {
            resp->Send(std::move(*refused));
            return;
          }
          h(req, std::move(resp));
        };
        if (!route->wants_stream) {
          out->AddAsync(route->method, pattern, std::move(guarded));
          break;
        }
        out->AddAsyncOrSse(route->method, pattern, std::move(guarded), route->sse,
                           route->wants_stream,
                           [authn, perm, pre = route->precheck](http::Request& req)
                               -> std::optional<http::Response> {
                             if (auto refused = Check(authn, perm, req)) return refused;
                             return pre ? pre(req) : std::nullopt;
                           });
        break;
      }
      case http::Router::Route::Kind::kSse:
        out->AddSse(pattern, route->sse,
                    [authn, perm, pre = route->precheck](http::Request& req)
                        -> std::optional<http::Response> {
                      if (auto refused = Check(authn, perm, req)) return refused;
                      return pre ? pre(req) : std::nullopt;
                    });
        break;
    }
  }
  return out;
}

}  // namespace flowmesh::api
