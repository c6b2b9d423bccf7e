// Routes of /api/v1/secrets: per-organisation credentials (set, list names, delete) and
// the resolve route that only the fleet's service token may call, for a running attempt
// whose spec names the credential. Values never leave the server except through resolve,
// and no route or log line ever echoes one.
#pragma once

#include <string>

#include "auth/secret_store.h"
#include "http/http.h"
#include "state/store.h"

namespace flowmesh::api {

// The server's default api endpoint (used when a task's api.url is omitted).
struct ApiEndpointDefaults {
  std::string url;         // base URL; the executor appends /v1/chat/completions
  std::string credential;  // name of the secret sent as "Bearer <value>"; "" = none
};

struct SecretRouteDeps {
  auth::SecretStore* secrets = nullptr;  // borrowed
  state::Store* store = nullptr;         // borrowed; tasks are read for resolve
  bool auth_enabled = true;              // off: every caller is the default org's admin
  ApiEndpointDefaults defaults;
};

void AddSecretRoutes(http::Router& r, const SecretRouteDeps& deps);

// Whether `spec_json` holds a `{{credential:NAME}}` placeholder for `name` (spaces allowed
// inside the braces, as the executor reads them).
bool SpecNamesCredential(const std::string& spec_json, const std::string& name);

}  // namespace flowmesh::api
