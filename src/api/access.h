// Access control of the REST API: the permission every route needs (one table, see
// docs/security.md) and the middleware that authenticates each request and checks it
// before the route's handler runs. The handler finds the caller with Caller().
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "auth/authenticator.h"
#include "http/http.h"

namespace flowmesh::api {

struct RoutePermission {
  bool public_route = false;  // no token needed
  bool listed = true;         // false: not in the table (the system:admin fallback)
  auth::Kind kind = auth::Kind::kSystem;
  auth::Action action = auth::Action::kAdmin;
};

// The permission of a route, by method and pattern ("/api/v1/workflows/{id}").
// Routes missing from the table need system:admin.
RoutePermission PermissionFor(const std::string& method, const std::string& pattern);

// A router whose every route first authenticates the request (401), then checks the
// route's permission (403), then stores the principal in Request::context.
std::shared_ptr<http::Router> GuardRouter(const http::Router& routes,
                                          const auth::Authenticator* authenticator);

// The authenticated caller; nullptr when authentication is off.
const auth::Principal* Caller(const http::Request& req);

// Whether the caller may see a record of `org_id` (always, with authentication off).
inline bool Visible(const http::Request& req, const std::string& org_id) {
  const auth::Principal* p = Caller(req);
  return p == nullptr || p->CanSee(org_id);
}

}  // namespace flowmesh::api
