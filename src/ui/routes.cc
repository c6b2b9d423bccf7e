#include "ui/routes.h"

#include <string>
#include <string_view>

#include "ui/assets.h"

namespace flowmesh::ui {

const char* const kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

namespace {

constexpr std::string_view kPrefix = "/ui";

void SetSecurityHeaders(http::Response& resp) {
  resp.headers["Content-Security-Policy"] = kContentSecurityPolicy;
  resp.headers["X-Content-Type-Options"] = "nosniff";
  resp.headers["X-Frame-Options"] = "DENY";
  resp.headers["Referrer-Policy"] = "no-referrer";
  resp.headers["Cross-Origin-Opener-Policy"] = "same-origin";
}

http::Response NotFound(const std::string& what) {
  http::Response resp = http::Response::Error(404, "no dashboard file " + what);
  SetSecurityHeaders(resp);
  resp.headers["Cache-Control"] = "no-store";
  return resp;
}

}  // namespace

http::Response ServeUi(const http::Request& request) {
  std::string_view path = request.path;
  if (path.substr(0, kPrefix.size()) != kPrefix) return NotFound(std::string(path));
  std::string_view rest = path.substr(kPrefix.size());
  if (rest.empty()) {
    // Relative URLs in the page resolve against /ui/, not /.
    http::Response resp;
    resp.status = 308;
    resp.content_type = "text/plain; charset=utf-8";
    resp.headers["Location"] = "/ui/";
    resp.body = "/ui/\n";
    SetSecurityHeaders(resp);
    return resp;
  }
  if (rest.front() != '/') return NotFound(std::string(path));
  rest.remove_prefix(1);
  if (rest.empty()) rest = "index.html";
  // Assets are looked up by exact name in a fixed table, so nothing outside it can be
  // reached; dot segments and empty segments are refused outright all the same.
  if (rest.find("..") != std::string_view::npos || rest.find("//") != std::string_view::npos ||
      rest.find('\\') != std::string_view::npos || rest.front() == '/') {
    return NotFound(std::string(rest));
  }
  const Asset* asset = FindAsset(rest);
  if (asset == nullptr) return NotFound(std::string(rest));

  http::Response resp;
  SetSecurityHeaders(resp);
  resp.content_type = std::string(ContentTypeFor(asset->path));
  // Names carry no content hash, so the browser revalidates each time (cheap: a 304).
  resp.headers["Cache-Control"] = "no-cache";
  resp.headers["ETag"] = std::string(asset->etag);
  if (request.Header("If-None-Match") == asset->etag) {
    resp.status = 304;
    resp.content_type.clear();
    return resp;
  }
  resp.body = std::string(asset->body);
  return resp;
}

void AddUiRoutes(http::Router& router) {
  router.Add("GET", std::string(kPrefix), [](http::Request& req) { return ServeUi(req); });
  router.Add("GET", std::string(kPrefix) + "/{path...}",
             [](http::Request& req) { return ServeUi(req); });
}

}  // namespace flowmesh::ui
