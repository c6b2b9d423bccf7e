// The dashboard's HTTP routes: GET /ui (redirects to /ui/), /ui/ (index.html) and
// /ui/{path...} (the embedded files of web/ui/). They need no credentials: the page asks
// for an API key and calls the public /api/v1 routes with it, so scopes and organisation
// isolation apply to everything it shows. Every answer carries a strict
// Content-Security-Policy (no inline script or style, connections to this origin only).
#pragma once

#include "http/http.h"

namespace flowmesh::ui {

// The Content-Security-Policy sent with every dashboard file.
extern const char* const kContentSecurityPolicy;

// Answers one dashboard request (request.path starts with "/ui"): the file with its
// Content-Type, an ETag (304 on a matching If-None-Match) and Cache-Control: no-cache, or
// 404 for anything that is not an embedded file ("..", unknown names, directories).
http::Response ServeUi(const http::Request& request);

// Registers GET /ui and GET /ui/{path...} on `router`.
void AddUiRoutes(http::Router& router);

}  // namespace flowmesh::ui
