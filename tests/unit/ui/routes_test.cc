// The embedded dashboard and its /ui routes, served by a real http::Server on port 0
// behind the API's access guard (no credentials are sent: the files must not need any).
#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <set>
#include <string>

#include "api/access.h"
#include "http/http.h"
#include "ui/assets.h"
#include "ui/routes.h"

namespace flowmesh::ui {
namespace {

class UiRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http::Router routes;
    AddUiRoutes(routes);
    // The guard with no authenticator: a route that needed a key would crash here.
    server_ = std::make_unique<http::Server>(http::ServerConfig{},
                                             api::GuardRouter(routes, nullptr));
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_unique<http::Client>("http://127.0.0.1:" +
                                             std::to_string(server_->port()));
  }
  void TearDown() override { server_->Stop(); }

  http::ClientResponse Get(const std::string& path, const http::Headers& headers = {}) {
    auto r = client_->Get(path, headers);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : http::ClientResponse{};
  }

  std::unique_ptr<http::Server> server_;
  std::unique_ptr<http::Client> client_;
};

TEST_F(UiRoutesTest, ServesTheIndexWithStrictHeaders) {
  auto r = Get("/ui/");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Content-Type"], "text/html; charset=utf-8");
  EXPECT_EQ(r.headers["Cache-Control"], "no-cache");
  EXPECT_EQ(r.headers["X-Content-Type-Options"], "nosniff");
  const std::string csp = r.headers["Content-Security-Policy"];
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_NE(r.body.find("<script type=\"module\" src=\"/ui/js/main.js\">"), std::string::npos);
}

TEST_F(UiRoutesTest, RedirectsTheBarePrefix) {
  auto r = Get("/ui");
  EXPECT_EQ(r.status, 308);
  EXPECT_EQ(r.headers["Location"], "/ui/");
}

TEST_F(UiRoutesTest, ContentTypesByExtension) {
  EXPECT_EQ(Get("/ui/js/main.js").headers["Content-Type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(Get("/ui/style.css").headers["Content-Type"], "text/css; charset=utf-8");
  EXPECT_EQ(Get("/ui/index.html").headers["Content-Type"], "text/html; charset=utf-8");
  EXPECT_EQ(Get("/ui/favicon.svg").headers["Content-Type"], "image/svg+xml");
  EXPECT_EQ(ContentTypeFor("a/b.json"), "application/json");
  EXPECT_EQ(ContentTypeFor("noext"), "application/octet-stream");
  EXPECT_EQ(ContentTypeFor(".js.bak"), "application/octet-stream");
}

TEST_F(UiRoutesTest, EveryAssetIsServedWithAKnownTypeAndItsBytes) {
  ASSERT_FALSE(EmbeddedAssets().empty());
  std::string previous;
  for (const Asset& a : EmbeddedAssets()) {
    EXPECT_LT(previous, a.path) << "assets must be sorted for FindAsset";
    previous = std::string(a.path);
    EXPECT_NE(ContentTypeFor(a.path), "application/octet-stream") << a.path;
    auto r = Get("/ui/" + std::string(a.path));
    EXPECT_EQ(r.status, 200) << a.path;
    EXPECT_EQ(r.body, a.body) << a.path;
    EXPECT_EQ(FindAsset(a.path), &a);
  }
}

TEST_F(UiRoutesTest, UnknownFilesAre404) {
  EXPECT_EQ(Get("/ui/nope.js").status, 404);
  EXPECT_EQ(Get("/ui/js/").status, 404);
  EXPECT_EQ(Get("/ui/js").status, 404);
  EXPECT_EQ(Get("/ui/index.html/x").status, 404);
  EXPECT_EQ(Get("/uinope").status, 404);
  auto r = Get("/ui/missing.css");
  EXPECT_EQ(r.status, 404);
  EXPECT_FALSE(r.headers["Content-Security-Policy"].empty());
}

TEST_F(UiRoutesTest, NoPathTraversal) {
  for (const char* path : {"/ui/../api/v1/workflows", "/ui/%2e%2e/%2e%2e/etc/passwd",
                           "/ui/..%2f..%2fetc%2fpasswd", "/ui/js/../index.html",
                           "/ui//etc/passwd", "/ui/%2fetc%2fpasswd", "/ui/js%5c..%5cindex.html",
                           "/ui/./index.html"}) {
    auto r = Get(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << path;
  }
}

TEST_F(UiRoutesTest, RevalidatesWithTheETag) {
  auto first = Get("/ui/js/main.js");
  ASSERT_EQ(first.status, 200);
  std::string etag = first.headers["ETag"];
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(Get("/ui/js/main.js", {{"If-None-Match", etag}}).status, 304);
  EXPECT_EQ(Get("/ui/js/main.js", {{"If-None-Match", "\"other\""}}).status, 200);
}

// The CSP forbids inline script and style; the markup must not rely on either, and every
// module a script imports must be embedded.
TEST(UiAssetsTest, NoInlineScriptOrStyleAndEveryImportResolves) {
  const std::regex script_tag("<script([^>]*)>");
  const std::regex inline_attr(R"((\son[a-z]+\s*=|\sstyle\s*=|<style|javascript:))",
                               std::regex::icase);
  const std::regex import_from(R"(from\s+'(\.{1,2}/[^']+)')");
  int imports = 0;
  for (const Asset& a : EmbeddedAssets()) {
    std::string body(a.body);
    std::string path(a.path);
    if (path.ends_with(".html")) {
      for (auto it = std::sregex_iterator(body.begin(), body.end(), script_tag);
           it != std::sregex_iterator(); ++it) {
        EXPECT_NE((*it)[1].str().find("src="), std::string::npos) << path << ": inline script";
      }
      EXPECT_FALSE(std::regex_search(body, inline_attr)) << path << ": inline handler or style";
      // Every file the page links (stylesheet, icon, module preloads) is embedded.
      const std::regex linked(R"re((?:href|src)="/ui/([^"]+)")re");
      for (auto it = std::sregex_iterator(body.begin(), body.end(), linked);
           it != std::sregex_iterator(); ++it) {
        EXPECT_NE(FindAsset((*it)[1].str()), nullptr) << path << " links missing " << (*it)[1];
      }
    }
    if (!path.ends_with(".js")) continue;
    std::string dir = path.substr(0, path.rfind('/') + 1);
    for (auto it = std::sregex_iterator(body.begin(), body.end(), import_from);
         it != std::sregex_iterator(); ++it) {
      std::string target = dir + (*it)[1].str();
      // Normalise "./" and "../" against the importing module's folder.
      std::vector<std::string> parts;
      size_t start = 0;
      while (start <= target.size()) {
        size_t slash = target.find('/', start);
        std::string seg = target.substr(start, slash == std::string::npos ? slash : slash - start);
        if (seg == "..") {
          if (!parts.empty()) parts.pop_back();
        } else if (!seg.empty() && seg != ".") {
          parts.push_back(seg);
        }
        if (slash == std::string::npos) break;
        start = slash + 1;
      }
      std::string resolved;
      for (const auto& p : parts) resolved += (resolved.empty() ? "" : "/") + p;
      EXPECT_NE(FindAsset(resolved), nullptr) << path << " imports missing " << resolved;
      ++imports;
    }
  }
  EXPECT_GT(imports, 10);  // the pattern still finds the modules' imports
}

TEST(UiAccessTest, DashboardRoutesArePublic) {
  EXPECT_TRUE(api::PermissionFor("GET", "/ui").public_route);
  EXPECT_TRUE(api::PermissionFor("GET", "/ui/{path...}").public_route);
  EXPECT_FALSE(api::PermissionFor("POST", "/ui/{path...}").public_route);
}

}  // namespace
}  // namespace flowmesh::ui
