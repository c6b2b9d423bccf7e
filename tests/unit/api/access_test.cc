#include <gtest/gtest.h>

#include "api/access.h"
#include "api/service.h"

namespace flowmesh::api {
namespace {

using auth::Action;
using auth::Kind;

std::string PatternOf(const http::Router::Route& route) {
  std::string out;
  for (const auto& seg : route.segments) out += "/" + seg;
  return out;
}

// Every route the API serves has an entry in the permission table (a new route without
// one would silently need system:admin).
TEST(AccessTest, EveryRouteIsInThePermissionTable) {
  ApiService service(ApiConfig{}, ApiDeps{});
  auto router = service.MakeRouter();
  ASSERT_FALSE(router->routes().empty());
  for (const auto& route : router->routes()) {
    RoutePermission p = PermissionFor(route->method, PatternOf(*route));
    EXPECT_TRUE(p.listed) << route->method << " " << PatternOf(*route);
  }
}

TEST(AccessTest, RoutesNeedTheDocumentedPermissions) {
  struct Case {
    const char* method;
    const char* pattern;
    Kind kind;
    Action action;
  };
  const Case cases[] = {
      {"POST", "/api/v1/workflows", Kind::kWorkflow, Action::kWrite},
      {"GET", "/api/v1/workflows/{id}/logs/stream", Kind::kWorkflow, Action::kRead},
      {"POST", "/api/v1/workflows/{id}/cancel", Kind::kWorkflow, Action::kCancel},
      {"POST", "/api/v1/tasks/{id}/stop", Kind::kTask, Action::kCancel},
      {"GET", "/api/v1/results/{task_id}/bundle", Kind::kResult, Action::kRead},
      {"POST", "/api/v1/results/{task_id}/files", Kind::kResult, Action::kWrite},
      {"GET", "/api/v1/traces/workflows/{wf}/lineage", Kind::kWorkflow, Action::kRead},
      {"POST", "/api/v1/workers/{id}/cordon", Kind::kWorker, Action::kAdmin},
      {"GET", "/api/v1/workers/cordoned", Kind::kWorker, Action::kRead},
      {"POST", "/api/v1/nodes/register", Kind::kNode, Action::kWrite},
      {"POST", "/api/v1/nodes/{id}/workers/{name}/start", Kind::kNode, Action::kAdmin},
      {"DELETE", "/api/v1/stack/workers/{name}", Kind::kWorker, Action::kAdmin},
      {"GET", "/api/v1/system/metrics", Kind::kSystem, Action::kAdmin},
      {"POST", "/api/v1/admin/keys", Kind::kSystem, Action::kAdmin},
      {"GET", "/api/v1/usage", Kind::kSystem, Action::kRead},
  };
  for (const auto& c : cases) {
    RoutePermission p = PermissionFor(c.method, c.pattern);
    EXPECT_FALSE(p.public_route) << c.pattern;
    EXPECT_EQ(p.kind, c.kind) << c.method << " " << c.pattern;
    EXPECT_EQ(p.action, c.action) << c.method << " " << c.pattern;
  }
  EXPECT_TRUE(PermissionFor("GET", "/healthz").public_route);
  EXPECT_TRUE(PermissionFor("GET", "/api/v1/system/version").public_route);
  EXPECT_FALSE(PermissionFor("GET", "/api/v1/brand-new").listed);
  EXPECT_EQ(PermissionFor("GET", "/api/v1/brand-new").action, Action::kAdmin);
}

}  // namespace
}  // namespace flowmesh::api
