// The api executor's client, shared with every executor that calls HTTP endpoints on a
// task's behalf (api tasks, an agent's remote model): one request through the per-endpoint
// concurrency gate of this process, retried with backoff and jitter on 408/429/5xx and
// connection errors, honouring Retry-After, cancellable, and bounded by an optional
// deadline (no retry is started that could not end before it).
//
// Credentials: `{{credential:NAME}}` placeholders in the url, headers and body are
// resolved by ResolveExchange from the attempt's CredentialGrant just before sending; the
// resolved values live only in the HttpExchange (callers report the url as written).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "executors/api_http.h"
#include "executors/api_request.h"
#include "executors/executor.h"

namespace flowmesh::executors::api {

struct RetryHooks {
  std::function<void(HttpExchange&)> before_attempt;  // e.g. a fresh stream sink
  std::function<void()> after_attempt;
  std::function<void(const std::string&)> log;  // one line per retry (no credentials)
};

// `where` names the request in errors and log lines ("item 3: POST http://…" as written).
// Errors: Cancelled, DeadlineExceeded (the deadline passed), or the last transport error.
// An HTTP status (even after the retries ran out) is a reply, not an error.
Result<HttpReply> SendWithRetries(const ApiOptions& options, HttpExchange& exchange,
                                  const std::string& where, const std::atomic<bool>& cancelled,
                                  const RetryHooks& hooks = {},
                                  std::optional<std::chrono::steady_clock::time_point> deadline =
                                      std::nullopt);

// The exchange of a prepared request with its placeholders resolved from `grant`, and the
// server's default Authorization added when `default_authorization` is set and no header
// carries a credential. NotFound names a credential the grant lacks.
Result<HttpExchange> ResolveExchange(const ApiOptions& options, const PreparedRequest& request,
                                     const CredentialGrant& grant,
                                     const std::string& default_authorization);

// Asks the server (ctx.credentials) for the credentials `section` names, and for its default
// endpoint when `need_default`. `what` names the section in errors ("spec.api").
Result<CredentialGrant> FetchGrant(TaskContext& ctx, const nlohmann::json& section,
                                   bool need_default, const std::string& what);

// ApiOptions from a section shaped like spec.api found elsewhere (agent.model); errors
// name `where` instead of spec.api.
Result<ApiOptions> ParseApiSection(const nlohmann::json& section, const std::string& where);

}  // namespace flowmesh::executors::api
