// The dashboard's static files (web/ui/), embedded into the binary at build time by
// cmake/embed_assets.cmake, so one flowmesh-server binary serves the whole dashboard.
// Read-only data with static storage duration: safe from any thread.
#pragma once

#include <span>
#include <string_view>

namespace flowmesh::ui {

struct Asset {
  std::string_view path;  // relative to web/ui/, '/'-separated ("js/main.js")
  std::string_view body;
  std::string_view etag;  // quoted strong validator derived from the file's SHA-256
};

// Every embedded file, sorted by path.
std::span<const Asset> EmbeddedAssets();

// The asset at `path` (relative, no leading '/'); nullptr when there is none.
const Asset* FindAsset(std::string_view path);

// The Content-Type for a file name by its extension ("application/octet-stream" if unknown).
std::string_view ContentTypeFor(std::string_view path);

}  // namespace flowmesh::ui
